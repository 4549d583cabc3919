"""What the dashboard shows, read once from the run directory and its state store (no Slurm calls).

Everything here is tolerant: a file that is being written, or missing, shows as "unknown"/absent;
the dashboard never fails because a stage has not produced something yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mft_hpc.collect.metrics import MemberScores, read_member_scores
from mft_hpc.config.member import member_section
from mft_hpc.rundir.state import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FAILED_STATES,
    PENDING,
    PLANNED,
    RUNNING,
    SKIPPED,
    TIMEOUT,
    Element,
    StateStore,
)
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir, is_done
from mft_hpc.tasks.names import PROBLEM_COUNTS, TASK_NAMES

UNKNOWN = "unknown"
TASK_STAGES = ("generate", "evaluate")
_TOKENS_KEYS = ("tokens_per_s", "tokens_per_sec", "tokens/s", "tok_per_s")
_TOTAL_KEYS = ("total_steps", "max_steps", "num_steps")
_TIME_KEYS = ("time", "timestamp", "elapsed_s", "elapsed")
_DONE_KEYS = ("done", "completed", "generated", "n_done")
_TOTAL_PROBLEM_KEYS = ("total", "n_total", "problems")


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total_steps: int | None
    losses: list[float]                 # mean training loss per logged step, oldest first
    task_losses: dict[str, float]       # last logged loss per training task
    tokens_per_s: float | None
    lr: float | None
    eta_s: float | None

    @property
    def loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


@dataclass(frozen=True)
class MemberView:
    name: str
    train_state: str
    train: TrainProgress | None
    task_states: dict[str, dict[str, str]]          # stage -> task -> state
    generation_progress: dict[str, tuple[int, int]]  # task -> (done, total)
    scores: MemberScores


@dataclass(frozen=True)
class AggregateView:
    """A large sweep at a glance (no per-member file reads): what ``read_run`` gives above
    ``AGGREGATE_ABOVE`` members instead of one MemberView per member."""

    members: int
    counts: dict[tuple[str, str], int]             # (stage, state) -> elements
    top: list[tuple[str, float, int]]              # (member, mean pass@1, tasks) best first
    failed_members: list[tuple[str, int, str]]     # (member, failed elements, first error) by member
    failed_member_count: int = 0
    collect_error: str | None = None               # the collect job's error line when it failed


@dataclass(frozen=True)
class RunView:
    name: str
    root: Path
    members: list[MemberView]
    failures: list[Element] = field(default_factory=list)
    collect_state: str = UNKNOWN
    has_state_store: bool = False
    state_problem: str | None = None  # why state.sqlite could not be read (the view then comes from files)
    aggregate: AggregateView | None = None
    waves: str | None = None  # how a run cut in waves stands (mft_hpc.controller.waves)


def _number(row: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _row_loss(row: dict) -> tuple[float | None, dict[str, float]]:
    per_task = {}
    for key in ("task_loss", "loss_per_task", "task_losses"):
        if isinstance(row.get(key), dict):
            per_task = {k: float(v) for k, v in row[key].items() if isinstance(v, (int, float))}
    loss = row.get("loss")
    if isinstance(loss, dict):
        per_task = per_task or {k: float(v) for k, v in loss.items() if isinstance(v, (int, float))}
        loss = None
    if isinstance(loss, (int, float)) and not isinstance(loss, bool):
        return float(loss), per_task
    return (sum(per_task.values()) / len(per_task) if per_task else None), per_task


def read_train_progress(metrics_path: Path, total_steps: int | None = None) -> TrainProgress | None:
    """Training metrics.jsonl (one JSON object per logged step); a torn last line is skipped.

    Only training rows count (``kind`` absent or "train"; validation rows are ``kind: eval``). The total
    for the ETA comes from the row (``total_steps``) or else from the caller (the config's max_steps).
    """
    if not metrics_path.is_file():
        return None
    rows = []
    for line in metrics_path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row.get("kind", "train") == "train":
            rows.append(row)
    if not rows:
        return None
    losses, task_losses = [], {}
    for row in rows:
        loss, per_task = _row_loss(row)
        if loss is not None:
            losses.append(loss)
        task_losses = per_task or task_losses
    last = rows[-1]
    total = _number(last, _TOTAL_KEYS) or total_steps
    eta = _number(last, ("eta_s",))
    timed = [(r["step"], _number(r, _TIME_KEYS)) for r in rows if _number(r, _TIME_KEYS) is not None]
    if eta is None and total is not None and len(timed) >= 2 and timed[-1][1] > timed[0][1]:
        rate = (timed[-1][0] - timed[0][0]) / (timed[-1][1] - timed[0][1])
        eta = (total - last["step"]) / rate if rate > 0 else None
    return TrainProgress(step=last["step"], total_steps=int(total) if total is not None else None,
                         losses=losses, task_losses=task_losses, tokens_per_s=_number(last, _TOKENS_KEYS),
                         lr=_number(last, ("lr", "learning_rate")), eta_s=eta)


def aggregate_state(states: list[str]) -> str:
    """One cell for several shards: failure wins, then activity, then completion."""
    if not states:
        return UNKNOWN
    done = {COMPLETED, SKIPPED}
    if all(s in done for s in states):
        return COMPLETED
    for state in (FAILED, TIMEOUT, CANCELLED, RUNNING, PENDING):
        if state in states:
            return state
    return RUNNING if any(s in done for s in states) else PLANNED


def _progress_entries(data, file_name: str):
    """Yield (task, done, total) from one progress JSON, whichever of the plausible shapes it has."""
    if not isinstance(data, dict):
        return
    done, total = _number(data, _DONE_KEYS), _number(data, _TOTAL_PROBLEM_KEYS)
    task = data.get("task") if data.get("task") in TASK_NAMES else next(
        (t for t in sorted(TASK_NAMES, key=len, reverse=True) if t in file_name), None)
    if task and done is not None:
        yield task, int(done), int(total if total is not None else PROBLEM_COUNTS[task])
        return
    for key, value in data.items():
        if key in TASK_NAMES and isinstance(value, dict) and _number(value, _DONE_KEYS) is not None:
            value_total = _number(value, _TOTAL_PROBLEM_KEYS)
            yield key, int(_number(value, _DONE_KEYS)), int(value_total or PROBLEM_COUNTS[key])


def read_generation_progress(generate_dir: Path, limit: int | None) -> dict[str, tuple[int, int]]:
    """task -> (done, total): finished generations files count fully; else the stage's progress JSON."""
    progress: dict[str, tuple[int, int]] = {}
    if not generate_dir.is_dir():
        return progress
    by_file: dict[tuple[str, Path], tuple[int, int]] = {}
    progress_files = [p for p in generate_dir.rglob("*.json") if "progress" in str(p.relative_to(generate_dir))]
    for path in sorted(progress_files):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # being written; next refresh
        for task, done, total in _progress_entries(data, path.name):
            by_file[(task, path)] = (done, total)
    for (task, _path), (done, _total) in by_file.items():  # shards of a task add up
        progress[task] = (progress.get(task, (0, 0))[0] + done, 0)
    for task in TASK_NAMES:
        # the whole task, also counting shards that have not written progress yet
        expected = PROBLEM_COUNTS[task] if limit is None else min(limit, PROBLEM_COUNTS[task])
        if any(generate_dir.glob(f"generations_*/generations_{task}_*.json")):
            progress[task] = (expected, expected)
        elif task in progress:
            progress[task] = (min(progress[task][0], expected), expected)
    return progress


def _file_states(run: Path, member: str) -> dict[str, dict[str, str]]:
    """States inferred from output files alone, for runs (or cells) the state store does not know."""
    base = run / "members" / member
    states: dict[str, dict[str, str]] = {}
    for stage, pattern in (("generate", "generations_*/generations_{task}_*.json"),
                           ("evaluate", "metrics_*/metrics_{task}_*.json")):
        folder = base / stage
        states[stage] = {task: COMPLETED if folder.is_dir() and any(folder.glob(pattern.format(task=task)))
                         else UNKNOWN for task in TASK_NAMES}
    return states


def _max_steps(run: Path, member: str) -> int | None:
    try:
        return member_section(RunDir(run), member, "train").max_steps
    except UserError:
        return None


def _member_view(run: Path, member: str, elements: list[Element]) -> MemberView:
    scores = read_member_scores(RunDir(run), member)
    task_states = _file_states(run, member)
    for stage in TASK_STAGES:
        for task in TASK_NAMES:
            stored = [e.state for e in elements if e.stage == stage and e.task == task]
            if stored:
                task_states[stage][task] = aggregate_state(stored)
    train_dir = run / "members" / member / "train"
    train_stored = [e.state for e in elements if e.stage == "train"]
    train_state = aggregate_state(train_stored) if train_stored else (COMPLETED if is_done(train_dir / "merged") else UNKNOWN)
    return MemberView(
        name=member,
        train_state=train_state,
        train=read_train_progress(train_dir / "metrics.jsonl", _max_steps(run, member)),
        task_states=task_states,
        generation_progress=read_generation_progress(run / "members" / member / "generate", scores.limit),
        scores=scores,
    )


AGGREGATE_ABOVE = 24  # members; above, the dashboard shows counts, the top members and the failures
TOP_K = 10
FAILED_MEMBERS_SHOWN = 20


def _metric(path: str, task: str) -> float | None:
    try:
        value = json.loads(Path(path).read_text()).get(task, {}).get("pass@1")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _top_members(run: Path, store: StateStore, k: int) -> list[tuple[str, float, int]]:
    """Best mean pass@1 among members whose every evaluation element is completed: read from the
    metrics files those elements wrote (only theirs), or from collect's leaderboard once it is done."""
    board = run / "collect" / "leaderboard.json"
    if is_done(board):
        try:
            rows = json.loads(board.read_text()).get("members", [])
            # the 13-task mean; a run of fewer tasks (generate.tasks) ranks by the mean of its tasks
            ranked = [(r["member"], r["mean"], len(TASK_NAMES)) if isinstance(r.get("mean"), (int, float)) else
                      (r["member"], r["mean_of_present"], sum(v is not None for v in r["scores"].values()))
                      for r in rows if isinstance(r.get("mean") or r.get("mean_of_present"), (int, float))]
            return sorted(ranked, key=lambda row: -row[1])[:k]
        except (OSError, json.JSONDecodeError, KeyError, AttributeError):
            pass
    tasks: dict[str, int] = {}
    for element in store.elements(stage="evaluate"):
        tasks[element.member] = tasks.get(element.member, 0) + 1
    done: dict[str, list[Element]] = {}
    for element in store.elements(stage="evaluate", states=[COMPLETED]):
        done.setdefault(element.member, []).append(element)
    means = []
    for member, elements in done.items():
        if len(elements) != tasks[member]:
            continue
        values = [_metric(str(run / e.output_path) if e.output_path else "", e.task) for e in elements]
        if values and None not in values:
            means.append((member, sum(values) / len(values), len(values)))
    return sorted(means, key=lambda row: -row[1])[:k]


def read_aggregate(run: Path, store: StateStore, members: int) -> AggregateView:
    failures = store.elements(states=sorted(FAILED_STATES))
    by_member: dict[str, list[Element]] = {}
    for element in failures:
        if element.stage != "collect":
            by_member.setdefault(element.member, []).append(element)
    collect_error = next((e.last_error or "(no error line recorded)" for e in failures if e.stage == "collect"), None)
    failed = [(member, len(elements), next((e.last_error for e in elements if e.last_error), "") or "")
              for member, elements in sorted(by_member.items())]
    return AggregateView(members=members, counts=store.counts(), top=_top_members(run, store, TOP_K),
                         failed_members=failed[:FAILED_MEMBERS_SHOWN], failed_member_count=len(failed),
                         collect_error=collect_error)


def read_run(run: str | Path) -> RunView:
    from mft_hpc.controller.waves import read_waves, waves_line

    run = Path(run)
    elements, problem, store, waves = [], None, None, None
    try:
        store = StateStore.open_reader(run / "state.sqlite")
        if store is not None:
            with store:
                waves = waves_line(read_waves(store))
                names = [m for m in store.members() if m != "_run"]
                if len(names) > AGGREGATE_ABOVE:
                    collect = [e.state for e in store.elements(stage="collect")]
                    return RunView(name=run.name, root=run, members=[], collect_state=aggregate_state(collect)
                                   if collect else UNKNOWN, has_state_store=True,
                                   aggregate=read_aggregate(run, store, len(names)), waves=waves)
                elements = store.elements()
    except UserError as err:  # corrupt or locked: the output files still tell most of the story
        problem, store = str(err), None
    if store is None and problem is None and (run / "run.json").exists():
        problem = f"{run / 'state.sqlite'}: missing; `mft-hpc repair {run}` rebuilds it"
    names = sorted(set(RunDir(run).member_names()) | {e.member for e in elements if e.stage != "collect"})
    members = [_member_view(run, name, [e for e in elements if e.member == name]) for name in names]
    failures = [e for e in elements if e.state in FAILED_STATES]
    collect = [e.state for e in elements if e.stage == "collect"]
    collect_state = aggregate_state(collect) if collect else (
        COMPLETED if (run / "collect" / "leaderboard.json").is_file() else UNKNOWN)
    return RunView(name=run.name, root=run, members=members, failures=failures,
                   collect_state=collect_state, has_state_store=store is not None, state_problem=problem,
                   waves=waves)
