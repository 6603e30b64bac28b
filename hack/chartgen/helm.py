"""``helm template`` on an offline copy of the chart."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hack.chartgen.paths import CHART, HELM


@contextmanager
def offline_chart() -> Iterator[Path]:
    """A copy of the chart that helm can render without network.

    When ``charts/kuberay-operator-1.7.0.tgz`` is there (``make chart-deps``), the copy is complete.
    Otherwise a placeholder ``kuberay-operator`` subchart with no templates stands in for it: helm
    checks dependencies by name before it evaluates conditions, and every offline render here
    keeps ``kuberay-operator.enabled=false``, so the placeholder renders nothing.
    """
    with tempfile.TemporaryDirectory(prefix="kuberay-llm-chart-") as tmp:
        dest = Path(tmp) / "kuberay-llm"
        shutil.copytree(CHART, dest, ignore=shutil.ignore_patterns("tests", "__pycache__"))
        sub = dest / "charts"
        if not list(sub.glob("kuberay-operator-*.tgz")):
            stub = sub / "kuberay-operator"
            stub.mkdir(parents=True, exist_ok=True)
            (stub / "Chart.yaml").write_text(
                "apiVersion: v2\nname: kuberay-operator\nversion: 1.7.0\n"
                "description: Offline placeholder for the real chart (make chart-deps fetches it).\n"
            )
        yield dest


def helm_template(
    chart: Path,
    values_files: list[Path] = (),
    values: dict[str, Any] | None = None,
    release: str = "llm",
    namespace: str | None = None,
    sets: list[str] = (),
) -> subprocess.CompletedProcess[str]:
    cmd = [str(HELM), "template", release, str(chart)]
    if namespace:
        cmd += ["--namespace", namespace]
    for f in values_files:
        cmd += ["-f", str(f)]
    for s in sets:
        cmd += ["--set", s]
    with tempfile.TemporaryDirectory(prefix="kuberay-llm-values-") as tmp:
        if values is not None:
            path = Path(tmp) / "values.yaml"
            path.write_text(yaml.safe_dump(values))
            cmd += ["-f", str(path)]  # after the files, so it wins over them (--set wins over both)
        return subprocess.run(cmd, capture_output=True, text=True, check=False)


def render_or_die(chart: Path, **kwargs: Any) -> str:
    proc = helm_template(chart, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"helm template failed:\n{proc.stderr}")
    return proc.stdout
