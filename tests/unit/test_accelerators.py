"""The accelerator catalog: valid, known to Ray, and complete for every node-label preset."""

from __future__ import annotations

import pytest

from llmkit.accelerators import AcceleratorCatalog, load_catalog, ray_resource
from llmkit.config import ConfigError


def test_catalog_names_are_ray_accelerator_types():
    from ray.llm._internal.serve.core.configs.llm_config import AcceleratorType

    known = {t.value for t in AcceleratorType}
    catalog = load_catalog()
    assert {"L4", "A10G", "A100", "H100", "H200", "L40S"} <= set(catalog.names())
    for name in catalog.names():
        assert name in known, f"{name} is not a Ray accelerator type"


def test_every_type_has_all_presets_and_gpu_toleration():
    for name, acc in load_catalog().accelerators.items():
        assert set(acc.nodeSelectors) == {"gke", "gfd", "karpenter", "eks"}, name
        assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in acc.tolerations), name
        assert acc.gpuMemoryGiB > 0 and acc.hourlyPriceUSD > 0


def test_unknown_type_is_a_clear_error():
    with pytest.raises(ConfigError, match="not in the accelerator catalog"):
        load_catalog().get("TPU-Z")
    assert ray_resource("L4") == "accelerator_type:L4"


def test_catalog_is_closed():
    with pytest.raises(ConfigError, match="bogus"):
        AcceleratorCatalog.from_dict(
            {"accelerators": {"L4": {"gpuMemoryGiB": 24, "hourlyPriceUSD": 1, "nodeSelectors": {}, "bogus": 1}}}
        )
