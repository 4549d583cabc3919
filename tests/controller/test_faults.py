"""Faults during a controller run on the real test Slurm cluster: `scontrol requeue` of training,
and slurmctld restarted mid-run. Either way the run completes with no job submitted twice."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from controller_helpers import wait_for_run, write_chat_data, write_config
from polling import wait_for

from mft_hpc.config import load_config
from mft_hpc.controller.operations import refresh_run, start_run
from mft_hpc.generate.progress import progress_path
from mft_hpc.rundir.state import COMPLETED, FAILED_STATES, PENDING, RUNNING, StateStore
from mft_hpc.runplan.key import ElementKey
from mft_hpc.slurm import SlurmCommands, StatusPoller

RESTART_CTLD = Path(__file__).resolve().parents[1] / "cluster" / "restart_ctld.sh"


def sacct_rows(job_id: str) -> list[list[str]]:
    """Every record of a job, requeued runs included (-D): [state, start, end] oldest first."""
    out = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-o", "JobID,State,Start,End", "-j", job_id],
                         capture_output=True, text=True, timeout=30).stdout
    return [row.split("|")[1:] for row in out.splitlines() if row.split("|")[0] == job_id]


def saved_steps(member: Path) -> list[int]:
    history = member / "train" / "checkpoints" / "history.jsonl"
    if not history.exists():
        return []
    return [json.loads(line)["step"] for line in history.read_text().splitlines() if line.strip()]


def attempts_and_ids(root: Path) -> dict[str, tuple[int, str]]:
    with StateStore(root / "state.sqlite") as store:
        return {e.label: (e.attempts, e.slurm_job_id) for e in store.elements()}


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.container
def test_requeued_training_resumes_and_its_dependents_still_run(tmp_path, tiny_model_dir, benchmarks_dir,
                                                                slurm_cluster, evaluation_image):
    config = write_config(
        tmp_path / "requeue.yaml",
        run={"name": "requeue", "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "debug", "time": 15},
        data={"paths": write_chat_data(tmp_path / "data" / "adds"), "seq_length": 128, "mode": "padding",
              "valid_ratio": 0.2},
        model={"path": str(tiny_model_dir)},
        # long enough (300 steps, ~0.1 s each) that a requeue sent after the first checkpoint lands mid-run
        train={"lora_rank": 8, "lora_alpha": 16, "learning_rate": 5e-3, "min_lr": 5e-4, "warmup_steps": 2,
               "max_steps": 300, "save_steps": 10, "eval_steps": 150, "log_steps": 5, "micro_batch_size": 4,
               "merge_dtype": "fp32"},
        generate={"benchmarks": str(benchmarks_dir), "limit": 2, "max_length_generation": 48, "tasks": ["mbpp"],
                  "batch_size": 2},
        evaluate={"runtime": "apptainer", "image": str(evaluation_image)},
        submission={"enabled": False},
    )
    outcome = start_run(load_config(config))
    root = tmp_path / "runs" / "requeue"
    member = root / "members" / "main"
    train_id = outcome.submitted[ElementKey("train", "main")]
    submitted = attempts_and_ids(root)

    wait_for(lambda: saved_steps(member), 420, 0.2, "the first checkpoint (the job may queue behind others)")
    subprocess.run(["scontrol", "requeue", train_id], check=True, timeout=30)

    elements = wait_for_run(root, deadline_s=900)
    assert {e.label: e.state for e in elements} == {e.label: COMPLETED for e in elements}
    assert attempts_and_ids(root) == submitted  # same ids, one attempt each: nothing was resubmitted
    records = sacct_rows(train_id)
    assert [state for state, _, _ in records] == ["REQUEUED", "COMPLETED"], records  # Slurm really requeued it
    starts = [json.loads(line) for line in (member / "train" / "metrics.jsonl").read_text().splitlines()]
    starts = [row for row in starts if row["kind"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from"] is not None, starts  # resumed from its checkpoint
    assert saved_steps(member)[-1] == 300
    # afterok held across the requeue: generation started only after the requeued training ended
    gen_id = outcome.submitted[ElementKey("generate", "main", "mbpp")]
    assert sacct_rows(gen_id)[-1][1] >= records[-1][2], (sacct_rows(gen_id), records)
    board = json.loads((root / "collect" / "leaderboard.json").read_text())
    assert [row["member"] for row in board["members"]] == ["main"]
    assert isinstance(board["members"][0]["scores"]["mbpp"], float)


def ctld_pid() -> int:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    pid_file = next(line.split("=", 1)[1].strip() for line in config.splitlines()
                    if line.startswith("SlurmctldPidFile"))
    return int(Path(pid_file).read_text())


@pytest.mark.slurm
@pytest.mark.slow
def test_slurmctld_restart_mid_run(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    if os.geteuid() != 0:
        pytest.skip("restarting slurmctld needs root (tests/cluster/restart_ctld.sh)")
    slow_task = "humanevalfixtests-java"  # batch-1 generation of long Java prompts: still running at the restart
    config = write_config(
        tmp_path / "restart.yaml",
        run={"name": "restart", "root": str(tmp_path / "runs")},
        # %1: the second generation element waits in the queue while the first runs
        cluster={"executor": "slurm", "partition": "debug", "time": 10, "array_parallelism": 1},
        model={"path": str(tiny_model_dir)},
        train={"enabled": False},
        generate={"benchmarks": str(benchmarks_dir), "limit": 2, "tasks": [slow_task, "mbpp"], "backend": "exact",
                  "max_new_tokens": 64, "max_length_generation": 2000, "dtype": "float32"},
        evaluate={"enabled": False},
        submission={"enabled": False},
    )
    start_run(load_config(config))
    root = tmp_path / "runs" / "restart"
    submitted = attempts_and_ids(root)
    out = root / "members" / "main" / "generate"
    wait_for(lambda: progress_path(out, slow_task).exists(), 420, 0.2, "the first generation element to start")
    before = {e.label: e.state for e in refresh_run(root)}
    assert before[f"generate/main/{slow_task}/0"] == RUNNING, before
    assert before["generate/main/mbpp/0"] == PENDING and before["collect/_run/0"] == PENDING, before

    pid = ctld_pid()
    log = tmp_path / "restart.log"
    with open(log, "w") as handle:
        # ~6-8 s without slurmctld in all (stop + 4 s + start): under MessageTimeout (10 s), so other
        # users' Slurm clients only block meanwhile
        restart = subprocess.Popen(["bash", str(RESTART_CTLD), "4"], stdout=handle, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "slurmctld stopped" in log.read_text() or restart.poll() is not None, 90, 0.2,
                 "slurmctld to stop")
        assert "slurmctld stopped" in log.read_text(), log.read_text()
        # a status refresh while slurmctld is down: squeue gets no answer (a 1 s timeout here, shorter
        # than the client's own retrying), the poller falls back to accounting, nothing is marked failed
        poller = StatusPoller(SlurmCommands(timeout_s=1))
        during = {e.label: e.state for e in refresh_run(root, poller)}
        assert "slurmctld up" not in log.read_text(), "slurmctld was back before the refresh: no outage seen"
        assert poller.commands.calls["squeue"] == 1 and poller.commands.calls["sacct"] == 1, poller.commands.calls
        assert not {label: s for label, s in during.items() if s in FAILED_STATES}, during
        # the default refresh while it is still down or coming back: Slurm's clients retry, no crash
        refresh_run(root)
        assert restart.wait(timeout=120) == 0, log.read_text()
    finally:
        if restart.poll() is None:
            restart.wait(timeout=120)
    assert "slurmctld up" in log.read_text() and ctld_pid() != pid

    elements = wait_for_run(root, deadline_s=600)
    assert {e.label: e.state for e in elements} == {e.label: COMPLETED for e in elements}
    assert attempts_and_ids(root) == submitted  # the restarted slurmctld kept every job id: nothing resubmitted
    assert (root / "collect" / "leaderboard.json").exists()
