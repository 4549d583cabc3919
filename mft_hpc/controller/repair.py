"""`mft-hpc repair RUN`: rebuild a run's state.sqlite (and run.json) from what the run directory and
the scheduler still know, after moving the broken files aside (never deleting them).

The evidence, in order of trust:
- the members' ``config.yaml`` (and the run's ``config.yaml``): what the run consists of (run.json);
- `.done` markers that still match their outputs: those elements are completed;
- submitit's folders under ``logs/`` (one per job: the submitted call, its log, its result): which
  job served which element, every attempt in order, and how a finished job ended;
- Slurm accounting (one batched squeue/sacct) for jobs without a result, or for the local executor
  whether the job's process still runs.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.runfile import executor_of, load_run, read_run_meta, run_file
from mft_hpc.rundir.state import (COMPLETED, FAILED, FAILED_STATES, PENDING, PLANNED, RUNNING, Attempt, Element,
                                      LocalProcess, StateStore, from_slurm_state, last_line)
from mft_hpc.controller.dag import all_keys, element_specs
from mft_hpc.elements import CollectElement, EvaluateElement, GenerateElement, TrainElement
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir, atomic_write_json


@dataclass(frozen=True)
class Submission:
    """One job found under logs/: what it served and how it ended (``result`` None: no result yet)."""

    job_id: str
    keys: tuple[ElementKey, ...]
    submitted_at: float
    log_path: Path
    result: str | None      # "success" | "error" | None
    error: str | None       # the last line of the job's traceback


@dataclass
class RepairReport:
    moved: list[Path] = field(default_factory=list)
    rebuilt_run_file: bool = False
    states: dict[str, str] = field(default_factory=dict)  # label -> state
    notes: list[str] = field(default_factory=list)


def _aside(path: Path, stamp: str) -> Path:
    target = path.with_name(f"{path.name}.broken-{stamp}")
    os.replace(path, target)
    return target


def _member_order(run: RunDir) -> list[str]:
    """The members in the run's order: the sweep expansion of config.yaml, else the folders sorted."""
    found = sorted(p.parent.name for p in (run.root / "members").glob("*/config.yaml"))
    try:
        from mft_hpc.config import sweep as sweep_mod

        raw = yaml.safe_load(run.config.read_text(encoding="utf-8"))
        ordered = [name for name, _ in sweep_mod.expand(raw)] if isinstance(raw, dict) else []
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, TypeError, KeyError):
        ordered = []
    return [m for m in ordered if m in found] + [m for m in found if m not in ordered]


