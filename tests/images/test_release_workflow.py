"""The release workflow (.github/workflows/release.yaml) publishes both images and records their digests.

No registry or GitHub runner is reachable here, so the workflow is checked as a file: it validates
against GitHub's workflow schema (check-jsonschema's vendored copy), runs on version tags only, builds
both images through the same make targets developers use, pushes them to GHCR, and writes each pushed
digest (from the build's metadata) into the job summary and image-digests.txt on the GitHub release.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yaml"
CHECK_JSONSCHEMA = ROOT / "bin" / "tools-venv" / "bin" / "check-jsonschema"


@pytest.fixture(scope="module")
def workflow() -> dict:
    assert WORKFLOW.is_file(), "no release workflow: the images are never published"
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(job: dict) -> str:
    return "\n".join(yaml.safe_dump(s) for s in job["steps"])


def test_workflow_matches_githubs_schema():
    if not CHECK_JSONSCHEMA.exists():
        pytest.fail("bin/tools-venv/bin/check-jsonschema is missing: run `make tools`", pytrace=False)
    proc = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runs_on_version_tags_only(workflow):
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert set(on) == {"push"}
    assert on["push"] == {"tags": ["v*.*.*"]}
    text = WORKFLOW.read_text()
    assert '"$GITHUB_REF_NAME" != "v$version"' in text, "the tag must match pyproject.toml's version"


def test_builds_and_pushes_both_images_to_ghcr(workflow):
    job = workflow["jobs"]["images"]
    assert job["strategy"]["matrix"]["kind"] == ["cpu", "gpu"]
    assert {p.parent.name for p in ROOT.glob("images/*/Dockerfile")} == {"cpu", "gpu"}
    assert job["permissions"]["packages"] == "write"
    assert job["env"]["IMAGE_REPOSITORY"] == "ghcr.io/${{ github.repository_owner }}/kuberay-llm"
    steps = _steps(job)
    assert "docker/login-action@v3" in steps and "registry: ghcr.io" in steps
    # The same recipe as `make image-cpu` / `make image-gpu` (mk/images.mk), pushed by buildx.
    (build,) = [s for s in job["steps"] if s.get("name", "").startswith("Build and push")]
    assert 'make "image-$KIND" CONTAINER_TOOL=docker IMAGE_REPOSITORY="$repo"' in build["run"]
    assert "--push" in build["run"] and "--metadata-file $RUNNER_TEMP/metadata.json" in build["run"]
    mk = (ROOT / "mk/images.mk").read_text()
    for target in ("image-cpu", "image-gpu", "print-baked-models"):
        assert re.search(rf"^{target}:", mk, re.M), target


def test_records_each_pushed_digest(workflow):
    job = workflow["jobs"]["images"]
    (record,) = [s for s in job["steps"] if s.get("name") == "Record the digest"]
    assert '["containerimage.digest"]' in record["run"]
    assert "sha256:*" in record["run"], "a build without a digest fails the release"
    assert "$GITHUB_STEP_SUMMARY" in record["run"]
    assert '"$IMAGE_REPOSITORY:$VERSION-$KIND@$digest' in record["run"]
    upload = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload and upload[0]["with"]["path"] == "image-${{ matrix.kind }}.txt"
    release = workflow["jobs"]["release"]
    assert release["needs"] == "images" and release["permissions"]["contents"] == "write"
    run = _steps(release)
    assert "image-digests.txt" in run and "gh release create" in run
    assert "--set image.digest=" in run, "the notes say how the chart selects the pushed image"


def test_actions_are_pinned_to_a_major_version(workflow):
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
