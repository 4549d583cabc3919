"""The state store's SQLite schema (version 2: rows keyed without the run name, paths relative)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mft_hpc.rundir.states import STAGES, STATES

SCHEMA_VERSION = 2
ELEMENTS_TABLE = f"""
CREATE TABLE IF NOT EXISTS elements (
    id            INTEGER PRIMARY KEY,
    stage         TEXT NOT NULL CHECK (stage IN ({", ".join(repr(s) for s in STAGES)})),
    member        TEXT NOT NULL,
    task          TEXT NOT NULL DEFAULT '',     -- '' for train/collect elements
    element       INTEGER NOT NULL DEFAULT 0,   -- shard number within (stage, member, task)
    slurm_job_id  TEXT,                         -- latest attempt, e.g. '123_4' (local executor: the pid)
    state         TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    attempts      INTEGER NOT NULL DEFAULT 0,
    submitted_at  REAL,
    started_at    REAL,
    ended_at      REAL,
    log_path      TEXT,                         -- relative to the run directory when inside it
    output_path   TEXT,                         -- idem
    last_error    TEXT,
    updated_at    REAL NOT NULL,
    process_host  TEXT,                         -- local executor: host and start time (clock ticks
    process_start INTEGER,                      -- since boot) of the job's process: a reused pid is not it
    UNIQUE (stage, member, task, element)
);
"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
""" + ELEMENTS_TABLE + """
CREATE INDEX IF NOT EXISTS elements_by_slurm_id ON elements (slurm_job_id);
CREATE INDEX IF NOT EXISTS elements_by_state ON elements (state);
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


def migrate_v1(conn: sqlite3.Connection, columns: list[str]) -> None:
    """Schema 1 keyed rows by run name and stored absolute paths: keep each key's latest row,
    paths made relative to the run directory they were written in (``columns``: those schema 1 had)."""
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = conn.execute("SELECT * FROM elements ORDER BY updated_at").fetchall()
        latest = {(row["stage"], row["member"], row["task"], row["element"]): row for row in old}
        conn.execute("ALTER TABLE elements RENAME TO elements_v1")
        conn.execute(ELEMENTS_TABLE)
        for row in latest.values():
            values = {c: row[c] for c in columns}
            for column in ("log_path", "output_path"):
                values[column] = relative_to_old_run(values[column], row["run"])
            conn.execute(f"INSERT INTO elements ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         [values[c] for c in columns])
        conn.execute("DELETE FROM attempts WHERE element_id NOT IN (SELECT id FROM elements)")
        conn.execute("DROP TABLE elements_v1")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def relative_to_old_run(path: str | None, run_name: str) -> str | None:
    """An absolute path written by schema 1 inside the run directory named ``run_name``: relative to it."""
    if not path or not Path(path).is_absolute():
        return path
    parts = Path(path).parts
    for index in range(len(parts) - 1, 0, -1):
        if parts[index] == run_name:
            return str(Path(*parts[index + 1:])) if index + 1 < len(parts) else path
    return path
