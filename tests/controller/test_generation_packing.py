"""generate.tasks_per_element: several tasks (or shards) per generation array element, one model load
each; every task keeps its own state-store element and its evaluation waits for its own element."""

from __future__ import annotations

from mft_hpc.config.schema import Config
from mft_hpc.controller.dag import all_keys, element_specs
from mft_hpc.controller.submit import DagSubmitter
from mft_hpc.rundir import RunDir
from mft_hpc.rundir.state import StateStore
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.plan import build_plan
from mft_hpc.slurm import DryRunLog, Submitter

TASKS = ["mbpp", "humanevalsynthesize-python", "humanevalsynthesize-java"]


def plan_for(tmp_path, **generate):
    config = Config.model_validate({
        "run": {"name": "packed", "root": str(tmp_path / "runs")},
        "cluster": {"executor": "slurm", "partition": "debug", "gpus_per_node": 4},
        "model": {"path": str(tmp_path)},
        "train": {"enabled": False},
        "generate": {"benchmarks": str(tmp_path), "tasks": TASKS, "limit": 4, **generate},
    })
    return build_plan(RunDir.create(tmp_path / "runs" / "packed"), [("main", config)], is_sweep=False)


def dry_submit(plan):
    log = DryRunLog()
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        dag = DagSubmitter(plan, store, Submitter(plan.members[0].config.cluster, plan.run.logs, dry_run=log))
        submitted = dag.submit_slurm(set(all_keys(plan)))
        recorded = {plan.key_of(e): e.slurm_job_id for e in store.elements()}
    return submitted, log, recorded


def dependency_of(script: str) -> str | None:
    lines = [line for line in script.splitlines() if line.startswith("#SBATCH --dependency=")]
    return lines[0].split("=", 1)[1] if lines else None


def test_tasks_packed_into_elements_each_evaluation_after_its_own(tmp_path):
    plan = plan_for(tmp_path, tasks_per_element=2)
    member = plan.member("main")
    assert member.generate_groups(member.generate_keys()) == [
        [ElementKey("generate", "main", "mbpp"), ElementKey("generate", "main", "humanevalsynthesize-python")],
        [ElementKey("generate", "main", "humanevalsynthesize-java")]]
    submitted, log, recorded = dry_submit(plan)
    gen = {task: submitted[ElementKey("generate", "main", task)] for task in TASKS}
    assert gen == {"mbpp": "DRY1_0", "humanevalsynthesize-python": "DRY1_0", "humanevalsynthesize-java": "DRY1_1"}
    assert "#SBATCH --array=0-1%" in log.scripts["DRY1"] and "#SBATCH --gpus-per-node=1" in log.scripts["DRY1"]
    for task in TASKS:  # one evaluation job per task, after the element that generates it
        assert dependency_of(log.scripts[submitted[ElementKey("evaluate", "main", task)]]) == f"afterok:{gen[task]}"
    assert recorded == submitted and COLLECT_KEY in recorded  # every task keeps its own element row


def test_shards_packed_across_tasks(tmp_path):
    plan = plan_for(tmp_path, shard_size=2, tasks_per_element=3)
    submitted, log, _ = dry_submit(plan)
    assert [submitted[key] for key in plan.member("main").generate_keys()] == ["DRY1_0"] * 3 + ["DRY1_1"] * 3
    assert dependency_of(log.scripts[submitted[ElementKey("evaluate", "main", "mbpp")]]) == "afterok:DRY1_0"
    python = submitted[ElementKey("evaluate", "main", "humanevalsynthesize-python")]
    assert dependency_of(log.scripts[python]) == "afterok:DRY1_0:DRY1_1"


def test_one_task_per_element_keeps_the_aftercorr_array(tmp_path):
    submitted, log, _ = dry_submit(plan_for(tmp_path))
    assert submitted[ElementKey("evaluate", "main", "mbpp")] == "DRY2_0"
    assert dependency_of(log.scripts["DRY2"]) == "aftercorr:DRY1"


def test_whole_suite_in_one_element_is_a_plain_job(tmp_path):
    _, log, _ = dry_submit(plan_for(tmp_path, backend="vllm", tasks_per_element=13))
    assert "#SBATCH --gpus-per-node=1" in log.scripts["DRY1"] and "--array" not in log.scripts["DRY1"]
