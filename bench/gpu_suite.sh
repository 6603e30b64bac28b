#!/usr/bin/env bash
# The one script a device call runs (see bench/README.md for the call sequence).
#
#   bash bench/gpu_suite.sh STAGE [STAGE ...]
#
# Stages (each writes its JSON + a logs tarball under $OUT):
#   check        versions, GPU, and that our packages import on the kit (ray 2.58.1 + vllm 0.26.0)
#   batch        (a) raw vLLM LLM.generate vs our batch job: defaults, and the tuned overrides
#   serve        (b) bare vLLM OpenAI server vs our serving app (1024 streaming requests at 128)
#   batch-extra  start-up variants: no-compile full CUDA graphs; warm compile cache
#   scale        (c) our batch job on 1 GPU vs 2 GPUs (concurrency 2), nvidia-h200-x2
#   par1, par2   the same, side by side on the 4 GPUs of nvidia-h200-x4 (see stage_par1/2 below)
#   rows         many short rows: our job vs a bare Ray Data LLM pipeline (the anchor), rows/s and the
#                driver's peak RSS (bench/scale_bench.py; runs in BENCH_ROWS_RUNS, one after the other)
#   rows-bg      the rows stage, started detached for runs longer than a call (BENCH_BG_BUDGET_S, default
#                2400 s, bounds it); then `wait` in each later call until it prints "== done"
#   dry          the CPU dry-run of batch and serve (what CI's local tier runs)
#
# Env: OUT (results folder; the device tool sets it), BENCH_BUDGET_S (seconds this call may use,
# default 570), BENCH_DEVICE_KIND (recorded in the results), BENCH_BATCH_CASES / BENCH_SERVERS /
# BENCH_EXTRA_CASES / BENCH_SCALE_CASES (override the case lists), BENCH_SCALE_N (prompts for scale),
# BENCH_ROWS_RUNS (KIND:ROWS list for rows; default "ours:200000 anchor:200000 ours:20000": at ~1k rows/s
# on one H200, 2M rows take ~35 min, longer than a device call),
# BENCH_ROWS_ENGINES (engines packed on the one GPU, for both pipelines: engine.engines_per_gpu; default 1),
# BENCH_ROWS_TIMEOUT (seconds one rows run may take; default the preset's 580, for a run inside one call),
# BENCH_ROWS_MIN_S (a rows run starts only with this many seconds left; default 150), BENCH_ROWS_TAG
# (suffix of the rows result file, for runs split over several calls; merge with scale_bench --merge).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
OUT=${OUT:-/tmp/bench-out}
mkdir -p "$OUT"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 RAY_USAGE_STATS_ENABLED=0
export VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# Multi-GPU kinds: NVLink multicast stays off (KINDS.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
PY=${PYTHON:-python3}
T0=$(date +%s)
BUDGET=${BENCH_BUDGET_S:-570}
WORK=${BENCH_WORK:-/tmp/bench-work}
mkdir -p "$WORK"

# latest start (epoch s) for a step that needs $1 seconds
deadline() { echo $((T0 + BUDGET - $1)); }
left() { echo $((T0 + BUDGET - $(date +%s))); }
# run a step, killed 10 s before the budget ends so the logs still get packed
bounded() { local t=$(( $(left) - 10 )); (( t > 20 )) || { echo "no time left for: $*"; return 1; }; timeout "$t" "$@"; }
pack_logs() {  # pack_logs NAME DIR: one tarball (the device returns at most 8 files)
  [[ -z ${BENCH_TAG:-} ]] || return 0  # a par stage packs the logs of all its parts at once
  [[ -d $2 ]] && tar -czf "$OUT/logs-$1.tgz" -C "$2" . 2>/dev/null || true
}

