"""The run-state store: one SQLite file (runs/<name>/state.sqlite) recording every job element.

An *element* is one unit of work of a stage (a training member, one task or shard of generation or
evaluation, a collect job), identified by (stage, member, task, element). Each submission of it is an
*attempt*; the element row carries the latest Slurm job id (``123`` or ``123_4`` for array elements),
its state, timestamps, log/output paths and the last error line. The controller writes it, the
dashboard and ``mft-hpc logs`` only read it. WAL mode + a busy timeout let both work at once.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

STAGES = ("train", "generate", "evaluate", "collect")

# Our own states; Slurm states are mapped onto them by the controller (mft_hpc.slurm.job_states).
PLANNED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, SKIPPED = (
    "planned", "pending", "running", "completed", "failed", "cancelled", "timeout", "skipped")
STATES = (PLANNED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, SKIPPED)
TERMINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED, TIMEOUT, SKIPPED})
FAILED_STATES = frozenset({FAILED, CANCELLED, TIMEOUT})

SCHEMA_VERSION = 1
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS elements (
    id            INTEGER PRIMARY KEY,
    run           TEXT NOT NULL,
    stage         TEXT NOT NULL CHECK (stage IN ({", ".join(repr(s) for s in STAGES)})),
    member        TEXT NOT NULL,
    task          TEXT NOT NULL DEFAULT '',     -- '' for train/collect elements
    element       INTEGER NOT NULL DEFAULT 0,   -- shard number within (stage, member, task)
    slurm_job_id  TEXT,                         -- latest attempt, e.g. '123_4'
    state         TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    attempts      INTEGER NOT NULL DEFAULT 0,
    submitted_at  REAL,
    started_at    REAL,
    ended_at      REAL,
    log_path      TEXT,
    output_path   TEXT,
    last_error    TEXT,
    updated_at    REAL NOT NULL,
    UNIQUE (run, stage, member, task, element)
);
CREATE INDEX IF NOT EXISTS elements_by_slurm_id ON elements (slurm_job_id);
CREATE TABLE IF NOT EXISTS attempts (
    element_id    INTEGER NOT NULL REFERENCES elements (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL,
    slurm_job_id  TEXT,
    submitted_at  REAL NOT NULL,
    state         TEXT NOT NULL,
    ended_at      REAL,
    last_error    TEXT,
    PRIMARY KEY (element_id, attempt)
);
"""


@dataclass(frozen=True)
class Element:
    id: int
    run: str
    stage: str
    member: str
    task: str
    element: int
    slurm_job_id: str | None
    state: str
    attempts: int
    submitted_at: float | None
    started_at: float | None
    ended_at: float | None
    log_path: str | None
    output_path: str | None
    last_error: str | None
    updated_at: float

    @property
    def label(self) -> str:
        """``generate/main/mbpp/0``: how ``mft-hpc logs`` and the dashboard name an element."""
        parts = [self.stage, self.member] + ([self.task] if self.task else []) + [str(self.element)]
        return "/".join(parts)


@dataclass(frozen=True)
class Attempt:
    element_id: int
    attempt: int
    slurm_job_id: str | None
    submitted_at: float
    state: str
    ended_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class ElementSpec:
    """What the controller plans before submitting anything."""

    stage: str
    member: str
    task: str = ""
    element: int = 0
    log_path: str | None = None
    output_path: str | None = None


@dataclass(frozen=True)
class StateChange:
    """A state update for an element, found by its id or its latest Slurm job id."""

    key: int | str
    state: str
    last_error: str | None = None
    at: float | None = None  # when the change was observed; default now


# Slurm job states (squeue/sacct, see mft_hpc.slurm.job_states) -> ours
_FROM_SLURM = {
    PENDING: ("PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "RESV_DEL_HOLD", "SUSPENDED",
              "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"),
    RUNNING: ("RUNNING", "COMPLETING"),
    COMPLETED: ("COMPLETED",),
    TIMEOUT: ("TIMEOUT", "DEADLINE"),
    CANCELLED: ("CANCELLED", "PREEMPTED", "REVOKED"),
    FAILED: ("FAILED", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "SPECIAL_EXIT"),
}
_SLURM_TO_STATE = {slurm: ours for ours, names in _FROM_SLURM.items() for slurm in names}


def from_slurm_state(slurm_state: str) -> str | None:
    """Our state for a normalized Slurm state (``CANCELLED``, ``OUT_OF_MEMORY``...); None if unknown."""
    return _SLURM_TO_STATE.get(slurm_state.strip().upper())


_ELEMENT_COLUMNS = ", ".join(f.name for f in fields(Element))


def _check_state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}")
    return state


def last_line(text: str | None) -> str | None:
    """The last non-empty line of an error text: what the dashboard shows."""
    if not text:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


