"""`run`, `resume`, `retry` and `cancel`: what the CLI verbs do to a run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path

from mft_hpc.config import LoadedConfig
from mft_hpc.controller.dag import all_keys, collects, descendants, element_specs
from mft_hpc.controller.refresh import in_flight, raised_in_our_code, refresh
from mft_hpc.controller.submit import DagSubmitter, StageElements
from mft_hpc.controller.waves import RETRY_DELAY, cut_wave, read_waves, write_waves
from mft_hpc.elements.logs import job_logging
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir, clear_done, has_marker
from mft_hpc.rundir.state import CANCELLED, FAILED_STATES, PLANNED, StateChange, StateStore, last_line
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.plan import RunPlan, build_plan, resolve_paths
from mft_hpc.runplan.runfile import executor_of, load_run, write_run
from mft_hpc.slurm import DryRunLog, SlurmCommands, StatusPoller, Submitter, after_any
from mft_hpc.slurm.dependency import FINISHED_STATES
from mft_hpc.slurm.job_states import master_id
from mft_hpc.slurm.limits import SiteLimits, read_site_limits

MAX_ATTEMPTS = 3


@dataclass
class Outcome:
    submitted: dict[ElementKey, str]
    skipped: dict[ElementKey, str]  # element -> why it was not (re)submitted
    dry_run: str | None = None   # the scripts a dry run would have submitted
    redo: dict[ElementKey, str] = field(default_factory=dict)  # element with a stale `.done` -> why it is redone
    sbatch_calls: int = 0        # submissions made (a dry run: scripts it would submit)
    notes: list[str] = field(default_factory=list)  # e.g. how the run is cut into waves


def _prepared(loaded: LoadedConfig, executor: str | None) -> tuple[list, object]:
    def adjust(config):
        config = resolve_paths(config)
        if executor:
            config = config.model_copy(update={"cluster": config.cluster.model_copy(update={"executor": executor})})
        return config

    members = [(name, adjust(config)) for name, config in loaded.members]
    return members, adjust(loaded.config)


def validate_members(loaded: LoadedConfig, members: list | None = None, check_paths: bool = True) -> None:
    """Every check that can fail on bad input runs before anything is submitted; `config check`
    runs exactly this too (mft_hpc.controller.preflight)."""
    from mft_hpc.controller.preflight import preflight

    preflight(loaded, members if members is not None else _prepared(loaded, None)[0], check_paths)


def _require_extras(members: list) -> None:
    """Training and generation run in this Python environment (locally, or through submitit on a node)
    unless the stage names another one (``cluster.stages.<stage>.python``)."""
    from mft_hpc.config.stages import resolve_stage
    from mft_hpc.extras import require_extras

    def here(stage: str) -> bool:
        return all(resolve_stage(config.cluster, stage).python is None for _, config in members)

    if any(config.train.enabled for _, config in members) and here("train"):
        require_extras("training", "train")
    if any(config.generate.enabled for _, config in members) and here("generate"):
        require_extras("generation", "generate")


def check_site(members: list, source: Path, stages: list[str] | None = None) -> None:
    """Every stage the run submits (or ``stages``) fits this cluster (sinfo): else nothing is submitted."""
    from mft_hpc.slurm.site import SlurmUnavailable, config_fit_problems, read_partitions

    try:
        partitions = read_partitions()
    except SlurmUnavailable as err:
        raise UserError(f"Slurm does not answer ({err}); nothing was submitted (`mft-hpc doctor` checks the site)") from None
    problems = config_fit_problems([config for _, config in members], source, partitions, stages)
    if problems:
        raise UserError("\n".join(problems + ["nothing was submitted (`mft-hpc doctor CONFIG` shows the partitions)"]))


def _submitter(plan: RunPlan, dry_run: DryRunLog | None = None, commands: SlurmCommands | None = None) -> Submitter:
    return Submitter(plan.members[0].config.cluster, plan.run.logs, commands=commands, dry_run=dry_run)


def _submit(plan: RunPlan, store: StateStore, todo: set[ElementKey], in_flight_ids: dict[ElementKey, str],
            submitter: Submitter, functions: StageElements | None = None,
            limits: SiteLimits | None = None) -> tuple[DagSubmitter, list[str]]:
    """Submit ``todo`` (on Slurm: as much as the site's limits let queue now, the rest in waves);
    returns the submission (``.submitted``: key -> job id) and notes on how it was cut.
    ``limits``: the site's, as read now (default: asked of Slurm)."""
    if COLLECT_KEY in todo:
        clear_done(plan.leaderboard)  # it predates the results being (re)made: never let it look finished
    dag = DagSubmitter(plan, store, submitter, in_flight=in_flight_ids, functions=functions or StageElements())
    if submitter.dry_run is None and executor_of(plan) == "local":
        dag.run_local(todo)
        return dag, []
    limits = limits or read_site_limits(submitter.commands)
    recorded = read_waves(store).get("max_submit_jobs")
    if limits.max_submit_jobs is None and recorded:  # e.g. an advance job on a node that cannot reach slurmdbd
        limits = replace(limits, max_submit_jobs=recorded)
    cut = cut_wave(plan, todo, limits)
    notes = [cut.note] if cut.note else []
    if submitter.dry_run is not None and not cut.later:
        notes.append(f"{len(todo)} jobs fit the site's limits at once ({limits.describe()}; room for "
                     f"{limits.free()[0]} now)")
    later = set(cut.later)
    if cut.now:
        try:
            dag.submit_slurm(cut.now)
        except Exception as err:  # noqa: BLE001 - only a limit's refusal is handled, anything else re-raised
            if not refused_by_limit(err) or not dag.submitted:
                raise
            later |= set(cut.now) - set(dag.submitted)  # the rest waits for the next wave
            notes.append(f"Slurm refused a submission ({last_line(str(err))}): the rest goes in the next wave")
    waves = read_waves(store)
    if later:
        masters = sorted({master_id(i) for i in dag.submitted.values()})
        extra = {**submitter.resources("collect").extra, "begin": RETRY_DELAY}
        job = submitter.submit(AdvanceWaves(str(plan.run.root), functions), name=f"{plan.name}-waves",
                               stage="collect", after=[after_any(masters)] if masters else [],
                               overrides=None if masters else {"extra": extra})
        wave = waves.get("wave", 0) + (1 if dag.submitted else 0)
        write_waves(store, wave=wave, advance_job=job.job_id, note=cut.note or waves.get("note", ""), finished=False,
                    max_submit_jobs=limits.max_submit_jobs)
        notes.append(f"job {job.job_id} submits the next wave " + ("once this one has left the queue" if masters
                                                                   else "when there is room"))
    elif waves and cut.now:
        write_waves(store, wave=waves.get("wave", 0) + 1, advance_job=None, finished=True)
    return dag, notes


def refused_by_limit(err: Exception) -> bool:
    """Whether a submission failed because a site limit refused it (then the rest waits for a wave)."""
    text = str(err)
    return any(word in text for word in ("MaxSubmitJob", "violates accounting/QOS policy", "MaxJobCount",
                                         "temporarily unable to accept job"))


@dataclass(frozen=True)
class AdvanceWaves:
    """The advance job of a run cut in waves (mft_hpc.controller.waves): submit the next wave."""

    run_root: str
    functions: StageElements | None = None

    def __call__(self) -> dict:
        job_logging()
        outcome = advance(self.run_root, self.functions)
        return {"submitted": len(outcome.submitted), "sbatch": outcome.sbatch_calls, "notes": outcome.notes}


def advance(root: str | Path, functions: StageElements | None = None) -> Outcome:
    """The advance job's work: submit the next wave (elements never submitted yet) of a run cut in waves."""
    plan, store = _open(root)
    with store:
        if read_waves(store).get("cancelled"):
            return Outcome({}, {})
        elements = refresh(plan, store, use_scheduler=True)
        todo = {plan.key_of(e) for e in elements if e.attempts == 0 and e.state == PLANNED}
        if not todo:
            write_waves(store, advance_job=None, finished=True)
            return Outcome({}, {})
        submitter = _submitter(plan)
        dag, notes = _submit(plan, store, todo, _flying(plan, elements), submitter, functions)
    return Outcome(dag.submitted, {}, sbatch_calls=submitter.commands.calls["sbatch"], notes=notes)


def _advance_pending(store: StateStore) -> bool:
    """Whether the advance job of a run cut in waves is still queued or running (it will submit the rest)."""
    job = read_waves(store).get("advance_job")
    if not job:
        return False
    state = StatusPoller().refresh([job]).get(job, "")
    return state not in FINISHED_STATES and state != "UNKNOWN"


def resolve_models(members: list, written, dry_run: bool = False) -> tuple[list, object]:
    """Members and the written config with a Qwen-1 model.path replaced by its native import (once)."""
    from mft_hpc.model.resolve import resolve_model

    imported: dict = {}
    members = [(name, resolve_model(config, dry_run, imported)) for name, config in members]
    return members, resolve_model(written, dry_run, imported)


def start_run(loaded: LoadedConfig, executor: str | None = None, dry_run: bool = False,
              functions: StageElements | None = None) -> Outcome:
    members, written = _prepared(loaded, executor)
    validate_members(loaded, members)
    if not dry_run:
        _require_extras(members)
    root = Path(written.run.root) / written.run.name
    if not dry_run:  # what can refuse the run is checked before a model is imported
        _check_new_root(root)
        if written.cluster.executor == "slurm":
            check_site(members, loaded.source)
    members, written = resolve_models(members, written, dry_run)
    if dry_run:
        import tempfile

        scratch = RunDir(Path(tempfile.mkdtemp(prefix="mft-hpc-dry-run-")) / written.run.name)
        plan = build_plan(RunDir.create(scratch.root), members, loaded.is_sweep)
        log_ = DryRunLog()
        with StateStore(plan.run.state_db, run=plan.name) as store:
            store.add_elements(element_specs(plan))
            dag, notes = _submit(plan, store, set(all_keys(plan)), {}, _submitter(plan, dry_run=log_), functions)
        text = "\n".join(filter(None, [log_.render(), dag.render_sandbox_commands()] + [f"# {n}" for n in notes]))
        return Outcome(dag.submitted, {}, dry_run=text, sbatch_calls=len(log_.scripts), notes=notes)
    plan = _create(loaded, members, written, root)
    with StateStore(plan.run.state_db, run=plan.name) as store:
        keys = all_keys(plan)
        todo = set(keys) - plan.done_keys(keys)
        submitter = _submitter(plan)
        dag, notes = _submit(plan, store, todo, {}, submitter, functions)
    return Outcome(dag.submitted, {}, sbatch_calls=submitter.commands.calls["sbatch"], notes=notes)


def _check_new_root(root: Path) -> None:
    if (root / "run.json").exists():
        raise UserError(f"{root} already exists: continue it with `mft-hpc resume {root}`, "
                        "or choose another run.name")
    for path in (root, *root.parents):
        if path.exists() and not path.is_dir():
            raise UserError(f"{root}: {path} is a file, not a directory: choose another run.root or run.name")


def _create(loaded: LoadedConfig, members: list, written, root: Path) -> RunPlan:
    plan = build_plan(RunDir.create(root), members, loaded.is_sweep)
    write_run(plan, written, loaded.is_sweep)
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
    return plan


def create_run(loaded: LoadedConfig, executor: str | None = None) -> RunPlan:
    """The run directory of a validated config with every element planned, nothing submitted."""
    members, written = _prepared(loaded, executor)
    validate_members(loaded, members)
    root = Path(written.run.root) / written.run.name
    _check_new_root(root)
    if written.cluster.executor == "slurm":
        check_site(members, loaded.source)
    members, written = resolve_models(members, written)
    return _create(loaded, members, written, root)


def _open(root: str | Path, lock_wait_s: float = 300.0, to_submit: bool = False,
          verify: bool = False) -> tuple[RunPlan, StateStore]:
    """The run's plan and state; ``to_submit``: also re-import a Qwen-1 model whose cached copy has gone;
    ``verify``: the plan re-hashes certified outputs."""
    from mft_hpc.model.resolve import ensure_imported

    plan = load_run(root)
    if verify:
        plan = dataclasses.replace(plan, verify=True)
    if not plan.run.state_db.is_file():
        raise UserError(f"{plan.run.state_db}: missing; `mft-hpc repair {plan.run.root}` rebuilds it "
                        "from the run directory (or `mft-hpc resume --rebuild-state`)")
    if to_submit:
        for member in plan.members:
            ensure_imported(member.config)
    # a caller that will not wait (the dashboard) only tries briefly
    store = StateStore(plan.run.state_db, run=plan.name, lock_wait_s=lock_wait_s,
                       timeout_s=2.0 if lock_wait_s >= 2.0 else 0.5)
    try:
        if not store.counts():  # an empty or foreign file: running on would lose the run's history
            raise store.unreadable("it records no element of this run")
    except BaseException:
        store.close()
        raise
    return plan, store


def refresh_run(root: str | Path, poller: StatusPoller | None = None, lock_wait_s: float = 300.0,
                verify: bool = False):
    plan, store = _open(root, lock_wait_s, verify=verify)
    with store:
        return refresh(plan, store, poller, use_scheduler=executor_of(plan) == "slurm")


def _stale(plan: RunPlan, todo: set[ElementKey]) -> dict[ElementKey, str]:
    """Elements about to be redone although their output has a `.done` marker: why, and the marker
    is removed so the stage does not skip them."""
    redo = {}
    for key in todo:
        output = plan.output_of(key)
        if has_marker(output):
            problem = plan.done_problem(key)
            if problem:
                redo[key] = problem
                clear_done(output)
    return redo


def _flying(plan: RunPlan, elements) -> dict[ElementKey, str]:
    return {plan.key_of(e): e.slurm_job_id for e in elements if in_flight(e)}


def _with_collect(plan: RunPlan, todo: set[ElementKey], flying: dict[ElementKey, str]) -> set[ElementKey]:
    """``todo`` plus the collect job when it brings new results: a leaderboard written before them is stale."""
    if todo - {COLLECT_KEY} and COLLECT_KEY not in flying and collects(plan):
        return todo | {COLLECT_KEY}
    return todo


def resume(root: str | Path, rebuild_state: bool = False, announce=None, verify: bool = False) -> Outcome:
    """Re-submit every element whose output is not `.done` and that is not queued or running.

    ``announce`` (a callable taking one line) hears about stale outputs before anything is redone;
    ``verify`` re-hashes every certified output (default: size + mtime, hashing only what moved).
    """
    if rebuild_state:
        from mft_hpc.controller.repair import repair

        repair(root)
    plan, store = _open(root, to_submit=True, verify=verify)
    with store:
        elements = refresh(plan, store, use_scheduler=executor_of(plan) == "slurm")
        flying = _flying(plan, elements)
        keys = all_keys(plan)
        todo = set(keys) - plan.done_keys(keys) - set(flying)
        if _advance_pending(store):  # a run cut in waves: its advance job submits the rest
            todo -= {plan.key_of(e) for e in elements if e.attempts == 0}
        todo = _with_collect(plan, todo, flying)
        redo = _stale(plan, todo)
        for key, why in sorted(redo.items()) if announce else ():
            announce(f"redo {key}: {why}")
        submitter = _submitter(plan)
        dag, notes = _submit(plan, store, todo, flying, submitter) if todo else (None, [])
    return Outcome(dag.submitted if dag else {}, {}, redo=redo, sbatch_calls=submitter.commands.calls["sbatch"],
                   notes=notes)


def retry(root: str | Path, force: bool = False, max_attempts: int = MAX_ATTEMPTS) -> Outcome:
    """Re-submit failed elements (and what was cancelled because of them), capped per element.

    An element that died of a Python exception in our code is not retried blindly (the same input
    fails the same way) unless ``force``; node failures, preemption, kills and timeouts are.
    """
    if max_attempts < 1:
        raise UserError(f"--max-attempts must be at least 1 (got {max_attempts})")
    plan, store = _open(root, to_submit=True)
    with store:
        elements = refresh(plan, store, use_scheduler=executor_of(plan) == "slurm")
        flying = _flying(plan, elements)
        skipped: dict[ElementKey, str] = {}
        retry_keys: set[ElementKey] = set()
        for element in elements:
            key = plan.key_of(element)
            if element.state not in FAILED_STATES or plan.is_done(key):
                continue
            if element.attempts >= max_attempts:
                skipped[key] = f"{element.attempts} attempts already (limit {max_attempts})"
            elif raised_in_our_code(element) and not force:
                skipped[key] = f"raised an exception ({element.last_error}); fix it, then retry --force"
            else:
                retry_keys.add(key)
        candidates = retry_keys | descendants(plan, retry_keys)
        todo = _with_collect(plan, {key for key in candidates - plan.done_keys(candidates)
                                    if key not in flying and key not in skipped}, flying)
        submitter = _submitter(plan)
        dag, notes = _submit(plan, store, todo, flying, submitter) if todo else (None, [])
    return Outcome(dag.submitted if dag else {}, skipped, sbatch_calls=submitter.commands.calls["sbatch"], notes=notes)


def cancel(root: str | Path) -> list[str]:
    """Cancel every queued or running job of the run (dependents included); returns the ids."""
    plan, store = _open(root)
    with store:
        elements = refresh(plan, store, use_scheduler=executor_of(plan) == "slurm")
        flying = [e for e in elements if in_flight(e)]
        ids = sorted({e.slurm_job_id for e in flying})
        waves = read_waves(store)
        if waves.get("advance_job") and not waves.get("finished"):  # it would submit the next wave
            write_waves(store, cancelled=True)
            ids.append(waves["advance_job"])
        if ids and executor_of(plan) == "slurm":
            # one id per array (its master cancels every element still queued or running): a 1,000-member
            # sweep is 28 arguments to scancel, not 27,000
            SlurmCommands().cancel(sorted({master_id(i) for i in ids}))
        store.update_states(StateChange(e.id, CANCELLED, "cancelled by mft-hpc cancel") for e in flying)
    return ids