stage_check() {
  echo "== check ($(left) s left)"
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || true
  "$PY" - <<'EOF'
import importlib, json, sys, time
t = time.time()
out = {"python": sys.version.split()[0]}
for name in ("torch", "vllm", "ray", "transformers", "pydantic", "yaml", "pyarrow", "aiohttp", "openai", "matplotlib"):
    try:
        m = importlib.import_module(name)
        out[name] = getattr(m, "__version__", "?")
    except Exception as e:
        out[name] = f"MISSING: {e!r}"[:120]
for name in ("jobs.pipeline", "jobs.engine", "serve_apps.app", "serve_apps.local", "ray.data.llm", "ray.serve.llm",
             "bench.batch_bench", "bench.serve_bench", "bench.scale_bench"):
    try:
        importlib.import_module(name)
        out[name] = "ok"
    except Exception as e:
        out[name] = f"IMPORT FAILED: {e!r}"[:300]
out["import_s"] = round(time.time() - t, 1)
print(json.dumps(out, indent=1))
EOF
}

stage_batch() {
  echo "== batch ($(left) s left)"
  local cases=${BENCH_BATCH_CASES:-raw job job-rerun raw-rerun}
  local args=()
  for c in $cases; do args+=(--case "$c"); done
  bounded "$PY" -m bench.batch_bench --preset gpu "${args[@]}" --work "$WORK/batch" --log-dir "$WORK/batch/logs" \
    --deadline "$(deadline 150)" --end-by "$(deadline 15)" \
    --label "${BENCH_LABEL:-a: raw vLLM vs our batch job (cold compile caches; -rerun: on the cache of the first run)}" \
    --out "$OUT/batch-gpu${BENCH_TAG:-}.json"
  pack_logs "batch${BENCH_TAG:-}" "$WORK/batch/logs"
}

stage_serve() {
  echo "== serve ($(left) s left)"
  local servers=${BENCH_SERVERS:-bare ours-haproxy}
  local args=()
  for s in $servers; do args+=(--server "$s"); done
  bounded "$PY" -m bench.serve_bench --preset gpu "${args[@]}" --work "$WORK/serve" --log-dir "$WORK/serve/logs" \
    --port "${BENCH_SERVE_PORT:-8100}" --deadline "$(deadline 200)" --label "b: bare vLLM server vs our serving app" \
    --out "$OUT/serve-gpu${BENCH_TAG:-}.json"
  pack_logs serve "$WORK/serve/logs"
}

stage_batch_extra() {
  echo "== batch-extra ($(left) s left)"
  local cases=${BENCH_EXTRA_CASES:-job-faststart}
  local args=()
  for c in $cases; do args+=(--case "$c"); done
  bounded "$PY" -m bench.batch_bench --preset gpu "${args[@]}" --work "$WORK/extra" --log-dir "$WORK/extra/logs" \
    --deadline "$(deadline 150)" --end-by "$(deadline 15)" --label "a': start-up variants" \
    --out "$OUT/batch-gpu-extra.json"
  # Warm compile cache: the same case twice on one shared cache; the second run is the warm one.
  if [[ -n ${BENCH_WARM_CASES:-raw job-tuned} && $(left) -gt 300 ]]; then
    local wargs=()
    for c in ${BENCH_WARM_CASES:-raw job-tuned}; do wargs+=(--case "$c"); done
    bounded "$PY" -m bench.batch_bench --preset gpu "${wargs[@]}" --work "$WORK/batch" \
      --log-dir "$WORK/warm/logs" --deadline "$(deadline 130)" --end-by "$(deadline 15)" \
      --label "a'': warm compile cache (the caches of the cold runs reused)" --out "$OUT/batch-gpu-warm.json"
  fi
  pack_logs extra "$WORK/extra/logs"
  pack_logs warm "$WORK/warm/logs"
}

stage_scale() {
  echo "== scale ($(left) s left)"
  nvidia-smi -L || true
  local cases=${BENCH_SCALE_CASES:-job-tuned job-tuned-2gpu-fixed}
  local args=()
  for c in $cases; do args+=(--case "$c"); done
  bounded "$PY" -m bench.batch_bench --preset gpu --n "${BENCH_SCALE_N:-6000}" "${args[@]}" --work "$WORK/scale" \
    --log-dir "$WORK/scale/logs" --deadline "$(deadline 170)" --end-by "${BENCH_SCALE_END:-$(deadline 15)}" \
    --label "c: our batch job, 1 GPU vs 2 GPUs (concurrency 2)" --out "$OUT/batch-scale${BENCH_TAG:-}.json"
  pack_logs scale "$WORK/scale/logs"
}

