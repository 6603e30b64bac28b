"""The accelerator catalog: GPU types, how their nodes are labelled, and what they cost."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from llmkit.config import ConfigError, StrictModel

CATALOG_PATH = Path(__file__).with_name("accelerators.yaml")

NodeSelectorPreset = Literal["gke", "gfd", "karpenter", "eks"]
GPU_RESOURCE = "nvidia.com/gpu"


class Toleration(StrictModel):
    """A Kubernetes toleration, as the pod spec writes it."""

    key: str = Field(description="Taint key to tolerate.")
    operator: Literal["Exists", "Equal"] = Field(default="Exists", description="Exists or Equal.")
    value: str | None = Field(default=None, description="Taint value, with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default="NoSchedule", description="Taint effect to tolerate; empty tolerates all effects."
    )


DEFAULT_TOLERATIONS = [Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")]


class Accelerator(StrictModel):
    """One accelerator type: the node labels of its pools, its size and its price."""

    vendor: Literal["nvidia"] = Field(default="nvidia", description="GPU vendor; decides the resource name.")
    gpuMemoryGiB: int = Field(gt=0, description="Memory of one GPU, in GiB.")
    hourlyPriceUSD: float = Field(ge=0, description="On-demand price of one GPU-hour in USD, for cost reports.")
    nodeSelectors: dict[NodeSelectorPreset, dict[str, str]] = Field(
        description="Node labels of this accelerator's pools, per labelling preset (gke, gfd, karpenter, eks)."
    )
    tolerations: list[Toleration] = Field(
        default_factory=lambda: list(DEFAULT_TOLERATIONS),
        description="Tolerations for the GPU taints on this accelerator's nodes.",
    )

    @property
    def gpu_resource(self) -> str:
        return GPU_RESOURCE


class AcceleratorCatalog(StrictModel):
    """All accelerator types the project knows, keyed by the Ray accelerator_type name (L4, H100...)."""

    accelerators: dict[str, Accelerator] = Field(description="Accelerator types by name.")

    @field_validator("accelerators")
    @classmethod
    def _names_are_ray_resource_safe(cls, value: dict[str, Accelerator]) -> dict[str, Accelerator]:
        for name in value:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"accelerator name {name!r} must be letters, digits, '-' or '_'")
        return value

    def get(self, name: str) -> Accelerator:
        try:
            return self.accelerators[name]
        except KeyError:
            raise ConfigError(
                f"accelerator_type {name!r} is not in the accelerator catalog; "
                f"known: {', '.join(sorted(self.accelerators))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self.accelerators)


def gpus_per_engine(engine_kwargs: Mapping[str, Any]) -> int:
    """GPUs one vLLM engine (a Serve replica, a batch engine) holds: tensor x pipeline parallel size.
    The one Python definition; the chart's templates compute the same (``kuberay-llm.engineGpus``)."""
    return int(engine_kwargs.get("tensor_parallel_size") or 1) * int(engine_kwargs.get("pipeline_parallel_size") or 1)


def ray_resource(accelerator_type: str) -> str:
    """The Ray custom resource a replica or worker of this accelerator type carries."""
    return f"accelerator_type:{accelerator_type}"


@functools.lru_cache(maxsize=1)
def load_catalog(path: str | None = None) -> AcceleratorCatalog:
    return AcceleratorCatalog.from_yaml(path or CATALOG_PATH)
