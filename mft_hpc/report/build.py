"""Everything the run report shows, as one JSON-able dict (written as ``collect/report.json``).

The HTML page is drawn from this dict alone, so the page and the JSON hold the same numbers. Each
section is read on its own: a section that cannot be read (a corrupt file, a run that has not got
that far) leaves a note in ``missing`` and the rest of the report is still built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable

from mft_hpc.collect.leaderboard import build_leaderboard
from mft_hpc.collect.metrics import read_member_scores
from mft_hpc.config.member import member_section
from mft_hpc.errors import UserError
from mft_hpc.report.evaluation import add_problem_ids, member_evaluation, reasons_by_task
from mft_hpc.report.resources import run_resources
from mft_hpc.report.schedule import scheduling
from mft_hpc.report.submission import submissions
from mft_hpc.report.training import member_training
from mft_hpc.rundir import RunDir
from mft_hpc.rundir.state import StateStore
from mft_hpc.rundir.states import COLLECT_MEMBER
from mft_hpc.slurm.commands import SlurmCommands
from mft_hpc.submission.competition import BASELINE_DESCRIPTION, BASELINE_MEAN, BASELINE_NAME, BASELINE_PASS1
from mft_hpc.tasks.names import TASK_NAMES

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def _guard(name: str, missing: list[str], build: Callable[[], dict | None]) -> dict | None:
    """Build one section; any failure becomes a note instead of a traceback on the page."""
    try:
        return build()
    except Exception as err:  # noqa: BLE001 - a report must render whatever the run directory holds
        log.warning("report: %s section failed", name, exc_info=True)
        missing.append(f"{name}: could not be read ({type(err).__name__}: {err})")
        return None


def _run_file(run: RunDir) -> dict:
    path = run.run_file
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _config_hash(run: RunDir) -> str | None:
    try:
        return hashlib.sha256(run.config.read_bytes()).hexdigest()[:12]
    except OSError:
        return None


def _store_contents(run: RunDir):
    store = StateStore.open_existing(run.state_db)
    if store is None:
        return [], {}
    with store:
        elements = store.elements()
        return elements, {e.id: store.attempts(e.id) for e in elements}


def _setting(run: RunDir, member: str, section: str, key: str):
    """``section.key`` of the member's resolved config; None when the section is unreadable."""
    try:
        return getattr(member_section(run, member, section), key)
    except UserError:
        return None


def _max_steps(run: RunDir, member: str) -> int | None:
    return _setting(run, member, "train", "max_steps")


def _benchmarks(run: RunDir, member: str) -> str | None:
    return _setting(run, member, "generate", "benchmarks")


def _stage_counts(elements) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for element in elements:
        row = counts.setdefault(element.stage, {"total": 0})
        row["total"] += 1
        row[element.state] = row.get(element.state, 0) + 1
    return counts


def _training(run: RunDir, members: list[str], elements, missing: list[str]) -> dict:
    out = {}
    for member in members:
        train = [e for e in elements if e.stage == "train" and e.member == member]
        section = member_training(run, member, _max_steps(run, member))
        section["state"] = train[0].state if train else None
        section["last_error"] = train[0].last_error if train else None
        if section["state"] in ("failed", "timeout", "cancelled"):
            section["notes"].insert(0, f"training {section['state']}: {section['last_error'] or 'no error line recorded'}")
        missing += [f"training {member}: {note}" for note in section["notes"]]
        out[member] = section
    return out


def _evaluation(run: RunDir, members: list[str], missing: list[str]) -> dict:
    scores = {member: read_member_scores(run, member) for member in members}
    board = build_leaderboard(list(scores.values()))
    per_member = {member: member_evaluation(run, member, scores[member]) for member in members}
    by_task = reasons_by_task(per_member)
    add_problem_ids(by_task, per_member, {m: b for m in members if (b := _benchmarks(run, m))})
    for member, section in per_member.items():
        section.pop("_groups", None)
        missing += [f"evaluation {member}: {note}" for note in section["notes"]]
    best = board["best_member"]
    limits = sorted({s.limit for s in scores.values() if s.limit is not None})
    return {
        "tasks": list(TASK_NAMES),
        "members": per_member,
        "best_member": best,
        "best_mean": scores[best].mean if best else None,
        "best_per_task": board["best_per_task"],
        "reasons_by_task": by_task,
        "partial_run_limits": limits,
    }


def _scheduling(run: RunDir, members: list[str], elements, attempts, executor: str, commands, missing) -> dict:
    resources, notes = run_resources(run, members)
    section = scheduling(elements, attempts, executor, resources, commands)
    section["notes"] = notes + section["notes"]
    missing += [f"scheduling: {note}" for note in section["notes"]]
    return section


def build_report(run_root: str | Path, commands: SlurmCommands | None = None, now: float | None = None) -> dict:
    """The report of the run in ``run_root`` (sacct is asked once when the run used Slurm)."""
    run = RunDir(Path(run_root).resolve())
    missing: list[str] = []
    meta = _run_file(run)
    elements, attempts = _guard("state store", missing, lambda: _store_contents(run)) or ([], {})
    members = sorted(set(meta.get("members") or []) | set(run.member_names())
                     | {e.member for e in elements if e.member != COLLECT_MEMBER})
    executor = meta.get("executor") or "local"
    config_hash = _config_hash(run)
    if config_hash is None:
        missing.append(f"run: no {run.config.name} (the config hash is unknown)")
    if not members:
        missing.append("run: no members yet")
    report = {
        "schema": SCHEMA_VERSION,
        "generated_at": time.time() if now is None else now,
        "run": {"name": run.root.name, "root": str(run.root), "config_hash": config_hash, "executor": executor,
                "is_sweep": bool(meta.get("is_sweep", len(members) > 1)), "members": members,
                "has_state_store": run.state_db.is_file()},
        "stages": _stage_counts(elements),
        "baseline": {"name": BASELINE_NAME, "description": BASELINE_DESCRIPTION, "mean": BASELINE_MEAN,
                     "scores": dict(BASELINE_PASS1)},
        "missing": missing,
    }
    report["training"] = _guard("training", missing, lambda: _training(run, members, elements, missing))
    report["evaluation"] = _guard("evaluation", missing, lambda: _evaluation(run, members, missing))
    report["scheduling"] = _guard("scheduling", missing, lambda: _scheduling(
        run, members, elements, attempts, executor, commands, missing))
    report["submission"] = _guard("submission", missing, lambda: submissions(run))
    if report["submission"]:
        missing += [f"submission: {note}" for note in report["submission"]["notes"]]
    return report
