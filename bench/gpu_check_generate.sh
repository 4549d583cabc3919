#!/usr/bin/env bash
# The generation part of bench/gpu_check.sh (also runs alone): bench/generate_throughput.py, the
# seed's batch-1 loop on a sample, then hf, hf-continuous and vllm on the whole 2,468-prompt suite with
# the real stop rules, within the seconds left. Writes $GPU_CHECK_OUT/generate.json.
#   environment: PY (python; default .venv-gpu/bin/python or python3; smoke: .venv), GPU_CHECK_OUT (folder; default
#   a temporary one), GPU_CHECK_REMAINING_S (seconds allowed; default 300), VLLM_PY (an interpreter
#   with vllm, if $PY has none), GEN_NEW_TOKENS (cap per problem; default 128 to fit the window),
#   GEN_BENCH_ARGS (more options of bench/generate_throughput.py)
#
#   bash bench/gpu_check_generate.sh            # GPU
#   bash bench/gpu_check_generate.sh --smoke    # CPU, tiny shape (vllm from .venv-vllm when built)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--smoke" ]; then default_py=.venv/bin/python
elif [ -x .venv-gpu/bin/python ]; then default_py=.venv-gpu/bin/python
else default_py=python3; fi
PY=${PY:-$default_py}
OUT_DIR=${GPU_CHECK_OUT:-$(mktemp -d)}
REMAINING=${GPU_CHECK_REMAINING_S:-300}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1

ARGS=(--json "$OUT_DIR/generate.json")
if [ "${1:-}" = "--smoke" ]; then
    ARGS+=(--smoke)
else
    # the four steps share the window: the sample and the cap keep each within about a quarter of it
    ARGS+=(--seed-prompts 8 --new-tokens "${GEN_NEW_TOKENS:-128}")
fi
[ -n "${VLLM_PY:-}" ] && ARGS+=(--vllm-python "$VLLM_PY")
# shellcheck disable=SC2206
ARGS+=(${GEN_BENCH_ARGS:-})  # more options of bench/generate_throughput.py (e.g. --backends hf,vllm)
STEP_S=$(( (REMAINING - 20) / 4 ))
[ "$STEP_S" -gt 30 ] || STEP_S=30
echo "gpu_check_generate: $PY, ${REMAINING}s left, ${STEP_S}s per step" >&2
timeout --kill-after=10 "$REMAINING" "$PY" bench/generate_throughput.py "${ARGS[@]}" --timeout "$STEP_S"
