"""Read the evaluation stage's metrics files of every member of a run.

Each member's ``evaluate/`` holds ``metrics_{model}/metrics_{task}_{model}.json`` =
``{"<task>": {"pass@1": x}, "config": {...}}`` (the grader's layout). A task without a readable file is
*missing*: it is reported as such and never counted as 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from mft_hpc.config.member import member_section
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir
from mft_hpc.submission.competition import split_task_model
from mft_hpc.tasks.names import TASK_NAMES


@dataclass(frozen=True)
class MemberScores:
    member: str
    model: str | None
    scores: dict[str, float]                          # task -> pass@1, only tasks with a metrics file
    problems: list[str] = field(default_factory=list)  # unreadable or inconsistent files
    limit: int | None = None                          # generate.limit: scores of a partial run

    @property
    def missing(self) -> list[str]:
        return [task for task in TASK_NAMES if task not in self.scores]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def mean(self) -> float | None:
        """The competition score: mean over all 13 tasks, None unless every task is present."""
        return fmean(self.scores[task] for task in TASK_NAMES) if self.complete else None

    @property
    def mean_of_present(self) -> float | None:
        return fmean(self.scores.values()) if self.scores else None


def _pass_at_1(path: Path, task: str) -> tuple[float | None, str | None]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path}: unreadable metrics file: {exc}"
    value = data.get(task, {}).get("pass@1") if isinstance(data, dict) and isinstance(data.get(task), dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        return None, f"{path}: {task}.pass@1 must be a number in [0, 1], got {value!r}"
    return float(value), None


def member_limit(run: RunDir, member: str) -> int | None:
    """generate.limit of a member (None when unset, or when its config cannot be read)."""
    try:
        return member_section(run, member, "generate").limit
    except UserError:
        return None


def read_member_scores(run: RunDir, member: str) -> MemberScores:
    evaluate_dir = run.member(member).evaluate
    scores: dict[str, float] = {}
    models: set[str] = set()
    problems: list[str] = []
    paths = sorted(evaluate_dir.glob("metrics_*/metrics_*.json")) if evaluate_dir.is_dir() else []
    for path in paths:
        parsed = split_task_model(path.stem, "metrics")
        if parsed is None:
            problems.append(f"{path}: not named metrics_{{task}}_{{model}}.json with a competition task")
            continue
        task, model = parsed
        value, problem = _pass_at_1(path, task)
        if problem:
            problems.append(problem)
            continue
        if task in scores:
            problems.append(f"{path}: a second metrics file for {task} (models: {', '.join(sorted(models | {model}))})")
            continue
        scores[task] = value
        models.add(model)
    model = models.pop() if len(models) == 1 else None
    return MemberScores(member, model, scores, problems, member_limit(run, member))


def read_run_scores(run: RunDir) -> list[MemberScores]:
    return [read_member_scores(run, member) for member in run.member_names()]
