"""Fixtures of the chart tests: the tools, an offline copy of the chart, and every scenario rendered
once per session (ci/*-values.yaml, the chart defaults) plus the committed manifests/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, HELM, ROOT, SCENARIOS, TEST_IMAGE_REPOSITORY, Rendered, load_values, need_tool

from hack.chartgen import helm as chartgen


@pytest.fixture(scope="session")
def helm() -> Path:
    return need_tool(HELM)


@pytest.fixture(scope="session")
def chart(helm: Path):
    with chartgen.offline_chart() as path:
        yield path


@pytest.fixture(scope="session")
def image_values(tmp_path_factory) -> Path:
    """A values file naming an image, since the chart has no default one; scenario files and values win over it."""
    path = tmp_path_factory.mktemp("image") / "image-values.yaml"
    path.write_text(yaml.safe_dump({"image": {"repository": TEST_IMAGE_REPOSITORY}}))
    return path


@pytest.fixture(scope="session")
def render(chart: Path, image_values: Path):
    """render(values=..., files=..., sets=..., image=True) -> CompletedProcess of `helm template`.
    image=False leaves out the values file that names an image."""

    def _render(values: dict[str, Any] | None = None, files: list[Path] = (), sets: list[str] = (), image: bool = True):
        base = [image_values] if image else []
        return chartgen.helm_template(chart, values_files=[*base, *files], values=values, sets=list(sets))

    return _render


@pytest.fixture(scope="session")
def scenarios(render) -> dict[str, Rendered]:
    """Every ci/*-values.yaml scenario and the chart defaults (with an image named, as the chart requires),
    rendered once (operator subchart off: offline)."""
    out: dict[str, Rendered] = {}
    for name in [*SCENARIOS, "default"]:
        files = [] if name == "default" else [CHART / "ci" / f"{name}-values.yaml"]
        proc = render(files=files, sets=["kuberay-operator.enabled=false"])
        assert proc.returncode == 0, f"helm template {name} failed:\n{proc.stderr}"
        values = load_values(*files)
        values["image"]["repository"] = values["image"]["repository"] or TEST_IMAGE_REPOSITORY
        out[name] = Rendered(name, proc.stdout, values)
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
