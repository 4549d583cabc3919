"""Sweeps at scale on the real test cluster: task-major arrays end to end, per-member pipelining,
a failed training member cancelling only its own downstream elements, and a DAG larger than the
user's MaxSubmitJobs completing in waves. The stages are no-ops (tests/controller/scale_stages.py)."""

from __future__ import annotations

import functools
import subprocess

import cloudpickle
import pytest
import scale_stages
from controller_helpers import wait_for_run, write_chat_data, write_config

from mft_hpc.config import load_config
from mft_hpc.controller.operations import start_run
from mft_hpc.controller.submit import StageElements
from mft_hpc.controller.waves import read_waves
from mft_hpc.rundir.state import CANCELLED, COMPLETED, FAILED, PLANNED, StateStore
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.runfile import load_run

cloudpickle.register_pickle_by_value(scale_stages)
pytestmark = pytest.mark.slurm

TASKS = ["mbpp", "humanevalsynthesize-python"]


def sweep_config(tmp_path, tiny_model_dir, benchmarks_dir, name: str, members: int, **cluster):
    return write_config(
        tmp_path / f"{name}.yaml",
        run={"name": name, "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "debug", "time": 10, "array_parallelism": 8, **cluster},
        model={"path": str(tiny_model_dir)},
        data={"paths": write_chat_data(tmp_path / "data")},
        generate={"benchmarks": str(benchmarks_dir), "tasks": TASKS},  # collect reads it for unmerged shards
        evaluate={"enabled": True},
        submission={"enabled": False},
        sweep={"train.seed": list(range(members))},
    )


def no_op_stages(**train) -> StageElements:
    from mft_hpc.elements import CollectElement

    return StageElements(functools.partial(scale_stages.Train, **train), scale_stages.Generate,
                         scale_stages.Evaluate, CollectElement)


def sacct_times(job_ids) -> dict[str, tuple[str, str]]:
    masters = sorted({i.split("_")[0] for i in job_ids})
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,Start,End", "-j", ",".join(masters)],
                         capture_output=True, text=True).stdout
    return {row.split("|")[0]: tuple(row.split("|")[1:3]) for row in out.splitlines() if row.count("|") == 2}


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_40_member_sweep_in_task_major_arrays(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    from mft_hpc.dashboard import read_run, render_plain

    # training on the cpu partition (node n3), the rest on debug (n1, n2): a generation element never
    # waits for a CPU that the next training elements hold
    config = sweep_config(tmp_path, tiny_model_dir, benchmarks_dir, "scale40", 40,
                          stages={"train": {"partition": "cpu"}})
    # training times differ: seed0 1 s, seed1 15 s, seed2 30 s (the rest at once); seed5 fails
    outcome = start_run(load_config(config), functions=no_op_stages(sleep_s={0: 1, 1: 15, 2: 30}, fail_seeds=(5,)))
    assert outcome.sbatch_calls == 1 + len(TASKS) + len(TASKS) + 1  # whatever the number of members
    assert len(outcome.submitted) == 40 * (1 + 2 * len(TASKS)) + 1
    root = tmp_path / "runs" / "scale40"
    wait_for_run(root, deadline_s=1200)
    plan = load_run(root)
    with StateStore(plan.run.state_db, run=plan.name) as store:
        elements = {plan.key_of(e): e for e in store.elements()}
    states = {key: e.state for key, e in elements.items()}
    failed = "seed5"
    assert states[ElementKey("train", failed)] == FAILED
    downstream = {key for key in states if key.member == failed and key.stage != "train"}
    assert len(downstream) == 2 * len(TASKS) and {states[key] for key in downstream} == {CANCELLED}
    others = {key: state for key, state in states.items() if key.member not in (failed, COLLECT_KEY.member)}
    assert set(others.values()) == {COMPLETED}, {k: s for k, s in others.items() if s != COMPLETED}
    # collect ran (afterany) and ranked the others, but a leaderboard missing seed5 is not finished
    collect = elements[COLLECT_KEY]
    assert collect.state == FAILED and "leaderboard incomplete" in collect.last_error and failed in collect.last_error
    assert (root / "collect" / "leaderboard.json").is_file()

    # element m of each generation array waited for training element m only
    times = sacct_times([e.slurm_job_id for e in elements.values()])
    job = {key: e.slurm_job_id for key, e in elements.items()}
    for m in (0, 1):
        generation_start = times[job[ElementKey("generate", f"seed{m}", TASKS[0])]][0]
        training_start, training_end = times[job[ElementKey("train", f"seed{m}")]]
        assert generation_start >= times[job[ElementKey("train", f"seed{m}")]][1]
        assert generation_start < times[job[ElementKey("train", f"seed{m + 1}")]][1], (m, times)
        assert training_start <= generation_start

    text = render_plain(read_run(root))  # a large sweep: the aggregate view
    assert "Stages of 40 members" in text and "Members with failures (1)" in text and failed in text
    top = text.split("Top ", 1)[1]
    assert top.index("seed39") < top.index("seed38")  # ranked by mean pass@1 (seed / 100 in these stages)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sweep_larger_than_max_submit_jobs_completes_in_waves(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    limit = 14
    subprocess.run(["sacctmgr", "-i", "modify", "user", "root", "set", f"MaxSubmitJobs={limit}"], check=True,
                   capture_output=True)
    try:
        # the limit is enforced: this DAG (31 jobs) would not go in at once
        refused = subprocess.run(["sbatch", "--hold", "-o", "/dev/null", "--array=0-30", "--wrap", "true"],
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and "MaxSubmitJob" in refused.stderr

        config = sweep_config(tmp_path, tiny_model_dir, benchmarks_dir, "waves", 6, array_layout="task")
        outcome = start_run(load_config(config), functions=no_op_stages())
        assert f"MaxSubmitJobs={limit}" in outcome.notes[0] and "waves" in outcome.notes[0]
        assert 0 < len(outcome.submitted) <= limit - 2
        root = tmp_path / "runs" / "waves"
        elements = wait_for_run(root, deadline_s=1000,
                                settled=lambda elements: all(e.state != PLANNED for e in elements))
        assert {e.state for e in elements} == {COMPLETED}
        assert len(elements) == 6 * (1 + 2 * len(TASKS)) + 1
        with StateStore(root / "state.sqlite") as store:
            waves = read_waves(store)
        assert waves["finished"] and waves["wave"] >= 3, waves  # 2 members (10 jobs) per wave
    finally:
        subprocess.run(["sacctmgr", "-i", "modify", "user", "root", "set", "MaxSubmitJobs=-1"], capture_output=True)
