#!/usr/bin/env bash
# One prepared check of the GPU training path on a fresh GPU machine with this repo, within 8 minutes:
#   1. a venv (.venv-gpu) that sees the machine's CUDA torch, with requirements/gpu.txt installed
#      (WHEELHOUSE=dir: install from carried wheels too; a failed install is reported, the checks go on
#      with what imports and report their fallbacks)
#   2. bench/train_throughput.py: the seed's way vs our packed path (useful tok/s, ratio, MFU)
#   3. bench/gpu_checks.py: packed isolation with the real kernels, QLoRA 4-bit on CUDA, DeepSpeed
#      ZeRO-2 with 2 processes
#   4. bench/gpu_check_generate.sh (or $GPU_CHECK_GENERATE), if present (the generation part): called as
#      `bash bench/gpu_check_generate.sh [--smoke]` with PY (python to use) and GPU_CHECK_OUT (a folder)
#      in its environment and GPU_CHECK_REMAINING_S (seconds left); it writes
#      $GPU_CHECK_OUT/generate.json, merged into the summary under "generate".
# The last line on stdout is one JSON summary; logs go to $GPU_CHECK_OUT (default: a temporary folder,
# $OUT when the device tool runs it).
#
#   bash bench/gpu_check.sh            # on the GPU machine
#   bash bench/gpu_check.sh --smoke    # the same steps on CPU with tiny shapes, no installs (CI)
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=gpu
SMOKE_FLAG=()
if [ "${1:-}" = "--smoke" ]; then MODE=smoke; SMOKE_FLAG=(--smoke); fi
OUT_DIR=${GPU_CHECK_OUT:-${OUT:-$(mktemp -d)}}
mkdir -p "$OUT_DIR"
BUDGET_S=${GPU_CHECK_BUDGET_S:-480}
START=$(date +%s)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
elapsed() { echo $(( $(date +%s) - START )); }
log() { echo "[gpu_check $(elapsed)s] $*" >&2; }
STEPS=""  # "name rc seconds" lines

run_step() {  # name timeout_s command...
    local name=$1 limit=$2 began rc
    shift 2
    began=$(date +%s)
    log "$name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
    rc=$?
    STEPS+="$name $rc $(( $(date +%s) - began ))"$'\n'
    log "$name: exit $rc"
    [ "$rc" = 0 ] || tail -n 20 "$OUT_DIR/$name.log" >&2
}

if [ "$MODE" = smoke ]; then
    PY=${PYTHON:-.venv/bin/python}
else
    BASE_PY=${PYTHON:-python3}
    [ -x .venv-gpu/bin/python ] || "$BASE_PY" -m venv --system-site-packages .venv-gpu
    PY=.venv-gpu/bin/python
    PIP_ARGS=(-q --disable-pip-version-check --timeout 15 --retries 1)
    [ -n "${WHEELHOUSE:-}" ] && PIP_ARGS+=(--find-links "$WHEELHOUSE")
    run_step install 150 "$PY" -m pip install "${PIP_ARGS[@]}" -r requirements/gpu.txt
fi
export PY PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # mft_hpc from this checkout, no package build

run_step environment 120 "$PY" - <<'EOF'
import importlib.metadata as md, json, torch
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
for name in ("transformers", "peft", "accelerate", "deepspeed", "bitsandbytes", "liger-kernel", "triton", "flash-attn"):
    try:
        info[name] = md.version(name)
    except md.PackageNotFoundError:
        info[name] = None
from mft_hpc.train.kernels import liger_available
from mft_hpc.train.varlen_kernel import _torch_varlen_attn
info["liger_usable"] = torch.cuda.is_available() and liger_available()
info["torch_varlen_attn"] = _torch_varlen_attn() is not None
print(json.dumps(info))
EOF
run_step train_throughput 210 "$PY" bench/train_throughput.py "${SMOKE_FLAG[@]}" --json "$OUT_DIR/train_throughput.json"
run_step gpu_checks 240 "$PY" bench/gpu_checks.py "${SMOKE_FLAG[@]}" --json "$OUT_DIR/gpu_checks.json"
GENERATE_HOOK=${GPU_CHECK_GENERATE:-bench/gpu_check_generate.sh}
if [ -f "$GENERATE_HOOK" ]; then
    REMAINING=$(( BUDGET_S - $(elapsed) ))
    [ "$REMAINING" -gt 30 ] || REMAINING=30
    GPU_CHECK_OUT=$OUT_DIR GPU_CHECK_REMAINING_S=$REMAINING \
        run_step generate "$REMAINING" bash "$GENERATE_HOOK" "${SMOKE_FLAG[@]}"
fi

STEPS="$STEPS" MODE="$MODE" OUT_DIR="$OUT_DIR" BUDGET_S="$BUDGET_S" ELAPSED="$(elapsed)" "$PY" - <<'EOF'
import json, os
from pathlib import Path

out = Path(os.environ["OUT_DIR"])
steps = {}
for line in os.environ["STEPS"].splitlines():
    name, rc, seconds = line.split()
    steps[name] = {"exit_code": int(rc), "seconds": int(seconds)}
    if int(rc) != 0:  # why, in the summary itself (a remote run may return nothing else)
        steps[name]["log_tail"] = (out / f"{name}.log").read_text(errors="replace")[-800:]

def read(name):
    path = out / name
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except json.JSONDecodeError as exc:
        return {"unreadable": f"{path}: {exc}"}

env_log = out / "environment.log"
env = next((json.loads(line) for line in reversed(env_log.read_text().splitlines()) if line.startswith("{")), None) \
    if env_log.exists() else None
elapsed = int(os.environ["ELAPSED"])
summary = {"mode": os.environ["MODE"], "seconds": elapsed, "budget_s": int(os.environ["BUDGET_S"]),
           "within_budget": elapsed <= int(os.environ["BUDGET_S"]), "environment": env, "steps": steps,
           "train_throughput": read("train_throughput.json"), "gpu_checks": read("gpu_checks.json"),
           "generate": read("generate.json") if "generate" in steps else None, "logs": str(out)}
summary["ok"] = all(step["exit_code"] == 0 for step in steps.values())
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary))
raise SystemExit(0 if summary["ok"] else 1)
EOF