class StateStore:
    """A connection to one run's state file; use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path, run: str | None = None, timeout_s: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run = run or self.path.parent.name
        self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._create_schema()

    @classmethod
    def open_existing(cls, path: str | Path) -> "StateStore | None":
        """Readers (dashboard, logs) must not create a state file where none exists."""
        return cls(path) if Path(path).is_file() else None

    def _create_schema(self) -> None:
        # executescript commits on its own; the statements are idempotent (IF NOT EXISTS).
        self._conn.executescript(_SCHEMA)
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _transaction(self):
        return _Transaction(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def add_elements(self, specs: Iterable[ElementSpec], state: str = PLANNED) -> list[int]:
        """Insert planned elements (existing ones are kept as they are); return their ids in order."""
        _check_state(state)
        now = time.time()
        ids = []
        with self._transaction():
            for spec in specs:
                if spec.stage not in STAGES:
                    raise ValueError(f"unknown stage {spec.stage!r}; expected one of {STAGES}")
                self._conn.execute(
                    "INSERT OR IGNORE INTO elements (run, stage, member, task, element, state, log_path,"
                    " output_path, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self.run, spec.stage, spec.member, spec.task, spec.element, state,
                     spec.log_path, spec.output_path, now))
                row = self._conn.execute(
                    "SELECT id FROM elements WHERE run=? AND stage=? AND member=? AND task=? AND element=?",
                    (self.run, spec.stage, spec.member, spec.task, spec.element)).fetchone()
                ids.append(row["id"])
        return ids

    def record_attempt(self, element_id: int, slurm_job_id: str, log_path: str | None = None,
                       at: float | None = None) -> int:
        """A new submission of an element: bump ``attempts``, reset it to pending; return the attempt number."""
        at = time.time() if at is None else at
        with self._transaction():
            row = self._conn.execute("SELECT attempts FROM elements WHERE id=?", (element_id,)).fetchone()
            if row is None:
                raise KeyError(f"no element with id {element_id}")
            attempt = row["attempts"] + 1
            self._conn.execute(
                "UPDATE elements SET slurm_job_id=?, state=?, attempts=?, submitted_at=?, started_at=NULL,"
                " ended_at=NULL, last_error=NULL, log_path=COALESCE(?, log_path), updated_at=? WHERE id=?",
                (slurm_job_id, PENDING, attempt, at, log_path, at, element_id))
            self._conn.execute(
                "INSERT INTO attempts (element_id, attempt, slurm_job_id, submitted_at, state) VALUES (?, ?, ?, ?, ?)",
                (element_id, attempt, slurm_job_id, at, PENDING))
        return attempt

    def update_states(self, changes: Iterable[StateChange]) -> int:
        """Apply many state changes in one transaction; return how many elements changed.

        ``started_at`` is set the first time an element is seen running (or ends without having been
        seen running), ``ended_at`` when it reaches a terminal state; the latest attempt row follows.
        """
        changed = 0
        with self._transaction():
            for change in changes:
                _check_state(change.state)
                at = time.time() if change.at is None else change.at
                column = "id" if isinstance(change.key, int) else "slurm_job_id"
                rows = self._conn.execute(
                    f"SELECT id, state, attempts FROM elements WHERE {column}=? AND run=?",
                    (change.key, self.run)).fetchall()
                for row in rows:
                    terminal = change.state in TERMINAL_STATES
                    started = at if change.state == RUNNING or terminal else None
                    error = last_line(change.last_error)
                    cursor = self._conn.execute(
                        "UPDATE elements SET state=?, started_at=COALESCE(started_at, ?),"
                        " ended_at=CASE WHEN ? THEN COALESCE(ended_at, ?) ELSE NULL END,"
                        " last_error=COALESCE(?, last_error), updated_at=?"
                        " WHERE id=? AND (state != ? OR ? IS NOT NULL)",
                        (change.state, started, terminal, at, error, at, row["id"], change.state, error))
                    changed += cursor.rowcount
                    self._conn.execute(
                        "UPDATE attempts SET state=?, ended_at=CASE WHEN ? THEN COALESCE(ended_at, ?) ELSE NULL END,"
                        " last_error=COALESCE(?, last_error) WHERE element_id=? AND attempt=?",
                        (change.state, terminal, at, error, row["id"], row["attempts"]))
        return changed

    def set_paths(self, element_id: int, log_path: str | None = None, output_path: str | None = None) -> None:
        with self._transaction():
            self._conn.execute(
                "UPDATE elements SET log_path=COALESCE(?, log_path), output_path=COALESCE(?, output_path),"
                " updated_at=? WHERE id=?", (log_path, output_path, time.time(), element_id))

    # -- reading ---------------------------------------------------------------------------

    def elements(self, stage: str | None = None, member: str | None = None, task: str | None = None,
                 states: Sequence[str] | None = None) -> list[Element]:
        """Elements of this run, filtered; ordered by stage order, member, task, element."""
        where, args = ["run=?"], [self.run]
        for column, value in (("stage", stage), ("member", member), ("task", task)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if states is not None:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
        order = "CASE stage " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STAGES)) + " END"
        rows = self._conn.execute(
            f"SELECT {_ELEMENT_COLUMNS} FROM elements WHERE {' AND '.join(where)}"
            f" ORDER BY {order}, member, task, element", args).fetchall()
        return [Element(**dict(row)) for row in rows]

    def element(self, key: int | str) -> Element | None:
        """By id (int); or a string: latest Slurm job id (``123_4``), label (``generate/main/mbpp/0``), id."""
        if isinstance(key, int):
            return self._one("id=?", key)
        found = self._one("slurm_job_id=?", key)
        if found is None:
            found = next((e for e in self.elements() if e.label in (key, f"{key}/0")), None)
        if found is None and key.isdigit():
            found = self._one("id=?", int(key))
        return found

    def _one(self, where: str, value) -> Element | None:
        row = self._conn.execute(f"SELECT {_ELEMENT_COLUMNS} FROM elements WHERE {where} AND run=?",
                                 (value, self.run)).fetchone()
        return Element(**dict(row)) if row is not None else None

    def members(self) -> list[str]:
        rows = self._conn.execute("SELECT DISTINCT member FROM elements WHERE run=? ORDER BY member", (self.run,))
        return [row["member"] for row in rows]

    def attempts(self, element_id: int) -> list[Attempt]:
        rows = self._conn.execute(
            "SELECT element_id, attempt, slurm_job_id, submitted_at, state, ended_at, last_error"
            " FROM attempts WHERE element_id=? ORDER BY attempt", (element_id,)).fetchall()
        return [Attempt(**dict(row)) for row in rows]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT/ROLLBACK: writers take the lock up front, so no upgrade deadlock."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_exc) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
