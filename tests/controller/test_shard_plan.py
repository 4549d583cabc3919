"""Sharded generation in the controller, without a scheduler: the plan's keys, the state store's
elements, .done rules, and the dependencies a (dry-run) submission renders."""

from __future__ import annotations

import json

import pytest

from mft_hpc.config.schema import Config
from mft_hpc.controller.dag import all_keys, descendants, element_specs
from mft_hpc.controller.submit import DagSubmitter
from mft_hpc.generate.rawfile import raw_path
from mft_hpc.generate.shards import n_shards, task_size
from mft_hpc.rundir import RunDir, mark_done
from mft_hpc.rundir.state import COMPLETED, FAILED, PENDING, PLANNED, RUNNING, ElementSpec, StateChange, StateStore
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.plan import build_plan
from mft_hpc.slurm import DryRunLog, Submitter

TASKS = ["mbpp", "humanevalsynthesize-python"]


def plan_for(tmp_path, evaluate=False, **generate):
    config = Config.model_validate({
        "run": {"name": "shards", "root": str(tmp_path / "runs")},
        "cluster": {"executor": "slurm", "partition": "debug"},
        "model": {"path": str(tmp_path)},
        "train": {"enabled": False},
        "generate": {"benchmarks": str(tmp_path), "tasks": TASKS, **generate},
        "evaluate": {"enabled": evaluate},
    })
    return build_plan(RunDir.create(tmp_path / "runs" / "shards"), [("main", config)], is_sweep=False)


def test_task_size_without_reading_the_data():
    assert task_size("mbpp") == 500 and task_size("humanevalfixtests-go") == 164
    assert task_size("mbpp", limit=4) == 4 and task_size("mbpp", limit=900) == 500
    assert n_shards(task_size("mbpp"), 100) == 5


def test_one_generation_element_per_shard(tmp_path):
    plan = plan_for(tmp_path, limit=4, shard_size=2)
    member = plan.member("main")
    assert member.generate_keys() == [ElementKey("generate", "main", t, k) for t in TASKS for k in (0, 1)]
    assert member.generate_keys("mbpp") == [ElementKey("generate", "main", "mbpp", 0), ElementKey("generate", "main", "mbpp", 1)]
    assert all_keys(plan) == member.generate_keys() + [COLLECT_KEY]


def test_shard_count_follows_size_limit_and_shard_size(tmp_path):
    member = plan_for(tmp_path / "a", shard_size=100).member("main")
    assert member.shard_count("mbpp") == 5 and member.shard_count("humanevalsynthesize-python") == 2
    member = plan_for(tmp_path / "b", shard_size=100, limit=150).member("main")
    assert member.shard_count("mbpp") == 2 and member.shard_count("humanevalsynthesize-python") == 2
    member = plan_for(tmp_path / "c", shard_size=200).member("main")  # humaneval fits in one element
    assert member.generate_keys("humanevalsynthesize-python") == [ElementKey("generate", "main", "humanevalsynthesize-python")]
    assert len(member.generate_keys("mbpp")) == 3
    member = plan_for(tmp_path / "d", limit=4).member("main")  # no shard_size: one element per task
    assert member.generate_keys() == [ElementKey("generate", "main", t) for t in TASKS]


def test_shard_elements_in_the_state_store(tmp_path):
    plan = plan_for(tmp_path, evaluate=True, limit=4, shard_size=2)
    member = plan.member("main")
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        elements = store.elements(stage="generate")
        assert [(e.task, e.element) for e in elements] == [("humanevalsynthesize-python", 0),
                                                           ("humanevalsynthesize-python", 1), ("mbpp", 0), ("mbpp", 1)]
        assert {e.label for e in elements} >= {"generate/main/mbpp/0", "generate/main/mbpp/1"}
        for e in elements:  # a shard's output is its raw file; the key round-trips through the store
            assert e.output_path == str(raw_path(member.generate_dir, e.task, e.element))
            assert plan.key_of(e) == ElementKey("generate", "main", e.task, e.element)
        evaluation = store.elements(stage="evaluate")
        assert [plan.key_of(e) for e in evaluation] == [ElementKey("evaluate", "main", t) for t in sorted(TASKS)]


