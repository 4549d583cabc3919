"""Two processes on this machine (submitit local executor, tasks_per_node=2): DeepSpeed ZeRO-2 over gloo;
a preemption signal that reaches only one rank still makes both checkpoint the same step."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mft_hpc.config.sections.train import TrainSection
from mft_hpc.train.deepspeed_config import build_deepspeed_config
from tests.train.helpers import metric_rows, trained_step, with_cluster


def test_deepspeed_config_is_generated_and_user_overrides_merge():
    train = TrainSection(micro_batch_size=4, gradient_accumulation_steps=3, offload_optimizer=True,
                         deepspeed={"zero_optimization": {"reduce_bucket_size": 1000}, "gradient_clipping": 0.5})
    config = build_deepspeed_config(train, world_size=16, bf16=True)
    assert config["train_batch_size"] == 4 * 3 * 16 and config["bf16"] == {"enabled": True}
    zero = config["zero_optimization"]
    assert zero["stage"] == 2 and zero["offload_optimizer"]["device"] == "cpu" and zero["reduce_bucket_size"] == 1000
    assert config["gradient_clipping"] == 0.5 and config["zero_force_ds_cpu_optimizer"] is False


def assert_two_rank_deepspeed(member, hosts=None):
    ranks = [json.loads((member / "train" / "ranks" / f"rank_{i}.json").read_text()) for i in (0, 1)]
    for rank in ranks:  # recorded from inside each worker
        assert rank["distributed_type"] == "DistributedType.DEEPSPEED" and rank["engine"] == "DeepSpeedEngine"
        assert (rank["num_processes"], rank["world_size"], rank["zero_stage"], rank["backend"]) == (2, 2, 2, "gloo")
    if hosts:
        assert sorted(rank["host"] for rank in ranks) == hosts


def assert_close_to_reference(member, reference_member):
    """Same 4 rows per optimizer step, grouped differently into micro-batches: close, not equal."""
    dist, ref = metric_rows(member), metric_rows(reference_member)
    assert [r["step"] for r in dist] == [r["step"] for r in ref]
    assert dist[0]["loss"] == pytest.approx(ref[0]["loss"], rel=0.05)
    mean = lambda rows: sum(r["loss"] for r in rows) / len(rows)  # noqa: E731
    assert mean(dist) == pytest.approx(mean(ref), rel=0.05)
    final = lambda m: metric_rows(m, "eval")[-1]["valid_loss"]  # noqa: E731
    assert final(member) == pytest.approx(final(reference_member), rel=0.05)
    assert final(member) < metric_rows(member)[0]["loss"]


def _submit_two_processes(config, member, logs):
    from mft_hpc.elements import TrainElement
    from mft_hpc.slurm.executor import make_executor

    executor = make_executor(config.cluster, logs, name="train-2proc")
    return executor.submit(TrainElement(config, str(member)))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, reference_run):
    """The reference config on 2 local processes, uninterrupted: (config, member dir)."""
    config, _ = reference_run
    data = config.model_dump()
    data["train"]["gradient_accumulation_steps"] = 1  # 2 ranks x 2 rows = the reference's 2 x 2 micro-batches
    data["train"]["save_steps"] = 1000  # checkpoints only at the best evaluations (8, 16) and the end
    config = with_cluster(type(config).model_validate(data), executor="local", tasks_per_node=2, time=10)
    root = tmp_path_factory.mktemp("two-process")
    merged = _submit_two_processes(config, root / "member", root / "logs").results()[0]  # rank 0's result
    assert merged.endswith("merged")
    return config, root / "member"


@pytest.mark.slow
def test_two_processes_deepspeed_zero2_gloo_agree_with_single_process(two_process_run, reference_run):
    _, member = two_process_run
    assert (member / "train" / "merged.done").exists()
    assert_two_rank_deepspeed(member)
    assert_close_to_reference(member, reference_run[1])


@pytest.mark.slow
def test_usr2_to_one_rank_checkpoints_both_ranks_at_the_same_step_and_resumes_exactly(tmp_path, two_process_run):
    """Slurm's ranks can get the signal at different moments; here only rank 1 gets USR2. The ranks
    agree in the loop's all-reduce, save together after that optimizer step, and rank 0 (the one
    submitit requeues from) hands over: submitit's local executor restarts both tasks."""
    config, straight = two_process_run
    member = tmp_path / "member"
    job = _submit_two_processes(config, member, tmp_path / "logs")
    rank_1 = member / "train" / "ranks" / "rank_1.json"
    deadline = time.time() + 300
    while not (rank_1.exists() and trained_step(member) >= 2):
        assert time.time() < deadline, "the 2-process job trained no 2 steps in 300 s"
        time.sleep(0.1)
    signalled_at = trained_step(member)
    os.kill(json.loads(rank_1.read_text())["pid"], signal.SIGUSR2)
    assert job.results()[0].endswith("merged") and (member / "train" / "adapter.done").exists()

    starts = metric_rows(member, "start")
    assert len(starts) == 2, starts  # requeued once
    resumed_at = starts[1]["step"]
    assert signalled_at < resumed_at < 20, (signalled_at, starts)
    history = (member / "train" / "checkpoints" / "history.jsonl").read_text().splitlines()
    saves = [(row["step"], row["reason"]) for row in map(json.loads, history)]
    # the signal's checkpoint ("best" instead if that step had one anyway)
    assert (resumed_at, "requeue-signal") in saves or (resumed_at, "best") in saves, saves
    assert [step for step, _ in saves] == sorted({step for step, _ in saves}) and saves[-1] == (20, "final")
    logs = {path.name: path.read_text() for path in (tmp_path / "logs").glob("*/*_log.err")}
    rank_logs = [next(text for name, text in logs.items() if name.endswith(f"_{rank}_log.err")) for rank in (0, 1)]
    assert "caught SIGUSR2" in rank_logs[1] and "caught SIGUSR2" not in rank_logs[0]
    assert all("checkpoint saved: handing the SIGUSR2 over" in text for text in rank_logs)  # same step, both
    assert [r["loss"] for r in metric_rows(member)] == [r["loss"] for r in metric_rows(straight)]  # exact
    assert_two_rank_deepspeed(member)
