"""Fixtures of the chart tests: the tools, an offline copy of the chart, and every scenario rendered
once per session (ci/*-values.yaml, the chart defaults) plus the committed manifests/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chart_helpers import CHART, HELM, ROOT, SCENARIOS, Rendered, load_values, need_tool

from llmkit import chartgen


@pytest.fixture(scope="session")
def helm() -> Path:
    return need_tool(HELM)


@pytest.fixture(scope="session")
def chart(helm: Path):
    with chartgen.offline_chart() as path:
        yield path


@pytest.fixture(scope="session")
def render(chart: Path):
    """render(values=..., files=..., sets=...) -> CompletedProcess of `helm template`."""

    def _render(values: dict[str, Any] | None = None, files: list[Path] = (), sets: list[str] = ()):
        return chartgen.helm_template(chart, values_files=list(files), values=values, sets=list(sets))

    return _render


@pytest.fixture(scope="session")
def scenarios(render) -> dict[str, Rendered]:
    """Every ci/*-values.yaml scenario and the chart defaults, rendered once (operator subchart off: offline)."""
    out: dict[str, Rendered] = {}
    for name in [*SCENARIOS, "default"]:
        files = [] if name == "default" else [CHART / "ci" / f"{name}-values.yaml"]
        proc = render(files=files, sets=["kuberay-operator.enabled=false"])
        assert proc.returncode == 0, f"helm template {name} failed:\n{proc.stderr}"
        out[name] = Rendered(name, proc.stdout, load_values(*files))
    return out


@pytest.fixture(scope="session")
def manifests() -> dict[str, Rendered]:
    out = {}
    for path in sorted((ROOT / "manifests").glob("rayjob-*.yaml")) + sorted(
        (ROOT / "manifests").glob("rayservice-*.yaml")
    ):
        out[path.name] = Rendered(path.name, path.read_text(), {})
    return out


@pytest.fixture(scope="session")
def all_rendered(scenarios, manifests) -> dict[str, Rendered]:
    return {**{f"ci/{k}": v for k, v in scenarios.items()}, **{f"manifests/{k}": v for k, v in manifests.items()}}
