"""A config file that is missing, unreadable or not YAML: every CLI prints one line naming the file
and the problem, and exits 2, with no traceback. Run as the user runs them: real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmkit.config import ConfigError, StrictModel

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    malformed = tmp_path / "bad.yaml"
    malformed.write_text("output:\n  path: x\n engine: [1,\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"output: {path: x}\n\xff\xfe\n")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    return {
        "missing": (tmp_path / "missing.yaml", "no such file"),
        "malformed": (malformed, "not valid YAML: "),
        "directory": (folder, "is a directory"),
        "not utf-8": (binary, "not UTF-8 text"),
    }


def _assert_one_line(result: subprocess.CompletedProcess, path: Path, problem: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ") and problem in lines[0], lines[0]


@pytest.mark.parametrize("case", ["missing", "malformed", "directory", "not utf-8"])
def test_jobs_cli_config_file_problems(tmp_path, case):
    path, problem = _bad_files(tmp_path)[case]
    for command in ("validate", "run"):
        _assert_one_line(_cli("jobs", command, "--config", str(path)), path, problem)


@pytest.mark.parametrize("case", ["missing", "malformed", "directory"])
def test_serve_apps_cli_config_file_problems(tmp_path, case):
    path, problem = _bad_files(tmp_path)[case]
    _assert_one_line(_cli("serve_apps", "validate", "--config", str(path)), path, problem)


def test_serve_apps_serve_with_a_missing_catalog_fails_before_starting_ray(tmp_path):
    path = tmp_path / "missing.yaml"
    _assert_one_line(_cli("serve_apps", "serve", "--config", str(path)), path, "no such file")


def test_yaml_error_is_one_line_with_line_and_column(tmp_path):
    class Model(StrictModel):
        output: dict = {}

    path = tmp_path / "bad.yaml"
    path.write_text("output:\n  path: x\n engine: [1,\n")
    with pytest.raises(ConfigError) as err:
        Model.from_yaml(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not valid YAML: ") and "(line 3, column " in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text("output: {path: x}\n")
    path.chmod(0)
    _assert_one_line(_cli("jobs", "validate", "--config", str(path)), path, "permission denied")


def test_serve_apps_validate_converts_no_model(tmp_path):
    """validate checks a catalog; it must not convert a builtin: model into the cache as a side effect."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "KRLLM_CACHE_DIR": str(tmp_path / "cache")}
    catalog = ROOT / "serve_apps" / "examples" / "local-cpu.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "serve_apps", "validate", "--config", str(catalog)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"model_source": "builtin:smollm2-135m-instruct"' in proc.stdout
    assert not (tmp_path / "cache").exists()
