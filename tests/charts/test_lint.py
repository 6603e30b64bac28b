"""helm lint --strict over the chart defaults and every ci/ scenario."""

import pytest
from chart_helpers import CHART, SCENARIOS, TEST_IMAGE_REPOSITORY, run

pytestmark = pytest.mark.charts


@pytest.mark.parametrize("scenario", ["default", *SCENARIOS])
def test_helm_lint_strict(helm, chart, scenario):
    args = [helm, "lint", "--strict", chart, "--set", "kuberay-operator.enabled=false"]
    if scenario == "default":
        args += ["--set", f"image.repository={TEST_IMAGE_REPOSITORY}"]  # the chart names no default image
    else:
        args += ["-f", CHART / "ci" / f"{scenario}-values.yaml"]
    proc = run(args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_chart_pins_the_operator_dependency():
    import yaml

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (dep,) = chart["dependencies"]
    assert dep == {
        "name": "kuberay-operator",
        "version": "1.7.0",
        "repository": "https://ray-project.github.io/kuberay-helm/",
        "condition": "kuberay-operator.enabled",
    }
    assert not list((CHART / "charts").glob("*")) or all(p.suffix == ".tgz" for p in (CHART / "charts").iterdir())