# Several stages at once, each on its own GPUs (CUDA_VISIBLE_DEVICES) with its own work folder;
# one logs tarball for all (the device returns at most 8 files).
#   par1 (4 GPUs): GPU0 batch (a), GPU1 serve (b), GPU2 the 64 x 18 alternative, GPU3 a replicate of (a)
#   par2 (4 GPUs): (c) 1 GPU || 2 GPUs on the same rows (|| a replicate of (a) on GPU3), then 4 GPUs
sub() {  # sub GPUS TAG STAGE [ENV=VAL ...]: one stage in the background
  local gpus=$1 tag=$2 stage=$3; shift 3
  mkdir -p "$WORK/par/$tag"
  ( export CUDA_VISIBLE_DEVICES=$gpus BENCH_WORK="$WORK/par/$tag" BENCH_TAG="-$tag" BENCH_SIDE_BY_SIDE="$PAR_NOTE" "$@"
    WORK="$WORK/par/$tag" "stage_$stage" ) > "$WORK/par/$tag.out" 2>&1 &
}
par_collect() {  # par_collect NAME
  tar -czf "$OUT/logs-$1.tgz" -C "$WORK/par" --exclude='*/model-*' --exclude='*/vllm-cache-*' \
    --exclude='*/out-*' --exclude='*/prompts.jsonl' --exclude='*.whl' . 2>/dev/null || true
  tail -n 5 "$WORK"/par/*.out
}

stage_par1() {
  echo "== par1 ($(left) s left)"
  PAR_NOTE="par1: batch on GPU0; serve bare + ours-tput on GPU1, the HAProxy variants on GPU2; alternatives on GPU3"
  sub 0 a batch BENCH_BATCH_CASES="raw job job-rerun raw-rerun"
  sub 1 b serve BENCH_SERVERS="bare ours-tput" BENCH_SERVE_PORT=8100
  # Two Serve instances at once: the second gets its own replica port ranges.
  sub 2 h serve BENCH_SERVERS="ours-haproxy ours-direct" BENCH_SERVE_PORT=8200 \
    RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=32000 RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=33000 \
    RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT=42000 RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT=43000
  sub 3 alt batch BENCH_BATCH_CASES="raw job-64x18 job-nodetok" BENCH_LABEL="a: raw vLLM vs alternatives to the defaults"
  wait
  "$PY" -m bench.serve_bench --merge "$OUT/serve-gpu.json" "$OUT/serve-gpu-b.json" "$OUT/serve-gpu-h.json" \
    --label "b: bare vLLM server vs our serving app (GPU1: bare, ours-tput; GPU2 at the same time: HAProxy variants)" \
    && rm -f "$OUT/serve-gpu-b.json" "$OUT/serve-gpu-h.json"
  par_collect par1
}

stage_par2() {
  echo "== par2 ($(left) s left)"
  local n=${BENCH_SCALE_N:-16000}
  PAR_NOTE="par2: 1 GPU (GPU0) and 2 GPUs (GPU1,2) side by side, then 4 GPUs alone"
  sub 0 s1 scale BENCH_SCALE_CASES="job" BENCH_SCALE_N=$n BENCH_SCALE_END=$(deadline 200)
  sub 1,2 s2 scale BENCH_SCALE_CASES="job-2gpus" BENCH_SCALE_N=$n BENCH_SCALE_END=$(deadline 200)
  sub 3 rep batch BENCH_BATCH_CASES="raw job" BENCH_LABEL="a: replicate of raw vs job (GPU3, beside the scale runs)"
  wait
  sub 0,1,2,3 s4 scale BENCH_SCALE_CASES="job-4gpus" BENCH_SCALE_N=$n
  wait
  "$PY" -m bench.batch_bench --merge "$OUT/batch-scale.json" "$OUT"/batch-scale-s*.json \
    --label "c: our batch job, 1 GPU vs 2 GPUs (side by side) vs 4 GPUs, $n prompts" && rm -f "$OUT"/batch-scale-s*.json
  par_collect par2
}

stage_rows() {
  echo "== rows ($(left) s left)"
  local runs=${BENCH_ROWS_RUNS:-ours:200000 anchor:200000 ours:20000}
  local args=()
  for r in $runs; do args+=(--run "$r"); done
  # One work folder for every call on this machine: the rows, the model and the compile cache
  # are made once (the first run's cache is cold, the later ones warm).
  local tag=${BENCH_ROWS_TAG:-${BENCH_TAG:-}}  # calls made one after the other: one result file each
  local logs="$WORK/rows/logs$tag"
  [[ -z ${BENCH_ROWS_TIMEOUT:-} ]] || args+=(--timeout "$BENCH_ROWS_TIMEOUT")
  bounded "$PY" -m bench.scale_bench --mode gpu "${args[@]}" --engines-per-gpu "${BENCH_ROWS_ENGINES:-1}" \
    --work "$WORK/rows" --log-dir "$logs" \
    --deadline "$(deadline "${BENCH_ROWS_MIN_S:-150}")" --end-by "$(deadline 15)" \
    --label "${BENCH_LABEL:-rows: our batch job vs a bare Ray Data LLM pipeline (the anchor), many short rows}" \
    --out "$OUT/scale-gpu$tag.json"
  [[ -d $logs ]] && tar -czf "$OUT/logs-rows$tag.tgz" -C "$logs" . 2>/dev/null || true
}

# A rows stage longer than one call (2M rows per pipeline): `rows-bg` starts it in its own process
# session, which the device keeps running between calls while the machine is held; each later call
# runs `wait`, which returns when it ends or near this call's budget, with what it has written so far.
BG_LOG="$WORK/bg.log"
BG_OUT="$WORK/bg-out"
stage_rows_bg() {
  echo "== rows-bg: ${BENCH_ROWS_RUNS:-default runs}, detached (log $BG_LOG)"
  rm -rf "$BG_OUT" && mkdir -p "$BG_OUT"
  local budget=${BENCH_BG_BUDGET_S:-2400}
  (BENCH_BUDGET_S=$budget BENCH_ROWS_TIMEOUT=${BENCH_ROWS_TIMEOUT:-$budget} OUT=$BG_OUT \
    setsid nohup bash "$REPO/bench/gpu_suite.sh" rows > "$BG_LOG" 2>&1 < /dev/null &)
}

stage_wait() {
  echo "== wait ($(left) s left)"
  while ! grep -q "^== done" "$BG_LOG" 2>/dev/null && (( $(left) > 15 )); do sleep 5; done
  grep -v "^\[transformers\]" "$BG_LOG" 2>/dev/null | tail -n 12
  cp "$BG_OUT"/* "$OUT"/ 2>/dev/null || true
  grep -q "^== done" "$BG_LOG" 2>/dev/null || { echo "still running"; return 1; }
}

stage_dry() {
  echo "== dry ($(left) s left)"
  bounded "$PY" -m bench.batch_bench --dry-run --work "$WORK/dry-batch" --out "$OUT/batch-dry.json"
  bounded "$PY" -m bench.serve_bench --dry-run --work "$WORK/dry-serve" --out "$OUT/serve-dry.json"
}

rc=0
for stage in "$@"; do
  case $stage in
    check) stage_check || rc=1 ;;
    batch) stage_batch || rc=1 ;;
    serve) stage_serve || rc=1 ;;
    par1) stage_par1 || rc=1 ;;
    par2) stage_par2 || rc=1 ;;
    batch-extra) stage_batch_extra || rc=1 ;;
    scale) stage_scale || rc=1 ;;
    rows) stage_rows || rc=1 ;;
    rows-bg) stage_rows_bg || rc=1 ;;
    wait) stage_wait || rc=1 ;;
    dry) stage_dry || rc=1 ;;
    *) echo "unknown stage $stage"; rc=2 ;;
  esac
done
echo "== done in $(( $(date +%s) - T0 )) s, rc=$rc"
ls -l "$OUT"
exit $rc
