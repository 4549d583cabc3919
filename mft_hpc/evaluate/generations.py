"""Reading a harness-format generations file: a JSON list (one entry per problem, dataset order)
of lists of strings. Anything else is an error naming the file — never a shrunk denominator."""

from __future__ import annotations

import json
from pathlib import Path

from mft_hpc.errors import UserError


def generations_path(generations_dir: str | Path, task: str, model: str) -> Path:
    return Path(generations_dir) / f"generations_{task}_{model}.json"


def load_generations(path: Path, expected: int) -> list[str]:
    """The one candidate of each problem (pass@1, greedy: n_samples = 1)."""
    if not path.is_file():
        raise UserError(f"{path}: generations file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of {expected} lists of strings, got {type(data).__name__}")
    if len(data) != expected:
        raise UserError(f"{path}: has {len(data)} entries, the task has {expected} problems")
    firsts = []
    for index, entry in enumerate(data):
        if not isinstance(entry, list):
            raise UserError(f"{path}: entry {index} is {type(entry).__name__}, expected a list of strings")
        if not entry:
            raise UserError(f"{path}: entry {index} is an empty list (every problem needs one candidate)")
        if not all(isinstance(text, str) for text in entry):
            raise UserError(f"{path}: entry {index} holds a non-string candidate")
        if len(entry) > 1:  # scoring the first silently would report pass@1 of a sample we did not choose
            raise UserError(f"{path}: entry {index} must be a list holding exactly one string (greedy, 1 sample), "
                            f"got {len(entry)} candidates")
        firsts.append(entry[0])
    return firsts


def discover_tasks(generations_dir: str | Path, model: str, known: tuple[str, ...]) -> list[str]:
    """Tasks with a generations file in the folder; an unknown task name is an error."""
    root = Path(generations_dir)
    if not root.is_dir():
        raise UserError(f"{root}: generations folder not found")
    prefix, suffix = "generations_", f"_{model}.json"
    tasks = []
    for path in sorted(root.glob("generations_*.json")):
        name = path.name
        if not name.endswith(suffix):
            raise UserError(f"{path}: file name does not end with _{model}.json (is --model right?)")
        task = name[len(prefix):-len(suffix)]
        if task not in known:
            raise UserError(f"{path}: unknown task {task!r} in the file name")
        tasks.append(task)
    if not tasks:
        raise UserError(f"{root}: no generations_<task>_{model}.json files")
    return [t for t in known if t in tasks]
