"""Evaluation of one member: pass@1 per task, verdict counts and the most common failure reasons.

pass@1 comes from the metrics files (``mft_hpc.collect.metrics``: what the leaderboard uses); the
verdicts and reasons from the per-problem ``results_{task}_{model}.jsonl`` beside them (one line per
problem in dataset order: index, verdict, reason, seconds). Reasons are grouped by their first line
with numbers and quoted names blanked, so "line 12" and "line 40" count as one reason.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from mft_hpc.collect.metrics import MemberScores
from mft_hpc.evaluate.evaluate import VERDICTS
from mft_hpc.rundir import RunDir
from mft_hpc.submission.competition import split_task_model
from mft_hpc.tasks.names import TASK_NAMES

TOP_REASONS = 3
REASON_CHARS = 160
_QUOTED = re.compile(r"(['\"`‘’]).{1,80}?\1")
_NUMBER = re.compile(r"\d+")
_PATH = re.compile(r"(?:/[\w.+-]+)+")


def reason_key(verdict: str, reason: str) -> str:
    """The group a failure reason falls in: its first informative line, numbers/paths/names blanked."""
    lines = [line.strip() for line in (reason or "").splitlines() if line.strip()]
    line = lines[0] if lines else f"({verdict}, no message)"
    line = _PATH.sub("…", line)
    line = _QUOTED.sub(lambda m: f"{m.group(1)}…{m.group(1)}", line)
    return _NUMBER.sub("N", line)[:REASON_CHARS]


def read_results(path: Path) -> tuple[Counter, dict[tuple[str, str], dict], list[str]]:
    """Verdict counts, failure groups ``(verdict, key) -> {count, example index, example reason}`` and notes."""
    verdicts: Counter = Counter()
    groups: dict[tuple[str, str], dict] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as err:
        return verdicts, groups, [f"{path}: unreadable: {err.strerror or err}"]
    bad = 0
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or row.get("verdict") not in VERDICTS:
            bad += bool(line.strip())
            continue
        verdict = row["verdict"]
        verdicts[verdict] += 1
        if verdict == "pass":
            continue
        reason = str(row.get("reason") or "")
        group = groups.setdefault((verdict, reason_key(verdict, reason)), {
            "count": 0, "example_index": row.get("index"), "example_reason": reason[:REASON_CHARS * 2]})
        group["count"] += 1
    return verdicts, groups, [f"{path}: {bad} line(s) without a verdict (skipped)"] if bad else []


def top_reasons(groups: dict[tuple[str, str], dict], limit: int = TOP_REASONS) -> list[dict]:
    ranked = sorted(groups.items(), key=lambda item: (-item[1]["count"], item[0]))
    return [{"verdict": verdict, "reason": key, **info} for (verdict, key), info in ranked[:limit]]


def member_evaluation(run: RunDir, member: str, scores: MemberScores) -> dict:
    """Scores, verdicts and failure reasons of ``member``; ``_groups`` is kept for run-wide ranking."""
    evaluate_dir = run.member(member).evaluate
    notes = list(scores.problems)
    verdicts: dict[str, dict[str, int]] = {}
    reasons: dict[str, list[dict]] = {}
    groups: dict[str, dict] = {}
    paths = sorted(evaluate_dir.glob("metrics_*/results_*.jsonl")) if evaluate_dir.is_dir() else []
    for path in paths:
        parsed = split_task_model(path.stem, "results")
        if parsed is None:
            continue
        task = parsed[0]
        counts, task_groups, task_notes = read_results(path)
        notes += task_notes
        verdicts[task] = {v: counts[v] for v in VERDICTS if counts[v]}
        reasons[task] = top_reasons(task_groups)
        groups[task] = task_groups
    if not scores.scores:
        notes.append(f"no evaluation results yet ({evaluate_dir}/metrics_*/metrics_{{task}}_*.json)")
    elif scores.missing:
        notes.append(f"no pass@1 yet for {len(scores.missing)} of {len(TASK_NAMES)} tasks: {', '.join(scores.missing)}")
    return {
        "model": scores.model,
        "scores": {task: scores.scores.get(task) for task in TASK_NAMES},
        "mean": scores.mean,
        "mean_of_present": scores.mean_of_present,
        "partial_run_limit": scores.limit,
        "verdicts": verdicts,
        "failure_reasons": reasons,
        "notes": notes,
        "_groups": groups,
    }


def reasons_by_task(members: dict[str, dict]) -> dict[str, list[dict]]:
    """The most common failure reasons of each task over all members, each with one example problem."""
    out = {}
    for task in TASK_NAMES:
        merged: dict[tuple[str, str], dict] = {}
        for name, member in members.items():
            for key, info in member.get("_groups", {}).get(task, {}).items():
                entry = merged.setdefault(key, {"count": 0, "example_member": name,
                                                "example_index": info["example_index"],
                                                "example_reason": info["example_reason"]})
                entry["count"] += info["count"]
        if merged:
            out[task] = top_reasons(merged)
    return out


def add_problem_ids(by_task: dict[str, list[dict]], members: dict[str, dict], benchmarks: dict[str, str]) -> None:
    """Give every example its benchmark id (``Python/12``, mbpp ``11``), from the member's benchmark
    data; ``example_problem_id`` stays None when the data cannot be read (moved, another machine)."""
    from mft_hpc.tasks.registry import load_problems

    cache: dict[tuple[str, str], list] = {}

    def problem_id(member: str, task: str, index) -> str | None:
        root = benchmarks.get(member)
        if root is None or not isinstance(index, int):
            return None
        if (root, task) not in cache:
            try:
                cache[(root, task)] = [doc.get("task_id") for doc in load_problems(root, task)]
            except Exception:  # noqa: BLE001 - any unreadable benchmark file: the index still identifies it
                cache[(root, task)] = []
        ids = cache[(root, task)]
        return str(ids[index]) if 0 <= index < len(ids) and ids[index] is not None else None

    for task, entries in by_task.items():
        for entry in entries:
            entry["example_problem_id"] = problem_id(entry["example_member"], task, entry["example_index"])
    for member, section in members.items():
        for task, entries in section["failure_reasons"].items():
            for entry in entries:
                entry["example_problem_id"] = problem_id(member, task, entry["example_index"])
