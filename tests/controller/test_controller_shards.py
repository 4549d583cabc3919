"""Sharded generation through the controller on the real test Slurm cluster (and the local executor):
shards are array elements, a task's evaluation waits for exactly its shards, the merge equals an
unsharded generation, and `resume` after one shard's output is lost regenerates only that shard."""

from __future__ import annotations

import json
import subprocess

import pytest
from controller_helpers import wait_for_run, write_config

from mft_hpc.config import load_config
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.controller.operations import resume, start_run
from mft_hpc.generate import run_task
from mft_hpc.generate.outputs import generations_path
from mft_hpc.generate.rawfile import raw_path, read_raw
from mft_hpc.rundir import is_done
from mft_hpc.rundir.state import COMPLETED, StateStore
from mft_hpc.slurm.job_states import master_id

TASKS = ["mbpp", "humanevalsynthesize-python"]
LIMIT, SHARD_SIZE = 4, 2


def sharded_config(tmp_path, tiny_model_dir, benchmarks_dir, name, executor="slurm", evaluate=None,
                   shard_size=SHARD_SIZE):
    # batch-1 float32 decoding: a problem's completion does not depend on which shard it is in
    return write_config(
        tmp_path / f"{name}.yaml",
        run={"name": name, "root": str(tmp_path / "runs")},
        cluster={"executor": executor, "partition": "debug", "time": 10},
        model={"path": str(tiny_model_dir)},
        train={"enabled": False},
        generate={"benchmarks": str(benchmarks_dir), "limit": LIMIT, "shard_size": shard_size, "tasks": TASKS,
                  "backend": "exact", "dtype": "float32", "max_new_tokens": 8},
        evaluate=evaluate or {"enabled": False},
        submission={"enabled": False},
    )


