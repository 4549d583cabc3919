"""Sweeps at scale without a scheduler: task-major arrays in a dry run (a constant number of
submissions, aftercorr chains, MaxArraySize splits aligned across stages, shards), the layout
choice, waves cut from site limits, batched state writes and indexed reads, the aggregate dashboard."""

from __future__ import annotations

import re

import pytest

from mft_hpc.config.schema import Config
from mft_hpc.controller.dag import all_keys, choose_layout, element_specs
from mft_hpc.controller.submit import DagSubmitter
from mft_hpc.controller.waves import cut_wave
from mft_hpc.rundir import RunDir
from mft_hpc.rundir.state import CANCELLED, COMPLETED, FAILED, PENDING, ElementSpec, StateChange, StateStore
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.plan import build_plan
from mft_hpc.slurm import DryRunLog, SlurmCommands, Submitter
from mft_hpc.slurm.limits import SiteLimits, count_jobs, parse_associations

TASKS = ["mbpp", "humanevalsynthesize-python", "humanevalsynthesize-go"]


def sweep_plan(tmp_path, members: int, train: bool = True, **generate):
    def config(seed: int) -> Config:
        return Config.model_validate({
            "run": {"name": "big", "root": str(tmp_path / "runs")},
            "cluster": {"executor": "slurm", "partition": "debug"},
            "model": {"path": str(tmp_path)}, "train": {"enabled": train, "seed": seed},
            "generate": {"benchmarks": str(tmp_path), "tasks": TASKS, **generate},
            "evaluate": {"enabled": True}})
    run = RunDir.create(tmp_path / "runs" / "big")
    return build_plan(run, [(f"seed{m}", config(m)) for m in range(members)], is_sweep=True)


def dry_submit(plan, todo=None, max_array_size: int = 1001, layout: str | None = None, in_flight=None):
    log = DryRunLog()
    submitter = Submitter(plan.members[0].config.cluster, plan.run.logs, dry_run=log,
                          commands=SlurmCommands(array_size_limit=max_array_size))
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        dag = DagSubmitter(plan, store, submitter, layout=layout, in_flight=in_flight or {})
        submitted = dag.submit_slurm(set(all_keys(plan) if todo is None else todo))
        recorded = {plan.key_of(e): e.slurm_job_id for e in store.elements() if e.slurm_job_id}
    return submitted, log, recorded