def rebuild_run_file(run: RunDir) -> None:
    """run.json from the members' configs (the run's own config.yaml says whether it is a sweep)."""
    members = _member_order(run)
    if not members:
        raise UserError(f"{run.root}: no members/<name>/config.yaml: nothing to rebuild run.json from")
    try:
        raw = yaml.safe_load(run.config.read_text(encoding="utf-8"))
        is_sweep = bool(raw.get("sweep")) if isinstance(raw, dict) else len(members) > 1
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        is_sweep = len(members) > 1
    try:
        member_cfg = yaml.safe_load(run.member(members[0]).config.read_text(encoding="utf-8"))
        executor = member_cfg["cluster"]["executor"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        executor = "slurm"
    atomic_write_json(run_file(run), {"members": members, "is_sweep": is_sweep, "executor": executor}, indent=2)


def _member_of(stage_dir: str) -> str:
    """members/<member>/<stage> -> member (paths may name where the run was before a move)."""
    return Path(stage_dir).parent.name


def _keys_of(plan, call) -> list[ElementKey]:
    """The elements one submitted call served: the fields of the element it ran (mft_hpc.elements)."""
    element = call.function
    keys: list[ElementKey] = []
    if isinstance(element, TrainElement):
        keys = [ElementKey("train", Path(element.member_dir).name)]
    elif isinstance(element, GenerateElement):
        member = _member_of(element.out_dir)
        keys = [ElementKey("generate", member, task, shard) for task, shard in element.units]
    elif isinstance(element, EvaluateElement):
        keys = [ElementKey("evaluate", _member_of(element.out_dir), task) for task in element.tasks]
    elif isinstance(element, CollectElement):
        keys = [COLLECT_KEY]
    known = set(all_keys(plan))
    # a task that was one element when submitted and is sharded now (or the reverse) is not this plan's
    return [key for key in keys if key in known]


def _load_pickle(path: Path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def scan_submissions(plan, notes: list[str]) -> dict[ElementKey, list[Submission]]:
    """Every job under logs/ that served an element of ``plan``, oldest first per element."""
    by_key: dict[ElementKey, list[Submission]] = {}
    for pickle_path in sorted(plan.run.logs.glob("*/*_submitted.pkl")):
        job_id = pickle_path.name[: -len("_submitted.pkl")]
        try:
            call = _load_pickle(pickle_path)
            keys = _keys_of(plan, call)
        except Exception as err:  # noqa: BLE001 - a torn or foreign pickle is skipped, and said
            notes.append(f"{pickle_path}: unreadable submission ({type(err).__name__}); skipped")
            continue
        folder = pickle_path.parent
        result, error = None, None
        result_path = folder / f"{job_id}_0_result.pkl"
        if result_path.is_file():
            try:
                outcome = _load_pickle(result_path)
                result = outcome[0]
                error = last_line(str(outcome[1])) if result == "error" else None
            except Exception:  # noqa: BLE001 - a half-written result counts as none
                result = None
        submission = Submission(job_id, tuple(keys), pickle_path.stat().st_mtime, folder / f"{job_id}_0_log.err",
                                result, error)
        for key in keys:
            by_key.setdefault(key, []).append(submission)
    for submissions in by_key.values():
        submissions.sort(key=lambda s: (s.submitted_at, s.job_id))
    return by_key


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _local_identity(job_id: str, submitted_at: float) -> LocalProcess:
    """The recorded identity of a local job's process: the live process when it started with the
    submission (pids are reused), else one that matches nothing (the job is gone)."""
    import socket

    from mft_hpc.controller.local_jobs import local_process

    found = local_process(job_id)
    if found is not None:
        started = _boot_time() + found.start / os.sysconf("SC_CLK_TCK")
        if abs(started - submitted_at) < 120:
            return found
    return LocalProcess(host=socket.gethostname(), start=-1)


def _log_line(path: Path) -> str | None:
    try:
        lines = [line for line in path.read_text(errors="replace")[-20000:].splitlines()
                 if line.strip() and not line.startswith("srun: ")]
    except OSError:
        return None
    return last_line("\n".join(lines[-5:])) if lines else None


def _ended(submission: Submission, slurm_states: dict[str, str], executor: str) -> tuple[str, str | None]:
    """The state of an element whose latest job did not leave a matching `.done` output."""
    if submission.result == "error":
        return FAILED, submission.error or _log_line(submission.log_path)
    if submission.result == "success":
        return FAILED, "job ended without writing its output"
    if executor == "local":
        return PENDING, None  # the process check (refresh) decides
    slurm = slurm_states.get(submission.job_id, "")
    ours = from_slurm_state(slurm)
    if ours is None:
        return FAILED, f"Slurm no longer knows job {submission.job_id}"
    if ours == COMPLETED:
        return FAILED, _log_line(submission.log_path) or "job ended without writing its output"
    if ours in FAILED_STATES:
        line = _log_line(submission.log_path)
        return ours, f"{slurm}: {line}" if line else slurm
    return ours, None


def repair(root: str | Path, poller=None) -> RepairReport:
    """Rebuild run.json (when unreadable) and state.sqlite (always; the old one is moved aside)."""
    run = RunDir(Path(root).resolve())
    if not run.root.is_dir():
        raise UserError(f"{root}: no such run directory")
    report = RepairReport()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    try:
        read_run_meta(run)
    except UserError:
        if not _member_order(run):  # say so before moving anything
            raise UserError(f"{run.root}: no members/<name>/config.yaml: nothing to rebuild run.json from") from None
        if run_file(run).exists():
            report.moved.append(_aside(run_file(run), stamp))
        rebuild_run_file(run)
        report.rebuilt_run_file = True
    plan = load_run(run.root)
    for suffix in ("", "-wal", "-shm"):
        path = run.state_db.with_name(run.state_db.name + suffix)
        if path.exists():
            report.moved.append(_aside(path, stamp))
    submissions = scan_submissions(plan, report.notes)
    executor = executor_of(plan)
    slurm_states = {}
    latest_ids = {subs[-1].job_id for subs in submissions.values() if subs[-1].result is None}
    if executor == "slurm" and latest_ids:
        from mft_hpc.slurm import StatusPoller

        slurm_states = (poller or StatusPoller()).refresh(latest_ids)
    with StateStore(run.state_db, run=plan.name) as store:
        specs = {(s.stage, s.member, s.task, s.element): s for s in element_specs(plan)}
        for key in all_keys(plan):
            spec = specs[key.store_key()]
            jobs = submissions.get(key, [])
            element = _element(plan, key, spec, jobs, slurm_states, executor)
            attempts = [Attempt(0, number, job.job_id, job.submitted_at,
                                COMPLETED if job.result == "success" else FAILED, None, job.error)
                        for number, job in enumerate(jobs[:-1], start=1)]
            if jobs:
                attempts.append(Attempt(0, len(jobs), element.slurm_job_id, jobs[-1].submitted_at, element.state,
                                        element.ended_at, element.last_error))
            store.restore_element(element, attempts)
        if executor == "local":
            from mft_hpc.controller.refresh import refresh

            refresh(plan, store, use_scheduler=False)
        report.states = {e.label: e.state for e in store.elements()}
    return report


def _element(plan, key: ElementKey, spec, jobs: list[Submission], slurm_states: dict, executor: str) -> Element:
    problem = plan.done_problem(key)
    latest = jobs[-1] if jobs else None
    process = None
    if problem is None:
        state, error = COMPLETED, None
    elif latest is None:
        state, error = PLANNED, None
    else:
        state, error = _ended(latest, slurm_states, executor)
        if executor == "local" and state == PENDING:
            process = _local_identity(latest.job_id, latest.submitted_at)
            state = RUNNING if process.start >= 0 else PENDING
    now = time.time()
    ended = now if state in (COMPLETED, FAILED) or state in FAILED_STATES else None
    return Element(
        id=0, run=plan.name, stage=spec.stage, member=spec.member, task=spec.task, element=spec.element,
        slurm_job_id=latest.job_id if latest else None, state=state, attempts=len(jobs),
        submitted_at=latest.submitted_at if latest else None,
        started_at=latest.submitted_at if latest and state != PENDING else None, ended_at=ended,
        log_path=str(latest.log_path) if latest else None, output_path=spec.output_path, last_error=error,
        updated_at=now, process_host=process.host if process else None,
        process_start=process.start if process else None)