def sacct_times(job_ids) -> dict[str, tuple[str, str]]:
    """JobID (array elements as 12_3) -> (Start, End), ISO times that compare as strings."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,Start,End", "-j", ",".join(sorted(job_ids))],
                         capture_output=True, text=True, check=True).stdout
    return {row.split("|")[0]: tuple(row.split("|")[1:3]) for row in out.splitlines() if row}


def unsharded_generations(tmp_path, tiny_model_dir, config) -> dict[str, tuple[dict, str]]:
    """The same tasks generated in one piece each (here, in-process): raw completions and the file."""
    gen = load_config(config).config.generate.model_copy(update={"shard_size": None})
    out = tmp_path / "unsharded"
    for task in TASKS:
        run_task(tiny_model_dir, task, out, gen, model_name="ref")
    return {t: (read_raw(raw_path(out, t)), generations_path(out, t, "ref").read_text()) for t in TASKS}


def remove_done(path) -> None:
    for p in (path, path.with_name(path.name + ".done")):
        p.unlink()


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.container
def test_sharded_generation_on_slurm(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster, evaluation_image):
    config = sharded_config(tmp_path, tiny_model_dir, benchmarks_dir, "shards",
                            evaluate={"runtime": "apptainer", "image": str(evaluation_image)})
    outcome = start_run(load_config(config))
    root = tmp_path / "runs" / "shards"
    out = root / "members" / "main" / "generate"
    shard_keys = [ElementKey("generate", "main", t, k) for t in TASKS for k in range(LIMIT // SHARD_SIZE)]
    assert set(outcome.submitted) == set(shard_keys) | {ElementKey("evaluate", "main", t) for t in TASKS} | {COLLECT_KEY}
    # the shards are the elements of one generation array
    gen_ids = [outcome.submitted[k] for k in shard_keys]
    master = master_id(gen_ids[0])
    assert gen_ids == [f"{master}_{i}" for i in range(len(shard_keys))]

    elements = wait_for_run(root, deadline_s=600)
    assert {e.label: e.state for e in elements} == {e.label: COMPLETED for e in elements}
    with StateStore(root / "state.sqlite") as store:
        shards = store.elements(stage="generate")
    assert sorted((e.task, e.element, e.slurm_job_id) for e in shards) == sorted(
        (k.task, k.shard, outcome.submitted[k]) for k in shard_keys)

    # each task's evaluation started only after every one of its shards had ended
    evaluations = {t: outcome.submitted[ElementKey("evaluate", "main", t)] for t in TASKS}
    times = sacct_times({master} | {master_id(i) for i in evaluations.values()})
    for task, job in evaluations.items():
        own = [outcome.submitted[k] for k in shard_keys if k.task == task]
        assert all(times[job][0] >= times[shard][1] for shard in own), (task, times)
    metrics = json.loads((root / "members" / "main" / "evaluate" / "metrics_shards" / "metrics_mbpp_shards.json")
                         .read_text())
    assert set(metrics) == {"mbpp", "config"}

    # the merged generations equal one unsharded generation of the same tasks, in dataset order
    reference = unsharded_generations(tmp_path, tiny_model_dir, config)
    for task in TASKS:
        merged = read_raw(raw_path(out, task))
        assert list(merged) == list(range(LIMIT))
        assert {i: r["completion"] for i, r in merged.items()} == {i: r["completion"] for i, r in reference[task][0].items()}
        assert generations_path(out, task, "shards").read_text() == reference[task][1]

    # one shard's output lost (with what was derived from it): resume regenerates that shard only
    kept = raw_path(out, "mbpp", 0)
    kept_bytes, kept_mtime = kept.read_bytes(), kept.stat().st_mtime_ns
    before = generations_path(out, "mbpp", "shards").read_text()
    for path in (raw_path(out, "mbpp", 1), raw_path(out, "mbpp"), generations_path(out, "mbpp", "shards"),
                 root / "members" / "main" / "evaluate" / "metrics_shards" / "metrics_mbpp_shards.json"):
        remove_done(path)
    again = resume(root).submitted
    assert set(again) == {ElementKey("generate", "main", "mbpp", 1), ElementKey("evaluate", "main", "mbpp"), COLLECT_KEY}
    elements = wait_for_run(root, deadline_s=600)
    assert {e.label: e.state for e in elements} == {e.label: COMPLETED for e in elements}
    attempts = {e.label: e.attempts for e in elements}
    assert attempts["generate/main/mbpp/1"] == 2 and attempts["generate/main/mbpp/0"] == 1
    assert attempts["generate/main/humanevalsynthesize-python/0"] == 1
    assert (kept.read_bytes(), kept.stat().st_mtime_ns) == (kept_bytes, kept_mtime)
    assert generations_path(out, "mbpp", "shards").read_text() == before
    with StateStore(root / "state.sqlite") as store:
        log_text = open(store.element("generate/main/mbpp/1").log_path).read()
    assert "0 already in" in log_text and "generating 2" in log_text
    assert resume(root).submitted == {}


@pytest.mark.slow
@pytest.mark.parametrize("shard_size", [SHARD_SIZE, None])
def test_generation_on_the_local_executor(tmp_path, tiny_model_dir, benchmarks_dir, shard_size):
    config = sharded_config(tmp_path, tiny_model_dir, benchmarks_dir, "local", executor="local", shard_size=shard_size)
    outcome = start_run(load_config(config))
    root = tmp_path / "runs" / "local"
    out = root / "members" / "main" / "generate"
    shards = (0, 1) if shard_size else (0,)
    with StateStore(root / "state.sqlite") as store:
        states = {e.label: e.state for e in store.elements()}
    assert states == {**{f"generate/main/{t}/{k}": COMPLETED for t in TASKS for k in shards},
                      "collect/_run/0": COMPLETED}
    assert set(outcome.submitted) == ({ElementKey("generate", "main", t, k) for t in TASKS for k in shards} if shard_size
                                      else {ElementKey("generate", "main", t) for t in TASKS}) | {COLLECT_KEY}
    for task in TASKS:
        assert all(is_done(raw_path(out, task, k if shard_size else None)) for k in shards)
        assert len(json.loads(generations_path(out, task, "local").read_text())) == LIMIT

    # collect's run report: no accounting here, so the generation job's cost is its measured wall time
    # x the 1 CPU it asked for, labelled as measured
    report = json.loads((root / "collect" / "report.json").read_text())
    with StateStore(root / "state.sqlite") as store:
        runs = {(a.slurm_job_id, a.submitted_at, a.ended_at) for e in store.elements(stage="generate")
                for a in store.attempts(e.id)}
    assert len({job for job, _, _ in runs}) == 1  # the local executor runs a member's generation as one job
    wall = max(ended for _, _, ended in runs) - min(submitted for _, submitted, _ in runs)
    assert report["scheduling"]["source"] == "measured"
    assert report["scheduling"]["cost"]["by_stage"]["generate"]["cpu_hours"] == pytest.approx(wall / 3600)
