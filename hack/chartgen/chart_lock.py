"""``Chart.lock`` for the pinned ``kuberay-operator`` dependency, with the digest helm computes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from hack.chartgen.paths import CHART

LOCK_GENERATED = "2026-11-22T00:00:00Z"


def lock_digest(requirements: list[dict[str, Any]], locked: list[dict[str, Any]]) -> str:
    """helm's resolver.HashReq: sha256 of json.Marshal([2][]*chart.Dependency{req, lock})."""

    def dep(d: dict[str, Any]) -> dict[str, Any]:
        # Field order and omitempty of helm's chart.Dependency JSON tags.
        out: dict[str, Any] = {"name": d["name"]}
        if d.get("version"):
            out["version"] = d["version"]
        out["repository"] = d.get("repository", "")
        for key in ("condition", "tags", "enabled", "import-values", "alias"):
            if d.get(key):
                out[key] = d[key]
        return out

    data = json.dumps([[dep(d) for d in requirements], [dep(d) for d in locked]], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def chart_lock() -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    reqs = chart["dependencies"]
    locked = [{"name": d["name"], "repository": d["repository"], "version": d["version"]} for d in reqs]
    lines = ["dependencies:"]
    for d in locked:
        lines += [f"- name: {d['name']}", f"  repository: {d['repository']}", f"  version: {d['version']}"]
    lines += [f"digest: {lock_digest(reqs, locked)}", f'generated: "{LOCK_GENERATED}"', ""]
    return "\n".join(lines)
