#!/bin/sh
# Bake one model into the image at build time (called from the Dockerfiles' model stage).
# Baked models live under $KRLLM_BAKED_DIR (/opt/kuberay-llm/models): outside ~/.cache, which
# the chart mounts as an emptyDir, and read-only for the ray user.
#
#   bake_model.sh ""                               -> nothing (the default: no model baked)
#   bake_model.sh builtin:smollm2-135m-instruct    -> $KRLLM_BAKED_DIR/smollm2-135m-instruct
#                                                     (converted once to safetensors)
#   bake_model.sh org/name                         -> $KRLLM_BAKED_DIR/hf/org/name (a snapshot)
#
# Point a model catalog entry or job spec at the printed folder (`source: /opt/kuberay-llm/...`).
# A token for gated HF models comes only from a BuildKit secret mounted at
# /run/secrets/hf_token (docker build --secret id=hf_token,src=FILE): it lives in this
# process's environment for the download and never in an image layer, ARG or ENV.
set -eu
source="${1:-}"
dest_root="${KRLLM_BAKED_DIR:-/opt/kuberay-llm/models}"
mkdir -p "$dest_root"
if [ -z "$source" ]; then
  echo "bake_model: no model to bake"
  exit 0
fi
case "$source" in
  builtin:*)
    name="${source#builtin:}"
    work="$(mktemp -d)"
    path="$(KRLLM_CACHE_DIR="$work" python -m llmkit.models "$source" | tail -n 1)"
    mv "$path" "$dest_root/$name"
    rm -rf "$work"
    echo "bake_model: $source -> $dest_root/$name"
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
    HF_HUB_OFFLINE=0 python -c '
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1], local_dir=sys.argv[2]))
' "$source" "$dest_root/hf/$source"
    rm -rf "$dest_root/hf/$source/.cache"
    echo "bake_model: $source -> $dest_root/hf/$source"
    ;;
esac
# Readable by the unprivileged user the images run as (mktemp creates 0700 folders).
chmod -R a+rX "$dest_root"
