"""Training on the test Slurm cluster: 2 nodes x 1 task (gloo across the n1/n2 namespaces); a
`scontrol requeue` mid-run that the job survives by resuming from its last checkpoint; and the
time-limit/preemption signal (USR2), after which the job checkpoints the step it is in and requeues.

What Slurm sends (checked on this cluster, Slurm 22.05, submitit 1.5.4): `scontrol requeue` sends
SIGTERM (+ SIGCONT) and SIGKILL KillWait seconds later, and requeues by itself: submitit ignores the
TERM and never calls `checkpoint()` (the training's PreemptionGuard saves at the next step when it
can before the kill). The USR2 that submitit asks for with `--signal=USR2@90` before the
time limit (and that preemption sends with PreemptParameters=send_user_signal) is what makes
submitit call `checkpoint()` and requeue; `scancel --signal=USR2 JOB` delivers it to every task.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.train.helpers import REFERENCE, make_config, metric_rows, trained_step, with_cluster
from tests.train.test_distributed import assert_close_to_reference, assert_two_rank_deepspeed


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _saved_steps(member) -> list[int]:
    history = member / "train" / "checkpoints" / "history.jsonl"
    if not history.exists():
        return []
    return [json.loads(line)["step"] for line in history.read_text().splitlines() if line.strip()]


def _saves(member) -> list[tuple[int, str]]:
    history = member / "train" / "checkpoints" / "history.jsonl"
    return [(row["step"], row["reason"]) for row in map(json.loads, history.read_text().splitlines())]


def _submit(config, member, logs, **cluster):
    from mft_hpc.elements import TrainElement
    from mft_hpc.slurm.executor import make_executor

    config = with_cluster(config, executor="slurm", partition="debug", cpus_per_task=1, time=15, **cluster)
    return make_executor(config.cluster, logs, name="train-test").submit(TrainElement(config, str(member)))


@pytest.mark.slurm
@pytest.mark.slow
def test_two_node_run_and_a_requeued_run(tmp_path, slurm_cluster, reference_run):
    config, reference_member = reference_run
    # A: the reference config on 2 nodes x 1 task; 2 ranks x 2 rows = the reference's 2 x 2 micro-batches
    data = config.model_dump()
    data["train"]["gradient_accumulation_steps"] = 1
    two_node = _submit(type(config).model_validate(data), tmp_path / "two-node", tmp_path / "logs",
                       nodes=2, tasks_per_node=1)
    # B: long enough (300 steps, ~0.1 s each here) that `scontrol requeue`, sent right after the first
    # checkpoint (step 10), lands mid-run: it took ~5 s to take effect on the loaded dev box
    data = config.model_dump()
    data["train"].update(max_steps=300, save_steps=10, eval_steps=150, log_steps=5)
    member = tmp_path / "requeued"
    requeued = _submit(type(config).model_validate(data), member, tmp_path / "logs", nodes=1, tasks_per_node=1)

    _wait_for(lambda: _saved_steps(member), 420, "the first checkpoint (the job may queue behind others)")
    subprocess.run(["scontrol", "requeue", requeued.job_id], check=True, timeout=30)
    assert requeued.results()[0].endswith("merged") and (member / "train" / "merged.done").exists()
    assert (member / "train" / "adapter.done").exists()
    starts = metric_rows(member, "start")
    assert len(starts) == 2 and starts[1]["resumed_from"] is not None, starts  # it really was requeued
    # the requeue's SIGTERM reached the training (a checkpoint follows at the next step if it beats the kill)
    assert any("caught SIGTERM" in path.read_text() for path in (tmp_path / "logs").glob(f"{requeued.job_id}/*.err"))
    saved = _saved_steps(member)
    assert saved == sorted(set(saved)) and saved[-1] == 300, saved  # checkpoint step only ever increased
    assert [r["step"] for r in metric_rows(member)] == list(range(5, 301, 5))

    assert two_node.results()[0].endswith("merged")
    assert_two_rank_deepspeed(tmp_path / "two-node", hosts=["n1", "n2"])
    assert_close_to_reference(tmp_path / "two-node", reference_member)


@pytest.mark.slurm
@pytest.mark.slow
def test_usr2_checkpoints_the_current_step_requeues_and_resumes_with_the_same_losses(
        tmp_path, slurm_cluster, tiny_model_dir, task_paths, torch_one_thread):
    """Preemption / time limit simulated as Slurm delivers it with submitit's `--signal=USR2@90`:
    `scancel --signal=USR2` once the job has trained a few steps. No periodic or best checkpoint
    exists before the end (save_steps and eval_steps past max_steps), so resuming past step 0 proves
    the checkpoint was taken at the signal."""
    from mft_hpc.train import train_member

    config = make_config(tiny_model_dir, task_paths, **{**REFERENCE, "max_steps": 100, "save_steps": 1000,
                                                        "eval_steps": 1000, "log_steps": 1})
    member = tmp_path / "preempted"
    job = _submit(config, member, tmp_path / "logs", nodes=1, tasks_per_node=1)
    signalled_at = _wait_for(lambda: trained_step(member) >= 3 and trained_step(member), 420,
                             "3 trained steps (the job may queue behind others)")
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True, timeout=30)

    straight = tmp_path / "straight"
    train_member(config, straight)  # the uninterrupted run, in this process, while the job goes on
    assert job.results()[0].endswith("merged") and (member / "train" / "adapter.done").exists()

    starts = metric_rows(member, "start")
    assert len(starts) == 2, starts  # it was requeued once
    resumed_at = starts[1]["step"]
    assert signalled_at < resumed_at < 100 and starts[1]["resumed_from"] == f"step_{resumed_at:08d}"
    assert _saves(member) == [(resumed_at, "requeue-signal"), (100, "final")]  # the signal's checkpoint
    rows, reference = metric_rows(member), metric_rows(straight)
    assert [r["step"] for r in rows] == list(range(1, 101))
    assert [r["loss"] for r in rows] == [r["loss"] for r in reference]  # exact: fp32, CPU, 1 thread
    assert [r["lr"] for r in rows] == [r["lr"] for r in reference]
    log = (tmp_path / "logs").glob("*/*_0_log.err")
    assert any("handing the SIGUSR2 over to submitit" in path.read_text() for path in log)
