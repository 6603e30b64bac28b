"""The parts of Ray Serve LLM's internals our ingress needs, in one place.

``build_openai_app`` builds its FastAPI app and endpoint map itself, so neither our auth middleware
nor our routes (``/health``, the Batch API) can be put on it; ``serve_apps.ingress`` therefore
repeats its few steps with Ray's public parts (``OpenAiIngress``, ``make_fastapi_ingress``,
``build_llm_deployment``) and these four internals, which have no public equivalent. They exist in
Ray 2.58.1 (the GPU kit) and 2.60.0; ``tests/unit/test_ray_internals.py`` checks what we rely on, and the
GPU suite's ``check`` stage imports ``serve_apps.app`` on 2.58.1.
"""

from ray.llm._internal.common.dict_utils import maybe_apply_llm_deployment_config_defaults
from ray.llm._internal.serve.core.configs.openai_api_models import to_model_metadata
from ray.llm._internal.serve.core.ingress.ingress import DEFAULT_ENDPOINTS
from ray.llm._internal.serve.core.ingress.ingress import init as new_fastapi_app

__all__ = ["DEFAULT_ENDPOINTS", "maybe_apply_llm_deployment_config_defaults", "new_fastapi_app", "to_model_metadata"]
