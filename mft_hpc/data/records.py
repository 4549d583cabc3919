"""Reading task files: discover one task per path, parse and validate every jsonl line.

A valid line becomes a ``Record`` holding a tuple of (role, content) turns with roles normalised to
``system``/``human``/``bot``. Every violation is collected as ``file:line: reason`` so that
`mft-hpc data check` can list them all at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mft_hpc.errors import UserError

ROLE_ALIASES = {"system": "system", "human": "human", "user": "human", "bot": "bot", "assistant": "bot"}

Turn = tuple[str, str]  # (role, content)


@dataclass(frozen=True)
class Task:
    name: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Record:
    """One valid line: where it came from and its turns."""

    file: Path
    line: int
    turns: tuple[Turn, ...]


@dataclass
class TaskRecords:
    task: Task
    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def discover_tasks(paths: list[str]) -> list[Task]:
    """Each path is a task: a directory (recursive ``*.jsonl``) or one ``.jsonl`` file."""
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files = tuple(sorted(p for p in path.rglob("*.jsonl") if p.is_file()))
            if not files:
                raise UserError(f"data path {raw}: directory holds no *.jsonl file")
            name = path.resolve().name
        elif path.is_file():
            if path.suffix != ".jsonl":
                raise UserError(f"data path {raw}: not a .jsonl file or a directory")
            files = (path,)
            name = path.stem
        else:
            raise UserError(f"data path {raw}: does not exist")
        if name in seen:
            raise UserError(f"data paths {seen[name]} and {raw}: both give task name {name!r}; "
                            "task names must be unique")
        seen[name] = raw
        tasks.append(Task(name=name, files=files))
    if not tasks:
        raise UserError("data.paths is empty: give at least one task directory or .jsonl file")
    return tasks


def _turns_from_chat_rounds(rounds: object) -> tuple[Turn, ...]:
    if not isinstance(rounds, list) or not rounds:
        raise ValueError("chat_rounds must be a non-empty list")
    turns: list[Turn] = []
    for index, item in enumerate(rounds):
        if not isinstance(item, dict):
            raise ValueError(f"chat_rounds[{index}]: not an object")
        role = item.get("role")
        if role is None:
            raise ValueError(f"chat_rounds[{index}]: missing role")
        if role not in ROLE_ALIASES:
            raise ValueError(f"chat_rounds[{index}]: unknown role {role!r} "
                             "(expected system, human/user, bot/assistant)")
        if "content" not in item:
            raise ValueError(f"chat_rounds[{index}]: missing content")
        content = item["content"]
        if not isinstance(content, str):
            raise ValueError(f"chat_rounds[{index}]: content must be a string, got {type(content).__name__}")
        turns.append((ROLE_ALIASES[role], content))
    return tuple(turns)


def _turns_from_prompt_answer(obj: dict) -> tuple[Turn, ...]:
    turns: list[Turn] = []
    for key in ("system", "prompt", "answer"):
        if key == "system" and key not in obj:
            continue
        if not isinstance(obj[key], str):
            raise ValueError(f"{key} must be a string, got {type(obj[key]).__name__}")
    if "system" in obj:
        turns.append(("system", obj["system"]))
    turns += [("human", obj["prompt"]), ("bot", obj["answer"])]
    return tuple(turns)


def check_order(turns: tuple[Turn, ...]) -> None:
    """Optional leading system turn, then human/bot alternating, ending with a bot turn."""
    body = turns[1:] if turns and turns[0][0] == "system" else turns
    if not any(role == "bot" for role, _ in body):
        raise ValueError("no bot turn")
    for index, (role, _) in enumerate(body):
        if role == "system":
            raise ValueError("system turn allowed only as the first turn")
        expected = "human" if index % 2 == 0 else "bot"
        if role != expected:
            raise ValueError(f"wrong order: turn {index + (len(turns) - len(body))} is {role}, expected {expected} "
                             "(turns must alternate human, bot)")
    if body[-1][0] != "bot":
        raise ValueError("wrong order: the last turn must be a bot turn")


def parse_line(text: str) -> tuple[Turn, ...]:
    """Turns of one jsonl line; raises ValueError with the reason."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"bad JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    if "prompt" in obj or "answer" in obj:
        missing = [key for key in ("prompt", "answer") if key not in obj]
        if missing:
            raise ValueError(f"missing {missing[0]} (prompt/answer records need both)")
        turns = _turns_from_prompt_answer(obj)
    elif "chat_rounds" in obj:
        turns = _turns_from_chat_rounds(obj["chat_rounds"])
    else:
        raise ValueError("neither chat_rounds nor prompt/answer")
    check_order(turns)
    return turns


def _parsed_lines(task: Task):
    """(file, line number, turns or None, the problem or None) for every non-blank line, one line in
    memory at a time (its raw bytes and text are dropped before the next step: a hostile line of
    many MB is held about twice, not four times)."""
    for file in task.files:
        with open(file, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    yield file, number, None, f"not UTF-8 ({err.reason} at byte {err.start})"
                    continue
                finally:
                    del raw
                if not text.strip():
                    continue
                try:
                    turns, problem = parse_line(text.rstrip("\r\n")), None
                except ValueError as err:
                    turns, problem = None, str(err)
                del text
                yield file, number, turns, problem


def task_errors(task: Task, keep: int) -> tuple[list[str], int]:
    """The first ``keep`` invalid lines of a task as ``file:line: reason``, and how many there are,
    without keeping the records (a preflight over the whole data set)."""
    errors, total = [], 0
    for file, number, _turns, problem in _parsed_lines(task):
        if problem is not None:
            total += 1
            if len(errors) < keep:
                errors.append(f"{file}:{number}: {problem}")
    return errors, total


def iter_task(task: Task):
    """Records and errors of a task, one line at a time (Record, or ``file:line: reason``)."""
    for file, number, turns, problem in _parsed_lines(task):
        yield Record(file=file, line=number, turns=turns) if problem is None else f"{file}:{number}: {problem}"


def read_task(task: Task) -> TaskRecords:
    """All valid records of a task plus one ``file:line: reason`` per invalid line (blank lines are skipped)."""
    out = TaskRecords(task=task)
    for item in iter_task(task):
        if isinstance(item, Record):
            out.records.append(item)
        else:
            out.errors.append(item)
    return out


def read_tasks(paths: list[str]) -> list[TaskRecords]:
    return [read_task(task) for task in discover_tasks(paths)]


