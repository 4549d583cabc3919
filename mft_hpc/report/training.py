"""Training curves of one member, read from ``train/metrics.jsonl`` (``mft_hpc.train.metrics``).

Rows: ``kind: train`` (loss, loss_per_task, lr, supervised_tokens_per_s ...), ``kind: eval``
(valid_loss, valid_loss_per_task, best_step, task_weights as a list in task order). Unreadable
lines are skipped and named; long curves are thinned to at most ``MAX_POINTS`` points per series
(first, last and the best step always kept), so a long run does not make the page heavy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mft_hpc.rundir import RunDir, done_marker

MAX_POINTS = 300


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def thin(points: list[list[float]], keep_x: set[float] = frozenset(), limit: int = MAX_POINTS) -> list[list[float]]:
    """At most ``limit`` points, evenly strided, keeping the first, the last and any x in ``keep_x``."""
    if len(points) <= limit:
        return points
    stride = len(points) / (limit - 1)
    chosen = {min(len(points) - 1, round(i * stride)) for i in range(limit - 1)} | {len(points) - 1}
    chosen |= {i for i, (x, _) in enumerate(points) if x in keep_x}
    return [points[i] for i in sorted(chosen)]


def read_rows(path: Path) -> tuple[list[dict], list[str]]:
    """The rows of a metrics.jsonl and a note per line that is not a JSON object with an integer step."""
    rows, notes = [], []
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return [], [f"{path}: unreadable: {err.strerror or err}"]
    bad = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        else:
            bad.append(number)
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        notes.append(f"{path}: line {shown}: not a metrics row (skipped)")
    return rows, notes


def _series(rows: list[dict], key: str) -> list[list[float]]:
    return [[row["step"], value] for row in rows if (value := _number(row.get(key))) is not None]


def _per_task(rows: list[dict], key: str) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = {}
    for row in rows:
        values = row.get(key)
        if isinstance(values, dict):
            for task, value in values.items():
                if (number := _number(value)) is not None:
                    out.setdefault(str(task), []).append([row["step"], number])
    return out


def _task_weights(evals: list[dict]) -> dict[str, list[list[float]]]:
    """``task_weights`` (a list in task order) against step; names from the row's per-task losses."""
    out: dict[str, list[list[float]]] = {}
    for row in evals:
        weights, names = row.get("task_weights"), list((row.get("valid_loss_per_task") or {}).keys())
        if not isinstance(weights, list) or len(weights) != len(names):
            continue
        for name, weight in zip(names, weights):
            if (number := _number(weight)) is not None:
                out.setdefault(name, []).append([row["step"], number])
    return out


def _outcome(run: RunDir, member: str) -> dict:
    """best step / last step / early stop, as the finished training recorded them."""
    for path in (run.member(member).train_result, done_marker(run.member(member).adapter)):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            return {key: data.get(key) for key in ("best_step", "last_step", "stopped_early", "best_valid_loss")}
    return {}


def member_training(run: RunDir, member: str, total_steps: int | None) -> dict:
    """The member's curves, best/early-stop facts and what is missing (never raises on bad files)."""
    path = run.member(member).train_metrics
    result = {"metrics_file": str(path), "total_steps": total_steps, "curves": {}, "notes": []}
    if not path.is_file():
        result["notes"].append(f"no training metrics yet ({path} does not exist)")
        return result
    rows, notes = read_rows(path)
    result["notes"] += notes
    train = [r for r in rows if r.get("kind", "train") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    outcome = _outcome(run, member)
    best = outcome.get("best_step")
    if best is None:
        best = next((r.get("best_step") for r in reversed(evals) if isinstance(r.get("best_step"), int)), None)
    keep = {best} if isinstance(best, int) else set()
    curves = {
        "train_loss": _series(train, "loss"),
        "valid_loss": _series(evals, "valid_loss"),
        "lr": _series(train, "lr"),
        "supervised_tokens_per_s": _series(train, "supervised_tokens_per_s"),
        "train_loss_per_task": _per_task(train, "loss_per_task"),
        "valid_loss_per_task": _per_task(evals, "valid_loss_per_task"),
        "task_weights": _task_weights(evals),
    }
    for name, value in curves.items():
        curves[name] = ({task: thin(points, keep) for task, points in value.items()} if isinstance(value, dict)
                        else thin(value, keep))
    result["curves"] = curves
    result["last_step"] = outcome.get("last_step") or (max(r["step"] for r in train) if train else None)
    if result["total_steps"] is None:  # max_steps unset: the loop logs the total it derived from the epochs
        result["total_steps"] = next((r["total_steps"] for r in reversed(rows)
                                      if isinstance(r.get("total_steps"), int)), None)
    result["best_step"] = best if isinstance(best, int) else None
    result["best_valid_loss"] = _number(outcome.get("best_valid_loss"))
    result["stopped_early"] = bool(outcome.get("stopped_early"))
    if not train:
        result["notes"].append(f"{path}: no training step logged yet")
    if not evals:
        result["notes"].append("no validation rows (no validation split, or no evaluation step reached yet)")
    return result
