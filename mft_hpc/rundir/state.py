"""The run-state store: one SQLite file (runs/<name>/state.sqlite) recording every job element.

An *element* is one unit of work of a stage (a training member, one task or shard of generation or
evaluation, a collect job), identified by (stage, member, task, element). Each submission of it is an
*attempt*; the element row carries the latest Slurm job id (``123`` or ``123_4`` for array elements),
its state, timestamps, log/output paths (relative to the run directory) and the last error line.
The controller writes it; the dashboard and ``mft-hpc logs`` open it read-only. WAL mode lets both
work at once; a corrupt file is reported in one line (``mft-hpc repair`` rebuilds it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence
from urllib.parse import quote

from mft_hpc.rundir.state_schema import SCHEMA, SCHEMA_VERSION, migrate_v1, relative_to_old_run
from mft_hpc.rundir.states import (  # noqa: F401 - the vocabulary, for the store's users
    CANCELLED, COLLECT_MEMBER, COMPLETED, FAILED, FAILED_STATES, PENDING, PLANNED, RUNNING, SKIPPED, STAGES, STATES,
    TERMINAL_STATES, TIMEOUT, Attempt, Element, ElementSpec, LocalProcess, StateBusy, StateChange, StateUnreadable,
    from_slurm_state, last_line)


log = logging.getLogger(__name__)

_ELEMENT_COLUMNS = tuple(f.name for f in fields(Element) if f.name != "run")
_KEY_COLUMNS = ("stage", "member", "task", "element")
_PATH_INDEXES = (_ELEMENT_COLUMNS.index("log_path"), _ELEMENT_COLUMNS.index("output_path"))

def _check_state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}")
    return state



def _is_busy(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


class StateStore:
    """A connection to one run's state file; use as a context manager or call ``close()``.

    Rows are keyed by (stage, member, task, element) and paths inside the run directory are
    stored relative to it, so a copied, moved or renamed run reads its own files. Writers take
    the lock up front and, while another process holds it, retry for ``lock_wait_s`` saying so
    on stderr; readers (``open_reader``) never write and never wait behind a writer (WAL).
    A corrupt file raises StateUnreadable (one line, naming `mft-hpc repair`).
    """

    def __init__(self, path: str | Path, run: str | None = None, timeout_s: float = 2.0,
                 lock_wait_s: float = 300.0, on_wait: Callable[[str], None] | None = log.warning,
                 read_only: bool = False):
        self.path = Path(path)
        self.root = self.path.parent.resolve()
        self.run = run or self.root.name  # a display name only: rows do not depend on it
        self.read_only = read_only
        self._lock_wait_s = lock_wait_s
        self._on_wait = on_wait
        with self._guard():
            if read_only:
                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        try:
            if read_only:
                with self._guard():
                    self._columns = self._table_columns()
            else:
                self._retrying(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
                # WAL + NORMAL: every commit atomic and the file never corrupt; a power cut may lose the last ones
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._retrying(self._create_schema)
                self._conn.execute("PRAGMA foreign_keys = ON")
                self._columns = self._table_columns()
                self._identity = self._file_identity()
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open_reader(cls, path: str | Path, timeout_s: float = 2.0) -> "StateStore | None":
        """A read-only view (dashboard, logs); None where no state file exists (none is created)."""
        return cls(path, timeout_s=timeout_s, read_only=True) if Path(path).is_file() else None

    open_existing = open_reader

    # -- errors, locks, schema -------------------------------------------------------------------

    def unreadable(self, reason: object) -> StateUnreadable:
        run = self.path.parent
        return StateUnreadable(f"{self.path}: state store unreadable ({reason}); "
                               f"`mft-hpc repair {run}` rebuilds it from the run directory")

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as err:
            if _is_busy(err):
                raise StateBusy(f"{self.path}: locked by another process ({err}); "
                                "another mft-hpc command is writing this run: try again") from None
            raise self.unreadable(err) from None
        except sqlite3.DatabaseError as err:
            raise self.unreadable(err) from None

    def _retrying(self, action: Callable[[], object]):
        """Run ``action`` (one statement or transaction), retrying while another process holds the lock."""
        deadline = time.monotonic() + self._lock_wait_s
        said_at = None
        while True:
            try:
                with self._guard():
                    return action()
            except StateBusy:
                now = time.monotonic()
                if now >= deadline:
                    raise StateBusy(f"{self.path}: still locked by another process after "
                                    f"{self._lock_wait_s:.0f} s; is another mft-hpc command running on this run?") from None
                if self._on_wait and (said_at is None or now - said_at >= 30):
                    self._on_wait(f"{self.path}: locked by another process; waiting "
                                  f"(up to {max(0.0, deadline - now):.0f} s more)")
                    said_at = now
                time.sleep(0.2)

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def check_same_file(self) -> None:
        """A writer's file must still be the one at ``path``: writes to a replaced or deleted store
        would go nowhere anyone reads."""
        if self._file_identity() != self._identity:
            raise StateUnreadable(f"{self.path}: replaced or deleted while this command was writing it; "
                                  f"`mft-hpc repair {self.path.parent}` rebuilds it from the run directory")

    def _table_columns(self) -> set[str]:
        return {row["name"] for row in self._conn.execute("PRAGMA table_info(elements)")}

    def _create_schema(self) -> None:
        columns = self._table_columns()
        if "process_start" in columns:  # current schema: opening writes nothing (no lock taken)
            return
        if columns and "run" in columns:
            migrate_v1(self._conn, [c for c in _ELEMENT_COLUMNS if c not in ("process_host", "process_start")])
        # executescript commits on its own; the statements are idempotent (IF NOT EXISTS).
        self._conn.executescript(SCHEMA)
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _transaction(self):
        return _Transaction(self)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- paths -----------------------------------------------------------------------------------

    @property
    def _prefix(self) -> str:
        return str(self.root) + os.sep

    def _stored_path(self, path: str | None) -> str | None:
        """Paths inside the run directory are stored relative to it."""
        if not path:
            return path
        if path.startswith(self._prefix):  # the common case, without pathlib (27,000 of them in a large sweep)
            return path[len(self._prefix):]
        candidate = Path(path)
        if not candidate.is_absolute():
            return str(candidate)
        for absolute in (candidate, candidate.resolve()):
            try:
                return str(absolute.relative_to(self.root))
            except ValueError:
                continue
        return str(candidate)

    def _real_path(self, stored: str | None) -> str | None:
        if not stored or os.path.isabs(stored):
            return stored
        return self._prefix + stored

    @property
    def _schema_1(self) -> bool:
        return "run" in self._columns

    def _element(self, row: sqlite3.Row) -> Element:
        # _select lists every column in _ELEMENT_COLUMNS order: positional, no dict per row (27,000 rows
        # in a large sweep's refresh)
        values = list(row[:len(_ELEMENT_COLUMNS)])
        if self._schema_1:  # a schema-1 file opened read-only
            for index in _PATH_INDEXES:
                values[index] = relative_to_old_run(values[index], row["run"])
        for index in _PATH_INDEXES:
            values[index] = self._real_path(values[index])
        return Element(values[0], self.run, *values[1:])

    # -- writing ---------------------------------------------------------------------------

    def add_elements(self, specs: Iterable[ElementSpec], state: str = PLANNED) -> list[int]:
        """Insert planned elements (existing ones are kept as they are); return their ids in order."""
        _check_state(state)
        specs = list(specs)
        for spec in specs:
            if spec.stage not in STAGES:
                raise ValueError(f"unknown stage {spec.stage!r}; expected one of {STAGES}")
        now = time.time()
        with self._transaction():
            self._conn.executemany(
                "INSERT OR IGNORE INTO elements (stage, member, task, element, state, log_path,"
                " output_path, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(spec.stage, spec.member, spec.task, spec.element, state, self._stored_path(spec.log_path),
                  self._stored_path(spec.output_path), now) for spec in specs])
        ids = self.ids()
        return [ids[(spec.stage, spec.member, spec.task, spec.element)] for spec in specs]

    def record_attempts(self, attempts: Iterable[tuple[int, str, str | None]], at: float | None = None) -> None:
        """Many submissions at once, ``(element id, Slurm job id, log path)`` each, in one transaction:
        what ``record_attempt`` does per element, for a whole array."""
        at = time.time() if at is None else at
        rows = [(job_id, PENDING, at, self._stored_path(log_path), at, element_id)
                for element_id, job_id, log_path in attempts]
        if not rows:
            return
        with self._transaction():
            self._conn.executemany(
                "UPDATE elements SET slurm_job_id=?, state=?, attempts=attempts + 1, submitted_at=?, started_at=NULL,"
                " ended_at=NULL, last_error=NULL, log_path=COALESCE(?, log_path), updated_at=?,"
                " process_host=NULL, process_start=NULL WHERE id=?", rows)
            self._conn.executemany(
                "INSERT INTO attempts (element_id, attempt, slurm_job_id, submitted_at, state)"
                " SELECT id, attempts, slurm_job_id, submitted_at, state FROM elements WHERE id=?",
                [(row[-1],) for row in rows])

    def set_meta(self, key: str, value: str | None) -> None:
        """A run-level fact (e.g. how the run is cut into submission waves); None deletes it."""
        with self._transaction():
            if value is None:
                self._conn.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def record_attempt(self, element_id: int, slurm_job_id: str, log_path: str | None = None,
                       at: float | None = None, process: LocalProcess | None = None) -> int:
        """A new submission of an element: bump ``attempts``, reset it to pending; return the attempt number."""
        at = time.time() if at is None else at
        with self._transaction():
            row = self._conn.execute("SELECT attempts FROM elements WHERE id=?", (element_id,)).fetchone()
            if row is None:
                raise KeyError(f"no element with id {element_id}")
            attempt = row["attempts"] + 1
            self._conn.execute(
                "UPDATE elements SET slurm_job_id=?, state=?, attempts=?, submitted_at=?, started_at=NULL,"
                " ended_at=NULL, last_error=NULL, log_path=COALESCE(?, log_path), updated_at=?,"
                " process_host=?, process_start=? WHERE id=?",
                (slurm_job_id, PENDING, attempt, at, self._stored_path(log_path), at,
                 process.host if process else None, process.start if process else None, element_id))
            self._conn.execute(
                "INSERT INTO attempts (element_id, attempt, slurm_job_id, submitted_at, state) VALUES (?, ?, ?, ?, ?)",
                (element_id, attempt, slurm_job_id, at, PENDING))
        return attempt

    def update_states(self, changes: Iterable[StateChange]) -> int:
        """Apply many state changes in one transaction; return how many elements changed.

        ``started_at`` is set the first time an element is seen running (or ends without having been
        seen running), ``ended_at`` when it reaches a terminal state; the latest attempt row follows.
        """
        changes = list(changes)
        for change in changes:
            _check_state(change.state)
        changed = 0
        with self._transaction():
            for change in changes:
                at = time.time() if change.at is None else change.at
                column = "id" if isinstance(change.key, int) else "slurm_job_id"
                rows = self._conn.execute(
                    f"SELECT id, state, attempts FROM elements WHERE {column}=?", (change.key,)).fetchall()
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

    def restore_element(self, element: Element, attempts: Sequence[Attempt] = ()) -> int:
        """Write an element as found elsewhere (``mft-hpc repair``): its row and attempt history."""
        values = {c: getattr(element, c) for c in _ELEMENT_COLUMNS if c != "id"}
        values["log_path"] = self._stored_path(values["log_path"])
        values["output_path"] = self._stored_path(values["output_path"])
        _check_state(values["state"])
        with self._transaction():
            self._conn.execute(
                f"INSERT INTO elements ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"
                f" ON CONFLICT (stage, member, task, element) DO UPDATE SET "
                + ", ".join(f"{c}=excluded.{c}" for c in values if c not in _KEY_COLUMNS), list(values.values()))
            element_id = self._conn.execute(
                "SELECT id FROM elements WHERE stage=? AND member=? AND task=? AND element=?",
                [values[c] for c in _KEY_COLUMNS]).fetchone()["id"]
            self._conn.execute("DELETE FROM attempts WHERE element_id=?", (element_id,))
            for attempt in attempts:
                self._conn.execute(
                    "INSERT INTO attempts (element_id, attempt, slurm_job_id, submitted_at, state, ended_at,"
                    " last_error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (element_id, attempt.attempt, attempt.slurm_job_id, attempt.submitted_at, attempt.state,
                     attempt.ended_at, attempt.last_error))
        return element_id

    # -- reading ---------------------------------------------------------------------------

    def _select(self, where: str = "", args: Sequence = ()) -> list[Element]:
        present = self._columns
        columns = ", ".join(c if c in present else f"NULL AS {c}" for c in _ELEMENT_COLUMNS)
        columns += ", run, updated_at AS _updated" if "run" in present else ""
        order = "CASE stage " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STAGES)) + " END"
        with self._guard():
            rows = self._conn.execute(f"SELECT {columns} FROM elements {where}"
                                      f" ORDER BY {order}, member, task, element, updated_at", args).fetchall()
        if "run" in present:  # schema 1 (read-only): one row per key, the latest
            latest = {tuple(row[c] for c in _KEY_COLUMNS): row for row in rows}
            rows = [row for row in rows if latest[tuple(row[c] for c in _KEY_COLUMNS)] is row]
        return [self._element(row) for row in rows]

    def elements(self, stage: str | None = None, member: str | None = None, task: str | None = None,
                 states: Sequence[str] | None = None) -> list[Element]:
        """Elements of this run, filtered; ordered by stage order, member, task, element."""
        where, args = [], []
        for column, value in (("stage", stage), ("member", member), ("task", task)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if states is not None:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
        return self._select(f"WHERE {' AND '.join(where)}" if where else "", args)

    def element(self, key: int | str) -> Element | None:
        """By id (int); or a string: latest Slurm job id (``123_4``), label (``generate/main/mbpp/0``), id."""
        if isinstance(key, int):
            return self._one("id=?", key)
        found = self._one("slurm_job_id=?", key)
        if found is None:
            found = self._by_label(key)
        if found is None and key.isdigit():
            found = self._one("id=?", int(key))
        return found

    def _one(self, where: str, value) -> Element | None:
        found = self._select(f"WHERE {where}", (value,))
        return found[0] if found else None

    def _by_label(self, label: str) -> Element | None:
        """``stage/member[/task]/element`` (``/0`` may be left out) through the key's unique index, not
        a scan of the run (member names have no ``/``)."""
        parts = label.split("/")
        if len(parts) < 2 or parts[0] not in STAGES:
            return None
        stage, member, rest = parts[0], parts[1], parts[2:]
        candidates = []
        if not rest:
            candidates.append(("", 0))
        elif len(rest) == 1:
            candidates += [("", int(rest[0]))] if rest[0].isdigit() else []
            candidates.append((rest[0], 0))
        elif len(rest) == 2 and rest[1].isdigit():
            candidates.append((rest[0], int(rest[1])))
        for task, element in candidates:
            found = self._select("WHERE stage=? AND member=? AND task=? AND element=?", (stage, member, task, element))
            if found:
                return found[-1]
        return None

    def members(self) -> list[str]:
        with self._guard():
            return [row[0] for row in self._conn.execute("SELECT DISTINCT member FROM elements ORDER BY member")]

    def ids(self) -> dict[tuple[str, str, str, int], int]:
        """{(stage, member, task, element): id} of every element: one query, for a whole submission."""
        with self._guard():
            rows = self._conn.execute("SELECT stage, member, task, element, id FROM elements").fetchall()
        return {tuple(row)[:4]: row[4] for row in rows}

    def counts(self) -> dict[tuple[str, str], int]:
        """{(stage, state): number of elements}: the aggregate view of a large sweep, one query."""
        with self._guard():
            rows = self._conn.execute("SELECT stage, state, COUNT(*) FROM elements GROUP BY stage, state").fetchall()
        return {(row[0], row[1]): row[2] for row in rows}

    def meta(self, key: str) -> str | None:
        with self._guard():
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row is not None else None

    def attempts(self, element_id: int) -> list[Attempt]:
        with self._guard():
            rows = self._conn.execute(
                "SELECT element_id, attempt, slurm_job_id, submitted_at, state, ended_at, last_error"
                " FROM attempts WHERE element_id=? ORDER BY attempt", (element_id,)).fetchall()
        return [Attempt(**dict(row)) for row in rows]

    def check_integrity(self) -> str | None:
        """SQLite's own check of every page: None when the file is sound, else the first problem."""
        with self._guard():
            result = self._conn.execute("PRAGMA quick_check").fetchone()[0]
        return None if result == "ok" else result


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT/ROLLBACK: writers take the lock up front (retrying while another
    process holds it), so no upgrade deadlock."""

    def __init__(self, store: StateStore):
        self._store = store

    def __enter__(self) -> None:
        if self._store.read_only:
            raise RuntimeError(f"{self._store.path} was opened read-only")
        self._store.check_same_file()
        self._store._retrying(lambda: self._store._conn.execute("BEGIN IMMEDIATE"))

    def __exit__(self, exc_type, exc, _tb) -> None:
        if exc_type is None:
            with self._store._guard():
                self._store._conn.execute("COMMIT")
            return
        with contextlib.suppress(sqlite3.Error):
            self._store._conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.DatabaseError):
            with self._store._guard():
                raise exc