def test_unsharded_keys_stay_three_tuples(tmp_path):
    plan = plan_for(tmp_path, evaluate=True, limit=4)
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        keys = {plan.key_of(e) for e in store.elements()}
    assert keys == set(all_keys(plan))
    assert ElementKey("generate", "main", "mbpp") in keys


def test_shard_is_done_by_its_raw_file_or_the_whole_task(tmp_path):
    plan = plan_for(tmp_path, limit=4, shard_size=2)
    member = plan.member("main")
    assert not plan.is_done(ElementKey("generate", "main", "mbpp", 0))
    mark_done(raw_path(member.generate_dir, "mbpp", 0))
    assert plan.is_done(ElementKey("generate", "main", "mbpp", 0))
    assert not plan.is_done(ElementKey("generate", "main", "mbpp", 1))
    assert not plan.is_done(ElementKey("generate", "main", "mbpp"))  # the task: its merged generations file
    mark_done(member.generation_file("mbpp"))
    assert plan.is_done(ElementKey("generate", "main", "mbpp", 1)) and plan.is_done(ElementKey("generate", "main", "mbpp"))


def test_descendants_of_a_shard(tmp_path):
    plan = plan_for(tmp_path, evaluate=True, limit=4, shard_size=2)
    assert descendants(plan, [ElementKey("generate", "main", "mbpp", 1)]) == {ElementKey("evaluate", "main", "mbpp"), COLLECT_KEY}


def dry_submit(plan, todo, in_flight=None):
    log = DryRunLog()
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        dag = DagSubmitter(plan, store, Submitter(plan.members[0].config.cluster, plan.run.logs, dry_run=log),
                           in_flight=in_flight or {})
        submitted = dag.submit_slurm(set(todo))
        elements = {plan.key_of(e): e for e in store.elements()}
    return submitted, log, elements


def dependency_of(script: str) -> str | None:
    lines = [line for line in script.splitlines() if line.startswith("#SBATCH --dependency=")]
    return lines[0].split("=", 1)[1] if lines else None


def test_each_evaluation_waits_for_exactly_its_own_shards(tmp_path):
    plan = plan_for(tmp_path, evaluate=True, limit=4, shard_size=2)
    submitted, log, elements = dry_submit(plan, all_keys(plan))
    gen = [submitted[k] for k in plan.member("main").generate_keys()]
    assert gen == ["DRY1_0", "DRY1_1", "DRY1_2", "DRY1_3"]  # one array, one element per shard
    assert "#SBATCH --array=0-3%" in log.scripts["DRY1"]
    for task, shards in (("mbpp", "DRY1_0:DRY1_1"), ("humanevalsynthesize-python", "DRY1_2:DRY1_3")):
        job = submitted[ElementKey("evaluate", "main", task)]
        assert dependency_of(log.scripts[job]) == f"afterok:{shards}"
    collect = submitted[COLLECT_KEY]
    evaluations = sorted(submitted[ElementKey("evaluate", "main", t)] for t in TASKS)
    assert dependency_of(log.scripts[collect]) == "afterany:" + ":".join(evaluations)
    # every element is recorded with its own (fake) job id
    assert {k: e.slurm_job_id for k, e in elements.items()} == submitted
    assert {e.state for e in elements.values()} == {PENDING}


def test_unsharded_evaluation_stays_one_aftercorr_array(tmp_path):
    plan = plan_for(tmp_path, evaluate=True, limit=4)
    submitted, log, _ = dry_submit(plan, all_keys(plan))
    assert submitted[ElementKey("evaluate", "main", "mbpp")] == "DRY2_0"
    assert dependency_of(log.scripts["DRY2"]) == "aftercorr:DRY1"


def test_resubmitted_shard_is_the_only_new_parent(tmp_path):
    """A resume after one shard's output was lost: that shard alone, its task's evaluation after it,
    and after the shard still running from before (an in-flight parent)."""
    plan = plan_for(tmp_path, evaluate=True, limit=4, shard_size=2)
    todo = [ElementKey("generate", "main", "mbpp", 1), ElementKey("evaluate", "main", "mbpp"), COLLECT_KEY]
    submitted, log, _ = dry_submit(plan, todo, in_flight={ElementKey("generate", "main", "mbpp", 0): "DRY77_0"})
    assert set(submitted) == set(todo)
    assert submitted[ElementKey("generate", "main", "mbpp", 1)] == "DRY1"  # a 1-element array is a plain job
    assert dependency_of(log.scripts[submitted[ElementKey("evaluate", "main", "mbpp")]]) == "afterok:DRY77_0:DRY1"  # in shard order


