"""Layers point one way: the runtime packages (in the image) import no tooling, tests or bench."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("jobs", "serve_apps", "llmkit")
FORBIDDEN = ("hack", "tests", "bench")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", RUNTIME)
def test_runtime_packages_import_no_tooling(package):
    bad = {str(f.relative_to(ROOT)): sorted(_imports(f) & set(FORBIDDEN)) for f in (ROOT / package).rglob("*.py")}
    assert not {f: names for f, names in bad.items() if names}


def test_llmkit_is_the_base():
    """llmkit is what jobs and serve_apps build on: it imports neither."""
    users = {
        str(f.relative_to(ROOT)): sorted(_imports(f) & {"jobs", "serve_apps"}) for f in (ROOT / "llmkit").rglob("*.py")
    }
    assert not {f: names for f, names in users.items() if names}


def test_tests_import_no_bench():
    bad = [str(f.relative_to(ROOT)) for f in (ROOT / "tests").rglob("*.py") if "bench" in _imports(f)]
    assert not bad


def _full_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


# Ray's internals are imported in one place each: the ingress's (no public equivalent) and the batch
# job's background warm-up of the module Ray Data LLM loads for its engine stage.
INTERNALS_ALLOWED = {"serve_apps/ray_internals.py", "jobs/startup.py"}


def test_ray_internals_are_imported_in_one_place():
    users = {
        str(f.relative_to(ROOT))
        for package in RUNTIME
        for f in (ROOT / package).rglob("*.py")
        if any(
            m.startswith(("ray.llm._internal", "ray.serve._private", "ray.data._internal")) for m in _full_imports(f)
        )
    }
    assert users <= INTERNALS_ALLOWED, sorted(users - INTERNALS_ALLOWED)
