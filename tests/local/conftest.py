"""The local tier's shared fixtures (real Ray, vLLM on CPU, a Serve deployment), for every module here."""

from tests.local.jobs_fixtures import model_dir, ray_local, vllm_server, vllm_server_proc  # noqa: F401 (fixtures)
from tests.local.serve_fixtures import local_serve  # noqa: F401 (fixture)
