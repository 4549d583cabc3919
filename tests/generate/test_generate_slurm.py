"""All 13 tasks through a real Slurm job array on the tiny model; a killed element resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import submitit

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.generate.outputs import generations_path
from mft_hpc.generate.progress import progress_path
from mft_hpc.generate.rawfile import raw_path, read_raw
from mft_hpc.elements import GenerateElement
from mft_hpc.generate.run import task_problems
from mft_hpc.generate.shards import elements, pack
from mft_hpc.rundir import is_done
from mft_hpc.tasks.names import TASK_NAMES

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
LIMIT = 10  # enough problems that the job is still running when the first one is on disk


def pending_elements(out_dir, gen_cfg, model_name: str) -> list[tuple[str, int | None]]:
    """(task, shard) of every unit whose work is not finished yet, in task order."""
    sizes = {task: len(task_problems(gen_cfg, task)) for task in gen_cfg.tasks}
    return [(task, shard) for task, shard in elements(sizes, gen_cfg.shard_size)
            if not is_done(generations_path(out_dir, task, model_name))
            and not (shard is not None and is_done(raw_path(out_dir, task, shard)))]


def submit_generation(executor, model_dir, out_dir, gen_cfg, model_name: str) -> list:
    """The pending units as one Slurm array of GenerateElements, ``tasks_per_element`` units each."""
    groups = pack(pending_elements(out_dir, gen_cfg, model_name), gen_cfg.tasks_per_element)
    return executor.submit_array([GenerateElement(str(model_dir), tuple(group), str(out_dir), gen_cfg, model_name)
                                  for group in groups]) if groups else []


def executor(folder, parallelism=4):
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    ex.update_parameters(slurm_partition="debug", timeout_min=10, cpus_per_task=1, slurm_array_parallelism=parallelism)
    return ex


def test_thirteen_tasks_in_three_array_elements(slurm_cluster, tiny_model_dir, benchmarks_dir, tmp_path):
    cfg = GenerateSection(benchmarks=str(benchmarks_dir), limit=3, max_new_tokens=64, dtype="float32", batch_size=3,
                          tasks_per_element=5)
    out = tmp_path / "generate"
    jobs = submit_generation(executor(tmp_path / "logs"), tiny_model_dir, out, cfg, model_name="tiny")
    assert len(jobs) == 3 and len({job.job_id.split("_")[0] for job in jobs}) == 1  # one array of 5 + 5 + 3 tasks
    results = [job.result() for job in jobs]
    assert [len(r) for r in results] == [5, 5, 3]
    assert [r["task"] for element in results for r in element] == list(TASK_NAMES)
    for job in jobs:  # one model load per element, not per task
        assert job.stderr().count("engine started") == 1
    for task in TASK_NAMES:
        data = json.loads(generations_path(out, task, "tiny").read_text())
        assert len(data) == 3 and all(len(entry) == 1 and isinstance(entry[0], str) for entry in data)
        assert is_done(generations_path(out, task, "tiny"))
    assert pending_elements(out, cfg, "tiny") == []
    assert submit_generation(executor(tmp_path / "logs"), tiny_model_dir, out, cfg, model_name="tiny") == []


def test_killed_element_resumes_missing_problems_only(slurm_cluster, tiny_model_dir, benchmarks_dir, tmp_path):
    # batch-1 generation of long Java prompts: slow enough to kill the job between two problems
    cfg = GenerateSection(benchmarks=str(benchmarks_dir), tasks=["humanevalfixtests-java"], limit=LIMIT, backend="exact",
                          max_new_tokens=64, dtype="float32")
    out = tmp_path / "generate"
    raw = raw_path(out, "humanevalfixtests-java")
    (job,) = submit_generation(executor(tmp_path / "logs", 1), tiny_model_dir, out, cfg, model_name="tiny")
    deadline = time.time() + 300
    while not read_raw(raw) and time.time() < deadline:  # file polling only: squeue calls are slow
        time.sleep(0.1)
    # a hard kill (OOM, node loss) of the element's process; a plain scancel only sends SIGTERM,
    # which submitit bypasses, and the test nodes are emulated on this machine
    progress = json.loads(progress_path(out, "humanevalfixtests-java").read_text())
    cmdline = Path(f"/proc/{progress['pid']}/cmdline").read_bytes().decode()
    assert "submitit" in cmdline and str(tmp_path) in cmdline  # our own job's process on this machine
    os.kill(progress["pid"], signal.SIGKILL)
    job.cancel(check=False)
    while subprocess.run(["squeue", "-h", "-j", job.job_id], capture_output=True, text=True).stdout.strip():
        time.sleep(1)
    kept = len(read_raw(raw))
    assert 1 <= kept < LIMIT, f"{kept} problems on disk (could not kill between problems)"
    assert not is_done(generations_path(out, "humanevalfixtests-java", "tiny"))

    (rerun,) = submit_generation(executor(tmp_path / "logs"), tiny_model_dir, out, cfg, model_name="tiny")
    (result,) = rerun.result()
    assert result["generated"] == LIMIT - kept
    assert sorted(read_raw(raw)) == list(range(LIMIT))
    assert len(json.loads(generations_path(out, "humanevalfixtests-java", "tiny").read_text())) == LIMIT