@pytest.mark.parametrize("states, cell", [
    ([COMPLETED, COMPLETED], COMPLETED), ([COMPLETED, FAILED], FAILED), ([RUNNING, FAILED], FAILED),
    ([COMPLETED, RUNNING], RUNNING), ([PENDING, PENDING], PENDING), ([PLANNED, PLANNED], PLANNED)])
def test_dashboard_shows_one_cell_per_sharded_task(tmp_path, states, cell):
    from mft_hpc.dashboard.render import render_plain, strip
    from mft_hpc.dashboard.snapshot import read_run

    run = tmp_path / "runs" / "shards"
    with StateStore(run / "state.sqlite", run="shards") as store:
        ids = store.add_elements([ElementSpec("generate", "main", "mbpp", element=k) for k in range(len(states))])
        for element_id, state in zip(ids, states):
            if state != PLANNED:
                store.record_attempt(element_id, f"7_{element_id}")
                store.update_states([StateChange(element_id, state)])
    view = read_run(run)
    member = view.members[0]
    assert member.task_states["generate"]["mbpp"] == cell
    assert len(strip(member.task_states["generate"], plain=True).plain) == 13
    if FAILED in states:  # the failed shard is named in the failures table
        assert "generate/main/mbpp/1" in render_plain(view)


def write_finished_mbpp_shards(member) -> None:
    """Two done raw shard files of mbpp (problems 0-1 and 2-3), as if the last shard died before merging."""
    for shard, indices in ((0, (0, 1)), (1, (2, 3))):
        path = raw_path(member.generate_dir, "mbpp", shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"task": "mbpp", "index": i, "completion": f"def f():\n    return {i}\n",
                                            "finish_reason": "stop", "n_tokens": 3}) + "\n" for i in indices))
        mark_done(path)


def test_evaluation_element_merges_shards_whose_merge_never_happened(tmp_path, benchmarks_dir):
    """Every shard's raw file is done but the last shard died before merging: the task's evaluation
    element writes the generations file before evaluating (here it then stops at a missing image)."""
    from mft_hpc.elements import EvaluateElement
    from mft_hpc.errors import UserError
    from mft_hpc.rundir import is_done

    plan = plan_for(tmp_path, evaluate=True, limit=4, shard_size=2)
    member = plan.member("main")
    cfg = member.config.model_copy(update={"generate": member.config.generate.model_copy(
        update={"benchmarks": str(benchmarks_dir)})})
    write_finished_mbpp_shards(member)
    eval_cfg = cfg.evaluate.model_copy(update={"image": str(tmp_path / "missing.sif")})
    with pytest.raises(UserError, match="missing.sif|apptainer"):
        EvaluateElement(str(member.generations_dir), member.model_name, ("mbpp",), str(benchmarks_dir),
                        str(member.evaluate_dir), eval_cfg, 4, cfg.generate)()
    assert is_done(member.generation_file("mbpp"))
    generations = json.loads(member.generation_file("mbpp").read_text())
    assert len(generations) == 4 and all("return" in entry[0] for entry in generations)


def test_collect_merges_shards_when_no_evaluation_stage_would(tmp_path, benchmarks_dir):
    """Generation only: the last shard died before merging; collect writes the generations file."""
    from mft_hpc.elements import CollectElement
    from mft_hpc.rundir import is_done
    from mft_hpc.runplan.runfile import write_run

    plan = plan_for(tmp_path, evaluate=False, limit=4, shard_size=2, benchmarks=str(benchmarks_dir))
    member = plan.member("main")
    write_run(plan, member.config, False)
    write_finished_mbpp_shards(member)
    raw_path(member.generate_dir, "humanevalsynthesize-python", 0).write_text("")  # one shard of two, unfinished

    CollectElement(str(plan.run.root))()
    assert is_done(member.generation_file("mbpp"))
    assert len(json.loads(member.generation_file("mbpp").read_text())) == 4
    assert not member.generation_file("humanevalsynthesize-python").exists()
    assert is_done(plan.leaderboard)