def flags(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(.*)$", script, flags=re.MULTILINE))


@pytest.mark.parametrize("members", [20, 60])
def test_task_major_submissions_do_not_grow_with_members(tmp_path, members):
    plan = sweep_plan(tmp_path, members, limit=4)
    submitted, log, recorded = dry_submit(plan)
    assert len(log.scripts) == 1 + len(TASKS) + len(TASKS) + 1
    assert recorded == submitted and len(submitted) == members * (1 + 2 * len(TASKS)) + 1
    train = submitted[ElementKey("train", "seed0")].split("_")[0]
    for m in range(members):  # element m of every array is member m
        assert submitted[ElementKey("train", f"seed{m}")] == f"{train}_{m}"
        for task in TASKS:
            gen, ev = submitted[ElementKey("generate", f"seed{m}", task)], submitted[ElementKey("evaluate", f"seed{m}", task)]
            assert gen.endswith(f"_{m}") and ev.endswith(f"_{m}")
            assert flags(log.scripts[gen.split("_")[0]])["dependency"] == f"aftercorr:{train}"
            assert flags(log.scripts[ev.split("_")[0]])["dependency"] == f"aftercorr:{gen.split('_')[0]}"
    collect = flags(log.scripts[submitted[COLLECT_KEY]])["dependency"]
    assert collect.startswith("afterany:") and len(collect.split(":")) == 1 + len(TASKS)


def test_layout_auto_keeps_small_sweeps_member_major(tmp_path):
    # 3 tasks: member-major takes 1 + 2M + 1 submissions, task-major 1 + 3 + 3 + 1 = 8
    small, large = sweep_plan(tmp_path / "s", 3, limit=4), sweep_plan(tmp_path / "l", 4, limit=4)
    assert choose_layout(small, set(all_keys(small))) == "member"  # 8 vs 8: ties stay member-major
    assert choose_layout(large, set(all_keys(large))) == "task"  # 10 vs 8
    assert choose_layout(small, set(all_keys(small)), "task") == "task"


def test_max_array_size_splits_stay_aligned_across_chained_arrays(tmp_path):
    plan = sweep_plan(tmp_path, 25, limit=4)
    submitted, log, _ = dry_submit(plan, max_array_size=10)
    by_name: dict[str, list[str]] = {}
    for job_id, script in log.scripts.items():
        by_name.setdefault(flags(script)["job-name"], []).append(job_id)
    train = by_name["big-train"]
    assert [flags(log.scripts[j])["array"].split("%")[0] for j in train] == ["0-9", "0-9", "0-4"]
    for task in TASKS:
        gen, ev = by_name[f"big-generate-{task}"], by_name[f"big-evaluate-{task}"]
        assert [flags(log.scripts[j])["dependency"] for j in gen] == [f"aftercorr:{j}" for j in train]
        assert [flags(log.scripts[j])["dependency"] for j in ev] == [f"aftercorr:{j}" for j in gen]
    # member 12 is element 2 of the second piece everywhere
    assert submitted[ElementKey("train", "seed12")] == f"{train[1]}_2"
    assert submitted[ElementKey("evaluate", "seed12", "mbpp")].endswith("_2")


def test_shards_get_one_array_per_shard_and_evaluation_waits_on_each(tmp_path):
    plan = sweep_plan(tmp_path, 20, limit=4, shard_size=2)  # every task: 2 shards
    submitted, log, _ = dry_submit(plan)
    assert len(log.scripts) == 1 + 2 * len(TASKS) + len(TASKS) + 1
    for m in (0, 19):
        shards = [submitted[ElementKey("generate", f"seed{m}", "mbpp", k)] for k in (0, 1)]
        ev = submitted[ElementKey("evaluate", f"seed{m}", "mbpp")]
        assert {s.split("_")[0] for s in shards} != {shards[0].split("_")[0]}  # two arrays
        assert flags(log.scripts[ev.split("_")[0]])["dependency"] == ",".join(  # both hold, element for element
            f"aftercorr:{s.split('_')[0]}" for s in shards)


def test_a_subset_that_does_not_line_up_gets_its_own_jobs(tmp_path):
    """A retry of one member's training: its generation lines up with the new 1-element training
    (afterok); evaluations whose generation is still queued from before wait on those ids."""
    plan = sweep_plan(tmp_path, 20, limit=4)
    todo = {ElementKey("train", "seed3")} | {ElementKey("generate", "seed3", t) for t in TASKS} | \
        {ElementKey("evaluate", "seed3", t) for t in TASKS} | {ElementKey("evaluate", "seed4", "mbpp")}
    in_flight = {ElementKey("generate", "seed4", "mbpp"): "777_4"}
    submitted, log, _ = dry_submit(plan, todo, layout="task", in_flight=in_flight)
    assert set(submitted) == todo
    train = submitted[ElementKey("train", "seed3")]
    gen = submitted[ElementKey("generate", "seed3", "mbpp")]
    assert flags(log.scripts[gen])["dependency"] == f"afterok:{train}"  # a 1-element array is a plain job
    assert flags(log.scripts[submitted[ElementKey("evaluate", "seed4", "mbpp")]])["dependency"] == "afterok:777_4"


def test_training_disabled_generation_arrays_wait_on_nothing(tmp_path):
    plan = sweep_plan(tmp_path, 20, train=False, limit=4)
    submitted, log, _ = dry_submit(plan)
    assert len(log.scripts) == len(TASKS) + len(TASKS) + 1
    assert "dependency" not in flags(log.scripts[submitted[ElementKey("generate", "seed0", "mbpp")].split("_")[0]])


def limits(free_submit: int | None = None, max_job_count: int = 10000, held: int = 0) -> SiteLimits:
    return SiteLimits(max_array_size=1001, max_job_count=max_job_count, jobs_in_system=held,
                      max_submit_jobs=free_submit, user_jobs=0)


def test_waves_cut_whole_members_within_the_tighter_limit(tmp_path):
    plan = sweep_plan(tmp_path, 10, limit=4)  # 7 jobs per member, 71 in all
    todo = set(all_keys(plan))
    assert cut_wave(plan, todo, limits()).later == set()
    cut = cut_wave(plan, todo, limits(free_submit=30))
    assert {key.member for key in cut.now} == {f"seed{m}" for m in range(4)}  # 4 x 7 = 28 = 30 - 2 reserved
    assert len(cut.now) == 28 and COLLECT_KEY in cut.later and cut.now | cut.later == todo
    assert "MaxSubmitJobs=30" in cut.note and "wave 1 = 4 of 10 members" in cut.note
    cut = cut_wave(plan, todo, limits(max_job_count=100, held=60))  # others' jobs leave room for 40
    assert len(cut.now) == 35 and "MaxJobCount=100" in cut.note
    cut = cut_wave(plan, todo, limits(free_submit=5))  # not even one member: wait for room
    assert not cut.now and cut.later == todo and "not even one member" in cut.note


def test_site_limits_parsing():
    assert parse_associations("|\n20|5\n100|\n") == (20, 5)
    assert parse_associations("|\n") == (None, None)
    queue = "root|PENDING\nroot|RUNNING\nroot|COMPLETED\nbob|PENDING\n"
    assert count_jobs(queue, "root") == (4, 2)
    assert limits(free_submit=10).free() == (10, "MaxSubmitJobs=10 of your association (0 queued now)")


def test_dry_run_of_a_sweep_over_the_limit_says_it_goes_in_waves(tmp_path):
    from mft_hpc.controller import operations

    plan = sweep_plan(tmp_path, 10, limit=4)
    log = DryRunLog()
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        dag, notes = operations._submit(plan, store, set(all_keys(plan)), {},
                                        Submitter(plan.members[0].config.cluster, plan.run.logs, dry_run=log),
                                        limits=limits(free_submit=30))
    assert len(dag.submitted) == 28 and "waves" in notes[0]
    advance = list(log.scripts.values())[-1]
    assert flags(advance)["job-name"] == "big-waves" and flags(advance)["dependency"].startswith("afterany:")
    assert len(flags(advance)["dependency"].split(":")) == 1 + len(set(i.split("_")[0] for i in dag.submitted.values()))


def test_state_store_batches_and_indexed_reads(tmp_path):
    with StateStore(tmp_path / "run" / "state.sqlite") as store:
        ids = store.add_elements([ElementSpec("generate", f"m{m}", "mbpp") for m in range(50)]
                                 + [ElementSpec("train", "m0")])
        assert store.add_elements([ElementSpec("train", "m0")]) == [ids[-1]]
        store.record_attempts([(i, f"9_{n}", f"/logs/{n}") for n, i in enumerate(ids[:50])], at=5.0)
        store.record_attempts([(ids[0], "10_0", None)], at=6.0)
        first = store.element(ids[0])
        assert (first.slurm_job_id, first.attempts, first.state, first.log_path) == ("10_0", 2, PENDING, "/logs/0")
        assert [(a.attempt, a.slurm_job_id) for a in store.attempts(ids[0])] == [(1, "9_0"), (2, "10_0")]
        assert store.ids()[("generate", "m7", "mbpp", 0)] == ids[7]
        assert store.element("generate/m7/mbpp/0").id == ids[7] and store.element("generate/m7/mbpp").id == ids[7]
        assert store.element("train/m0").id == ids[-1] and store.element("train/m0/0").id == ids[-1]
        assert store.element("generate/m7/nope") is None and store.element("9_3").id == ids[3]
        store.update_states([StateChange(ids[1], FAILED, "boom"), StateChange(ids[2], COMPLETED)])
        assert store.counts() == {("generate", PENDING): 48, ("generate", FAILED): 1, ("generate", COMPLETED): 1,
                                  ("train", "planned"): 1}


def test_aggregate_dashboard_of_a_large_sweep(tmp_path):
    from mft_hpc.dashboard import read_run, render_plain
    from mft_hpc.rundir import atomic_write_json, mark_done

    run = tmp_path / "runs" / "big"
    with StateStore(run / "state.sqlite", run="big") as store:
        specs = [ElementSpec("train", f"m{m:02d}") for m in range(30)]
        specs += [ElementSpec("evaluate", f"m{m:02d}", task, output_path=f"out/m{m:02d}_{task}.json")
                  for m in range(30) for task in TASKS]
        ids = dict(zip([(s.stage, s.member, s.task) for s in specs], store.add_elements(specs)))
        store.record_attempts([(i, f"1_{n}", None) for n, i in enumerate(ids.values())])
        changes = []
        for (stage, member, task), element_id in ids.items():
            m = int(member[1:])
            if stage == "evaluate" and m < 5:
                path = run / "out" / f"{member}_{task}.json"
                atomic_write_json(path, {task: {"pass@1": m / 10}})
                mark_done(path)
            state = FAILED if (m == 7 and stage == "train") else CANCELLED if m == 7 else \
                COMPLETED if m < 5 or stage == "train" else PENDING
            changes.append(StateChange(element_id, state, "RuntimeError: seed 7" if state == FAILED else None))
        store.update_states(changes)
    view = read_run(run)
    assert view.aggregate is not None and view.members == []
    assert view.aggregate.counts[("evaluate", COMPLETED)] == 15 and view.aggregate.counts[("train", FAILED)] == 1
    assert [row[0] for row in view.aggregate.top] == ["m04", "m03", "m02", "m01", "m00"]
    text = render_plain(view)
    assert "Stages of 30 members" in text and "Top 5 members by mean pass@1" in text
    assert "Members with failures (1)" in text and "RuntimeError: seed 7" in text
    assert text.index("m04") < text.index("m03")


def test_task_major_with_several_tasks_per_generation_element(tmp_path):
    plan = sweep_plan(tmp_path, 20, limit=4, tasks_per_element=2)  # elements: (mbpp, python), (go)
    submitted, log, recorded = dry_submit(plan)
    assert len(log.scripts) == 1 + 2 + len(TASKS) + 1 and recorded == submitted
    first, second = (submitted[ElementKey("generate", "seed7", t)] for t in ("mbpp", "humanevalsynthesize-go"))
    assert submitted[ElementKey("generate", "seed7", "humanevalsynthesize-python")] == first  # one element, two tasks
    assert first.endswith("_7") and second.endswith("_7") and first.split("_")[0] != second.split("_")[0]
    for task, parent in (("mbpp", first), ("humanevalsynthesize-go", second)):
        ev = submitted[ElementKey("evaluate", "seed7", task)].split("_")[0]
        assert flags(log.scripts[ev])["dependency"] == f"aftercorr:{parent.split('_')[0]}"


def test_dashboard_says_where_a_run_in_waves_stands(tmp_path):
    from mft_hpc.controller.waves import write_waves
    from mft_hpc.dashboard import read_run, render_plain

    run = tmp_path / "runs" / "w"
    with StateStore(run / "state.sqlite", run="w") as store:
        store.add_elements([ElementSpec("train", "main")])
        write_waves(store, wave=1, advance_job="55", note="31 jobs exceed MaxSubmitJobs=14", finished=False)
    assert "waves: wave 1 queued, the next one submitted by job 55 when it has left the queue (31 jobs exceed " \
           "MaxSubmitJobs=14)" in render_plain(read_run(run))
    with StateStore(run / "state.sqlite", run="w") as store:
        write_waves(store, wave=3, advance_job=None, finished=True)
    assert "waves: all 3 submitted" in render_plain(read_run(run))
