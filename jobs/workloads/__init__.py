"""Workload plug-ins. Register your own with ``register`` or ship it as ``module:Class`` in the spec."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from jobs.workloads.base import Messages, RowError, Workload
from jobs.workloads.chat import ChatWorkload
from jobs.workloads.context_qa import ContextQAWorkload
from jobs.workloads.creative import CreativeWorkload
from jobs.workloads.openai_batch import OpenAIBatchWorkload
from jobs.workloads.sentiment import SentimentWorkload
from jobs.workloads.summarize import SummarizeWorkload
from llmkit.config import ConfigError

if TYPE_CHECKING:
    from jobs.spec import JobSpec

REGISTRY: dict[str, type[Workload]] = {
    cls.name: cls
    for cls in (
        ChatWorkload,
        CreativeWorkload,
        SentimentWorkload,
        SummarizeWorkload,
        ContextQAWorkload,
        OpenAIBatchWorkload,
    )
}


def register(cls: type[Workload]) -> type[Workload]:
    REGISTRY[cls.name] = cls
    return cls


def get_workload(name: str) -> type[Workload]:
    """A registered workload by name, or a plug-in class given as ``package.module:ClassName``."""
    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, Workload)):
            raise TypeError(f"{name} is not a Workload subclass")
        return cls
    raise KeyError(name)


def resolve_workload(spec: JobSpec) -> Workload:
    """The spec's workload, ready to use; a ConfigError naming ``workload.name`` if there is none such."""
    try:
        cls = get_workload(spec.workload.name)
    except (KeyError, ImportError, AttributeError, TypeError, ValueError):
        raise ConfigError(
            f"workload.name: unknown workload {spec.workload.name!r}; known: {', '.join(REGISTRY)} "
            "(or a plug-in as package.module:Class)"
        ) from None
    return cls(spec)


__all__ = ["REGISTRY", "Messages", "RowError", "Workload", "get_workload", "register", "resolve_workload"]
