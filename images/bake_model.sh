#!/bin/sh
# Bake one model into the image at build time (called from the Dockerfiles' model stage).
#
#   bake_model.sh ""                               -> nothing (the default: no model baked)
#   bake_model.sh builtin:smollm2-135m-instruct    -> $KRLLM_CACHE_DIR/models/<name> (safetensors)
#   bake_model.sh org/name                         -> the Hugging Face cache ($HF_HOME), so the
#                                                     same id loads offline at run time
#
# A token for gated HF models comes only from a BuildKit secret mounted at
# /run/secrets/hf_token (docker build --secret id=hf_token,env=HF_TOKEN ...): it lives in
# this process's environment for the download and never in an image layer, ARG or ENV.
set -eu
source="${1:-}"
if [ -z "$source" ]; then
  echo "bake_model: no model to bake"
  exit 0
fi
case "$source" in
  builtin:*)
    python -m llmkit.models "$source"
    ;;
  s3://* | gs://* | /* | file://*)
    echo "bake_model: $source is not bakeable (mount or download it at run time)" >&2
    exit 2
    ;;
  *)
    if [ -s /run/secrets/hf_token ]; then
      HF_TOKEN="$(cat /run/secrets/hf_token)"
      export HF_TOKEN
    fi
    HF_HUB_OFFLINE=0 python -c 'import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1]))' "$source"
    ;;
esac
