"""bench/generate_throughput.py --smoke through the GPU-check hook, on CPU so the script cannot rot.

Two backends only (each step is a fresh process); vLLM is left out (its start-up alone is ~30 s on
CPU; tests/generate/test_vllm.py runs it).
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
def test_generate_bench_smoke_measures_each_backend_on_the_same_stops(tmp_path, benchmarks_dir):
    env = {**os.environ, "PY": sys.executable, "GPU_CHECK_OUT": str(tmp_path), "OMP_NUM_THREADS": "1",
           "MFT_HPC_BENCHMARKS": str(benchmarks_dir), "GEN_BENCH_ARGS": "--backends exact,hf-continuous --seed-prompts 4"}
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu_check_generate.sh"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "generate.json").read_text())
    results = {r["backend"]: r for r in report["results"]}
    assert list(results) == ["seed", "exact", "hf-continuous"]
    assert all("error" not in r and r["tokens"] > 0 and r["load_s"] > 0 for r in results.values())
    assert results["seed"]["prompts"] == 4 and results["exact"]["prompts"] == 26  # 2 per task, whole suite
    # same model, same stop rules: every backend keeps the same tokens, ended in more than one way
    assert results["hf-continuous"]["tokens"] == results["exact"]["tokens"]
    assert results["hf-continuous"]["finish_reasons"] == results["exact"]["finish_reasons"]
    assert len(results["exact"]["finish_reasons"]) >= 2
    assert all(results[b]["ratio_vs_seed"] > 0 for b in ("exact", "hf-continuous"))
    assert "every backend kept the same" in done.stdout
