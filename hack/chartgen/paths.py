"""Where the chart, the manifests and helm are."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kuberay-llm"
MANIFESTS = ROOT / "manifests"
HELM = Path(os.environ.get("HELM", ROOT / "bin" / "helm"))
