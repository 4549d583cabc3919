"""Two processes on this machine (submitit local executor, tasks_per_node=2): DeepSpeed ZeRO-2 over gloo."""

from __future__ import annotations

import json

import pytest

from mft_hpc.config.sections.train import TrainSection
from mft_hpc.train.deepspeed_config import build_deepspeed_config
from tests.train.helpers import metric_rows, with_cluster


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


@pytest.mark.slow
def test_two_processes_deepspeed_zero2_gloo_agree_with_single_process(tmp_path, reference_run):
    from jobs.train import TrainJob
    from mft_hpc.slurm.executor import make_executor

    config, reference_member = reference_run
    data = config.model_dump()
    data["train"]["gradient_accumulation_steps"] = 1  # 2 ranks x 2 rows = the reference's 2 x 2 micro-batches
    config = with_cluster(type(config).model_validate(data), executor="local", tasks_per_node=2, time=10)
    executor = make_executor(config.cluster, tmp_path / "logs", name="train-2proc")
    job = executor.submit(TrainJob(config, str(tmp_path / "member")))
    merged = job.results()[0]  # rank 0 returns the merged directory
    assert (tmp_path / "member" / "train" / "merged.done").exists() and merged.endswith("merged")
    assert_two_rank_deepspeed(tmp_path / "member")
    assert_close_to_reference(tmp_path / "member", reference_member)
