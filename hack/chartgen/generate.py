"""Every generated file with its content; ``python -m hack.chartgen generate|check|manifests`` writes them or
fails on drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hack.chartgen.chart_files import accelerators_yaml, batch_api_rbac_yaml, model_sources_yaml
from hack.chartgen.chart_lock import chart_lock
from hack.chartgen.manifests import manifests
from hack.chartgen.paths import CHART, MANIFESTS, ROOT
from hack.chartgen.values_docs import readme
from hack.chartgen.values_schema import schema_json


def generated_files(include_manifests: bool = True) -> dict[Path, str]:
    files = {
        CHART / "files" / "accelerators.yaml": accelerators_yaml(),
        CHART / "files" / "model-sources.yaml": model_sources_yaml(),
        CHART / "files" / "batch-api-rbac.yaml": batch_api_rbac_yaml(),
        CHART / "values.schema.json": schema_json(),
        CHART / "README.md": readme(),
        CHART / "Chart.lock": chart_lock(),
    }
    if include_manifests:
        files.update({MANIFESTS / k: v for k, v in manifests().items()})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.chartgen", description=__doc__)
    parser.add_argument("command", choices=["generate", "check", "manifests"])
    parser.add_argument("--no-manifests", action="store_true", help="chart files only")
    args = parser.parse_args(argv)
    if args.command == "generate" and not args.no_manifests:
        # Manifests render through the chart's schema, so the chart's own files go first.
        main(["generate", "--no-manifests"])
    if args.command == "manifests":
        files = {MANIFESTS / k: v for k, v in manifests().items()}
    else:
        files = generated_files(include_manifests=not args.no_manifests)
    drift = []
    for path, text in files.items():
        if path.exists() and path.read_text() == text:
            continue
        if args.command == "check":
            drift.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if args.command == "manifests":
        for stale in set(MANIFESTS.glob("*.yaml")) - set(files):
            stale.unlink()
            print(f"removed {stale.relative_to(ROOT)}")
    if drift:
        print("out of date (run `make generate`): " + ", ".join(drift), file=sys.stderr)
        return 1
    return 0
