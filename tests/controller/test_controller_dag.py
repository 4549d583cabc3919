"""The controller against the real test Slurm cluster: one-pass DAG, reattach, retry, cancel."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from controller_helpers import wait_for_run, write_config

from mft_hpc.config import load_config
from mft_hpc.controller.operations import cancel, resume, retry, start_run
from mft_hpc.generate.progress import progress_path
from mft_hpc.generate.rawfile import raw_path, read_raw
from mft_hpc.rundir.state import COMPLETED, StateStore
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey

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
@pytest.mark.container
def test_dry_run_prints_scripts_and_submits_nothing(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster,
                                                    evaluation_image):
    config = generation_only(tmp_path, tiny_model_dir, benchmarks_dir, "dry")
    data = yaml.safe_load(config.read_text())
    data["evaluate"] = {"enabled": True, "runtime": "apptainer", "image": str(evaluation_image)}
    config.write_text(yaml.safe_dump(data))
    result = subprocess.run([sys.executable, "-m", "mft_hpc", "run", str(config), "--dry-run"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("#!/bin/bash") == 3  # generation array + evaluation array + collect
    assert "#SBATCH --array=0-1%" in result.stdout
    assert "#SBATCH --dependency=aftercorr:DRY1" in result.stdout
    assert "#SBATCH --dependency=afterany:DRY2" in result.stdout
    # the sandbox command of each evaluation element, shell-quoted: the image, no network
    commands = [shlex.split(line) for line in result.stdout.splitlines() if "apptainer" in line.split(" ", 1)[0]]
    assert len(commands) == 2, result.stdout
    for argv in commands:
        assert argv[1:3] == ["-q", "exec"] and str(evaluation_image) in argv
        assert "--containall" in argv and argv[argv.index("--network") + 1] == "none"
    assert "# evaluate/main/mbpp  (DRY2_0)" in result.stdout
    assert not (tmp_path / "runs" / "dry").exists()
    assert not {n for n in slurm_job_names() if n.startswith("dry-")}


@pytest.mark.slurm
@pytest.mark.slow
def test_run_reattach_resume_and_retry_after_kill(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    # batch-1 generation of long Java prompts: slow enough to kill the element between two problems
    victim_task = "humanevalfixtests-java"
    config = generation_only(tmp_path, tiny_model_dir, benchmarks_dir, "gen", limit=3)
    data = yaml.safe_load(config.read_text())
    data["generate"].update({"tasks": [victim_task, "mbpp"], "backend": "exact", "max_new_tokens": 64,
                             "max_length_generation": 2000,
                             "dtype": "float32"})
    config.write_text(yaml.safe_dump(data))
    start_run(load_config(config))  # returns once everything is queued: the "controller" is gone after this
    root = tmp_path / "runs" / "gen"
    out = root / "members" / "main" / "generate"
    raw = raw_path(out, victim_task)

    # a hard kill (kill -9) of the element's process as soon as it has written one problem
    deadline = time.monotonic() + 300
    while not read_raw(raw):
        assert time.monotonic() < deadline, "the element never wrote a problem"
        time.sleep(0.1)
    progress = json.loads(progress_path(out, victim_task).read_text())
    assert "submitit" in Path(f"/proc/{progress['pid']}/cmdline").read_bytes().decode()
    os.kill(progress["pid"], signal.SIGKILL)

    # everything below works from the run directory alone
    elements = wait_for_run(root)
    states = {(e.stage, e.task): e.state for e in elements}
    assert states[("generate", "mbpp")] == COMPLETED
    assert states[("generate", victim_task)] == "failed", states
    kept = len(read_raw(raw))
    assert 1 <= kept < 3

    leaderboard = root / "collect" / "leaderboard.json"
    stale = leaderboard.stat().st_mtime_ns   # collect ran afterany, without the victim's problems
    retried = retry(root).submitted
    assert ElementKey("generate", "main", victim_task) in retried
    assert ElementKey("generate", "main", "mbpp") not in retried
    assert COLLECT_KEY in retried   # new results: the leaderboard is rewritten
    elements = wait_for_run(root)
    assert leaderboard.stat().st_mtime_ns > stale
    assert {(e.stage, e.task): e.state for e in elements}[("generate", victim_task)] == COMPLETED
    assert sorted(read_raw(raw)) == [0, 1, 2]  # the kept problems were not generated again
    with StateStore(root / "state.sqlite") as store:
        victim = [e for e in store.elements(stage="generate") if e.task == victim_task][0]
        assert victim.attempts == 2
        log_text = Path(victim.log_path).read_text()
    assert f"{kept} already in" in log_text
    # nothing left to do: no duplicate jobs
    assert resume(root).submitted == {}
    assert retry(root).submitted == {}


@pytest.mark.slurm
def test_cancel_pending_chain_leaves_nothing_queued(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    config = generation_only(tmp_path, tiny_model_dir, benchmarks_dir, "cancelme")
    data = yaml.safe_load(config.read_text())
    data["cluster"]["extra"] = {"hold": True}  # held: the whole chain stays pending
    config.write_text(yaml.safe_dump(data))
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
