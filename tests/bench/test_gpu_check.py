"""bench/gpu_check.sh --smoke: the GPU machine's one-shot check, run on CPU so the script cannot rot.

It runs the training bench (seed's way vs packed), the GPU correctness checks (isolation per kernel,
QLoRA 4-bit, DeepSpeed ZeRO-2 with 2 processes) and the generation hook, and prints one JSON summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_step_and_prints_one_json_summary(tmp_path):
    hook = tmp_path / "generate_hook.sh"
    hook.write_text('test -x "$PY" && echo "{\\"hook\\": \\"ran\\", \\"args\\": \\"$*\\"}" > "$GPU_CHECK_OUT/generate.json"\n')
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path / "out"), "GPU_CHECK_GENERATE": str(hook),
           "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] and summary["mode"] == "smoke"
    assert set(summary["steps"]) == {"environment", "train_throughput", "gpu_checks", "generate"}
    assert summary["environment"]["torch"] and summary["environment"]["torch_varlen_attn"] is True
    assert summary["generate"] == {"hook": "ran", "args": "--smoke"}

    bench = summary["train_throughput"]
    seed, packed = bench["modes"]["seed"], bench["modes"]["packed"]
    assert seed["fill"] < 0.5 < 0.9 < packed["fill"]  # padding to seq_length vs packed rows
    assert seed["finite"] and packed["finite"] and bench["ratio_packed_over_seed"] > 0
    assert seed["kernels"]["gradient_checkpointing"]["setting"] is True
    assert packed["kernels"]["gradient_checkpointing"]["setting"] == "auto"
    assert seed["params"] == packed["params"] and packed["params"]["trainable"] > 0

    checks = summary["gpu_checks"]
    assert {name: check["status"] for name, check in checks.items()} == \
        {"isolation": "pass", "qlora": "pass", "zero2": "pass"}
    assert set(checks["isolation"]["kernels"]) == {"sdpa", "eager", "torch_varlen"}  # flex/flash: GPU only
    assert checks["qlora"]["ranks"][0]["quantized_layers"] == 14
    assert [rank["world_size"] for rank in checks["zero2"]["ranks"]] == [2, 2]
    assert (tmp_path / "out" / "summary.json").exists()
