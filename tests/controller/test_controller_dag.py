"""The controller against the real test Slurm cluster: one-pass DAG, reattach, retry, cancel."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from controller_fakes import wait_for_run, write_config

from mft_hpc.config import load_config
from mft_hpc.controller.operations import cancel, resume, retry, start_run
from mft_hpc.controller.state import COMPLETED, StateStore

TASKS = ["mbpp", "humanevalsynthesize-python"]


def generation_only(tmp_path, tiny_model_dir, benchmarks_dir, name, limit=2, **extra):
    return write_config(
        tmp_path / f"{name}.yaml",
        run={"name": name, "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "debug", "time": 10},
        model={"path": str(tiny_model_dir)},
        train={"enabled": False},
        generate={"benchmarks": str(benchmarks_dir), "limit": limit, "max_length_generation": 48,
                  "tasks": TASKS, "batch_size": 4},
        evaluate={"enabled": False},
        submission={"enabled": False},
        **extra,
    )


def slurm_job_names() -> set[str]:
    """Names of every job Slurm knows (queued, running, or finished within MinJobAge)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True, text=True).stdout
    return set(out.split())


@pytest.mark.slurm
def test_dry_run_prints_scripts_and_submits_nothing(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    config = generation_only(tmp_path, tiny_model_dir, benchmarks_dir, "dry")
    result = subprocess.run([sys.executable, "-m", "mft_hpc", "run", str(config), "--dry-run"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("#!/bin/bash") == 2  # generation array + collect
    assert "#SBATCH --array=0-1%" in result.stdout
    assert "#SBATCH --dependency=afterany:DRY1" in result.stdout
    assert not (tmp_path / "runs" / "dry").exists()
    assert not {n for n in slurm_job_names() if n.startswith("dry-")}


@pytest.mark.slurm
@pytest.mark.slow
def test_run_reattach_resume_and_retry_after_kill(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    config = generation_only(tmp_path, tiny_model_dir, benchmarks_dir, "gen", limit=3)
    outcome = start_run(load_config(config))
    root = tmp_path / "runs" / "gen"
    gen_ids = {key[2]: job for key, job in outcome.submitted.items() if key[0] == "generate"}
    assert set(gen_ids) == set(TASKS)

    # kill -9 the mbpp element's processes as soon as it runs (SIGKILL to its job steps)
    victim = gen_ids["mbpp"]
    deadline = time.monotonic() + 120
    while subprocess.run(["squeue", "-h", "-j", victim, "-o", "%T"], capture_output=True,
                         text=True).stdout.strip() != "RUNNING":
        assert time.monotonic() < deadline, "element never started"
        time.sleep(0.2)
    time.sleep(1.0)
    subprocess.run(["scancel", "--signal=KILL", victim], check=True)

    # the controller process is gone: everything below works from the run directory alone
    elements = wait_for_run(root)
    states = {(e.stage, e.task): e.state for e in elements}
    assert states[("generate", "humanevalsynthesize-python")] == COMPLETED
    assert states[("generate", "mbpp")] in ("failed", "cancelled"), states
    raw = root / "members" / "main" / "generate" / "raw" / "raw_mbpp.jsonl"
    kept_before = len(raw.read_text().splitlines()) if raw.exists() else 0

    retried = retry(root).submitted
    assert ("generate", "main", "mbpp") in retried
    assert ("generate", "main", "humanevalsynthesize-python") not in retried
    elements = wait_for_run(root)
    # after the retry the missing problems (and only they) were generated
    assert {(e.stage, e.task): e.state for e in elements}[("generate", "mbpp")] == COMPLETED
    rows = [json.loads(line) for line in raw.read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == [0, 1, 2]
    assert len(rows) == 3 and kept_before <= 3

    with StateStore(root / "state.sqlite") as store:
        mbpp = [e for e in store.elements(stage="generate") if e.task == "mbpp"][0]
        assert mbpp.attempts == 2
    # nothing left to do: no duplicate jobs
    assert resume(root).submitted == {}
    assert retry(root).submitted == {}


@pytest.mark.slurm
def test_cancel_pending_chain_leaves_nothing_queued(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    config = generation_only(tmp_path, tiny_model_dir, benchmarks_dir, "cancelme")
    data = __import__("yaml").safe_load(config.read_text())
    data["cluster"]["extra"] = {"hold": True}  # held: the whole chain stays pending
    config.write_text(__import__("yaml").safe_dump(data))
    outcome = start_run(load_config(config))
    ids = set(outcome.submitted.values())
    cancelled = cancel(tmp_path / "runs" / "cancelme")
    assert set(cancelled) == ids
    deadline = time.monotonic() + 60
    masters = {i.split("_")[0] for i in ids}
    while True:
        out = subprocess.run(["squeue", "-h", "-t", "PD,R,CG", "-o", "%i"], capture_output=True, text=True).stdout
        if not ({i.split("_")[0] for i in out.split()} & masters):
            break
        assert time.monotonic() < deadline, out
        time.sleep(0.5)
