"""Validate a submission: folder ``generations_{model}/`` with exactly the 13 competition files.

Rules (the competition's submission format): one folder named
``generations_{model}``; exactly 13 files ``generations_{task}_{model}.json``, one per task; each a
JSON list, in dataset order, with one entry per problem (164, mbpp 500), each entry a list holding
exactly one string (greedy, n_samples=1). A wrong name scores 0 on the platform, a short list silently
shrinks the denominator: both are refused here. Short lists are accepted only when the caller allows
a partial submission, and then the archive's name must say ``partial``.
"""

from __future__ import annotations

import difflib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mft_hpc.errors import UserError
from mft_hpc.rundir.layout import generations_file_name, generations_folder_name
from mft_hpc.tasks.names import PROBLEM_COUNTS, TASK_NAMES

FOLDER_PREFIX = generations_folder_name("")
PARTIAL_WORD = "partial"
PARTIAL_COMMENT_PREFIX = b"mft-hpc partial submission"


@dataclass(frozen=True)
class CheckedSubmission:
    model: str
    counts: dict[str, int]   # task -> entries in its file
    partial: bool            # some file has fewer entries than the task has problems

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def model_of_folder(folder: str) -> str | None:
    if folder.startswith(FOLDER_PREFIX) and len(folder) > len(FOLDER_PREFIX):
        return folder[len(FOLDER_PREFIX):]
    return None


def _name_problems(where: str, model: str, names: list[str]) -> list[str]:
    expected = {generations_file_name(task, model): task for task in TASK_NAMES}
    problems = []
    if len(names) != len(TASK_NAMES):
        problems.append(f"{where}: has {len(names)} files, expected exactly {len(TASK_NAMES)} (one per task)")
    missing = sorted(set(expected) - set(names))
    for name in sorted(set(names) - set(expected)):
        # A misnamed file most likely stands for one of the missing names.
        close = difflib.get_close_matches(name, missing or list(expected), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{where}/{name}: unexpected file name{hint}; names must be generations_{{task}}_{model}.json")
    for name in missing:
        problems.append(f"{where}/{name}: missing (task {expected[name]})")
    return problems


def _content_problems(where: str, task: str, data: bytes, allow_partial: bool,
                      limit: int | None) -> tuple[list[str], int | None]:
    """Problems of one generations file, and its number of entries (None if unreadable)."""
    try:
        entries = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{where}: not valid JSON: {exc}"], None
    if not isinstance(entries, list):
        return [f"{where}: must be a JSON list (one entry per problem), got {type(entries).__name__}"], None
    for index, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 1 and isinstance(entry[0], str)):
            return [f"{where}: entry {index} must be a list holding exactly one string (greedy, 1 sample), "
                    f"got {json.dumps(entry)[:60]}"], len(entries)
    full = PROBLEM_COUNTS[task]
    expected = full if limit is None else min(limit, full)
    count = len(entries)
    if count > full:
        return [f"{where}: {count} entries, but {task} has only {full} problems"], count
    if limit is not None and count != expected:
        return [f"{where}: {count} entries, but the run's generate.limit {limit} means {expected}"], count
    if count == full:
        return [], count
    if not allow_partial:
        return [f"{where}: {count} entries, expected {full} (one per {task} problem); "
                "a run made with generate.limit is partial: use --allow-partial"], count
    if count == 0:
        return [f"{where}: empty list"], count
    return [], count


def check_files(where: str, model: str, names: list[str], read: Callable[[str], bytes],
                allow_partial: bool = False, limit: int | None = None) -> CheckedSubmission:
    """Check the file names and contents of one generations folder; raise UserError listing all problems."""
    problems = _name_problems(where, model, names)
    counts = {}
    for task in TASK_NAMES:
        name = generations_file_name(task, model)
        if name not in names:
            continue
        task_problems, count = _content_problems(f"{where}/{name}", task, read(name), allow_partial, limit)
        problems += task_problems
        if count is not None:
            counts[task] = count
    if problems:
        raise UserError("\n".join(["submission refused:"] + problems))
    partial = any(counts[task] < PROBLEM_COUNTS[task] for task in TASK_NAMES)
    return CheckedSubmission(model=model, counts=counts, partial=partial)


def check_zip(path: str | Path, allow_partial: bool = False) -> CheckedSubmission:
    """Validate a submission zip (ours or anyone's) exactly as it will be uploaded."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: not a readable zip file: {exc}") from None
    with archive:
        files = [info.filename for info in archive.infolist() if not info.is_dir()]
        folders = {name.split("/", 1)[0] for name in files} | {
            info.filename.split("/", 1)[0] for info in archive.infolist() if info.is_dir()}
        if len(folders) != 1 or any("/" not in name for name in files):
            raise UserError(f"{path}: must unpack to exactly one folder generations_{{model}}/ holding the "
                            f"files; found top-level entries: {', '.join(sorted(folders)) or 'none'}")
        folder = folders.pop()
        model = model_of_folder(folder)
        if model is None:
            raise UserError(f"{path}: top folder {folder!r} must be named generations_{{model}}")
        nested = [name for name in files if name.count("/") != 1]
        if nested:
            raise UserError(f"{path}: files must sit directly in {folder}/; found {nested[0]}")
        names = [name.split("/", 1)[1] for name in files]
        checked = check_files(f"{path.name}:{folder}", model, names,
                              lambda name: archive.read(f"{folder}/{name}"), allow_partial=allow_partial)
        marked_partial = archive.comment.startswith(PARTIAL_COMMENT_PREFIX)
    if marked_partial and not allow_partial:
        raise UserError(f"{path}: is marked as a partial submission (zip comment); use --allow-partial to check it")
    if checked.partial and PARTIAL_WORD not in path.name:
        raise UserError(f"{path}: holds a partial submission ({checked.total} of {sum(PROBLEM_COUNTS.values())} "
                        f"problems) but its name does not say '{PARTIAL_WORD}'")
    return checked
