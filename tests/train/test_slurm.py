"""Training on the test Slurm cluster: 2 nodes x 1 task (gloo across the n1/n2 namespaces), and a
`scontrol requeue` mid-run that the job survives by resuming from its last checkpoint."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.train.helpers import metric_rows, with_cluster
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


def _submit(config, member, logs, **cluster):
    from jobs.train import TrainJob
    from mft_hpc.slurm.executor import make_executor

    config = with_cluster(config, executor="slurm", partition="debug", cpus_per_task=1, time=15, **cluster)
    return make_executor(config.cluster, logs, name="train-test").submit(TrainJob(config, str(member)))


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
    saved = _saved_steps(member)
    assert saved == sorted(set(saved)) and saved[-1] == 300, saved  # checkpoint step only ever increased
    assert [r["step"] for r in metric_rows(member)] == list(range(5, 301, 5))

    assert two_node.results()[0].endswith("merged")
    assert_two_rank_deepspeed(tmp_path / "two-node", hosts=["n1", "n2"])
    assert_close_to_reference(tmp_path / "two-node", reference_member)
