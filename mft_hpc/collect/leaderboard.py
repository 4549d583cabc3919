"""The leaderboard of a run: members x 13 tasks, the competition mean, the best member marked.

Writes into ``runs/<name>/collect/``: ``leaderboard.json``, ``leaderboard.md`` and, per member, the
harness grouping file ``grouped/<member>.json`` = ``{"results": [{"task", "pass@1"}...], "meta":
{"model"}, "average": mean or null}`` (``average`` is null unless all 13 tasks are present, as in
MFTCoder's ``group_jsons_codeqwen.py``). The best member is the one with the highest 13-task mean
among members that have every task; a member with a missing task is never ranked on a partial mean.
"""

from __future__ import annotations

from pathlib import Path

from mft_hpc.collect.metrics import MemberScores, read_run_scores
from mft_hpc.rundir import RunDir, atomic_write_json, atomic_write_text
from mft_hpc.submission.competition import BASELINE_DESCRIPTION, BASELINE_MEAN, BASELINE_NAME, BASELINE_PASS1
from mft_hpc.tasks.names import TASK_NAMES

MISSING = "missing"


def short_task(task: str) -> str:
    """``humanevalsynthesize-python`` -> ``synth-python``: keeps 13 columns readable."""
    return task.replace("humanevalsynthesize-", "synth-").replace("humanevalfixtests-", "fix-")


def _rank_key(member: MemberScores):
    # complete members first, by mean (desc); then the rest by their partial mean; then by name
    return (not member.complete, -(member.mean or member.mean_of_present or 0.0), member.member)


def build_leaderboard(members: list[MemberScores]) -> dict:
    ranked = sorted(members, key=_rank_key)
    best = next((m.member for m in ranked if m.complete), None)
    best_per_task = {}
    for task in TASK_NAMES:
        present = [m.scores[task] for m in members if task in m.scores]
        top = max(present) if present else None
        best_per_task[task] = [m.member for m in members if top is not None and m.scores.get(task) == top]
    rows = []
    for member in ranked:
        rows.append({
            "member": member.member,
            "model": member.model,
            "scores": {task: member.scores.get(task) for task in TASK_NAMES},
            "missing": member.missing,
            "mean": member.mean,
            "mean_of_present": member.mean_of_present,
            "delta_vs_baseline": None if member.mean is None else member.mean - BASELINE_MEAN,
            "partial_run_limit": member.limit,
            "best": member.member == best,
            "problems": member.problems,
        })
    return {
        "tasks": list(TASK_NAMES),
        "baseline": {"name": BASELINE_NAME, "description": BASELINE_DESCRIPTION, "scores": dict(BASELINE_PASS1),
                     "mean": BASELINE_MEAN},
        "best_member": best,
        "best_per_task": best_per_task,
        "members": rows,
    }


def _cell(value: float | None, bold: bool = False) -> str:
    if value is None:
        return MISSING
    text = f"{value:.4f}"
    return f"**{text}**" if bold else text


def render_markdown(board: dict) -> str:
    tasks = board["tasks"]
    header = ["member"] + [short_task(t) for t in tasks] + ["mean", "vs baseline"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in board["members"]:
        name = row["member"] + (" ★ best" if row["best"] else "")
        if row["partial_run_limit"] is not None:
            name += f" (partial: limit {row['partial_run_limit']})"
        cells = [_cell(row["scores"][t], bold=row["member"] in board["best_per_task"][t]) for t in tasks]
        delta = row["delta_vs_baseline"]
        mean = _cell(row["mean"]) if row["mean"] is not None else f"{MISSING} ({len(row['missing'])} tasks)"
        lines.append("| " + " | ".join([name] + cells + [mean, "—" if delta is None else f"{delta:+.4f}"]) + " |")
    base = board["baseline"]
    lines.append("| " + " | ".join([f"_{base['name']}_"] + [_cell(base["scores"][t]) for t in tasks]
                                   + [_cell(base["mean"]), "—"]) + " |")
    text = ["# Leaderboard", "", f"Best member: **{board['best_member']}**" if board["best_member"]
            else "Best member: none yet (no member has all 13 tasks)", "", *lines, "",
            f"_{base['name']}_: {BASELINE_DESCRIPTION} (mean pass@1 {base['mean']:.4f}), not the untuned base model.", ""]
    problems = [p for row in board["members"] for p in row["problems"]]
    if problems:
        text += ["## Problems", "", *(f"- {p}" for p in problems), ""]
    if any(row["partial_run_limit"] is not None for row in board["members"]):
        text += ["Partial runs (generate.limit) score a subset of problems: not comparable to the baseline.", ""]
    return "\n".join(text)


def grouping(member: MemberScores) -> dict:
    return {
        "results": [{"task": task, "pass@1": member.scores[task]} for task in TASK_NAMES if task in member.scores],
        "meta": {"model": member.model or member.member},
        "average": member.mean,
    }


def write_leaderboard(run: str | Path) -> dict:
    """Collect every member's metrics of ``run`` and write the leaderboard files; return the board."""
    run = RunDir(Path(run))
    members = read_run_scores(run)
    board = build_leaderboard(members)
    for member in members:
        atomic_write_json(run.collect / "grouped" / f"{member.member}.json", grouping(member), indent=2)
    atomic_write_json(run.leaderboard, board, indent=2)
    atomic_write_text(run.leaderboard.with_suffix(".md"), render_markdown(board))
    return board
