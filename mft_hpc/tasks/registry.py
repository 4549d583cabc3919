"""Task checks, their languages and their problems, read from the benchmarks directory.

Layout of the benchmarks directory (``generate.benchmarks``):
    humanevalpack/<lang>.jsonl   164 rows each
    mbpp/mbpp.jsonl              974 rows; the scored split is rows 10..509 = task_id 11..510
"""

from __future__ import annotations

import json
from pathlib import Path

from mft_hpc.errors import UserError
from mft_hpc.tasks.names import HUMANEVALPACK_SIZE, MBPP_FIRST_TASK_ID, MBPP_LAST_TASK_ID, TASK_NAMES


def check_task(task: str) -> str:
    if task not in TASK_NAMES:
        raise UserError(f"unknown task {task!r}; expected one of: {', '.join(TASK_NAMES)}")
    return task


def language_of(task: str) -> str:
    """'python', 'java', 'js', 'cpp', 'go' or 'rust' (mbpp is python)."""
    check_task(task)
    return "python" if task == "mbpp" else task.rsplit("-", 1)[1]


def is_fixtests(task: str) -> bool:
    return check_task(task).startswith("humanevalfixtests-")


def data_file(benchmarks_dir: str | Path, task: str) -> Path:
    root = Path(benchmarks_dir)
    if check_task(task) == "mbpp":
        return root / "mbpp" / "mbpp.jsonl"
    return root / "humanevalpack" / f"{language_of(task)}.jsonl"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise UserError(f"{path}: benchmark file not found (is generate.benchmarks / --benchmarks right?)")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{lineno}: not valid JSON: {err.msg}") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object per line")
            rows.append(row)
    return rows


def load_problems(benchmarks_dir: str | Path, task: str) -> list[dict]:
    """The task's problems in dataset order (the order of the generations file)."""
    path = data_file(benchmarks_dir, task)
    rows = _read_jsonl(path)
    if task == "mbpp":
        by_id = [r for r in rows if MBPP_FIRST_TASK_ID <= r.get("task_id", -1) <= MBPP_LAST_TASK_ID]
        expected = list(range(MBPP_FIRST_TASK_ID, MBPP_LAST_TASK_ID + 1))
        if [r["task_id"] for r in by_id] != expected:
            raise UserError(f"{path}: expected task_id {MBPP_FIRST_TASK_ID}..{MBPP_LAST_TASK_ID} in order (the MBPP test split)")
        return by_id
    if len(rows) != HUMANEVALPACK_SIZE:
        raise UserError(f"{path}: expected {HUMANEVALPACK_SIZE} problems, found {len(rows)}")
    return rows
