"""Raw completions, one JSON line per problem, appended and fsync'ed as each problem finishes.

A job killed mid-write leaves at most one torn last line: readers ignore it and the writer cuts it
off before appending, so a resumed element regenerates exactly the problems not yet on disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mft_hpc.errors import UserError

RAW_KEYS = ("task", "index", "completion", "finish_reason", "n_tokens")


def raw_name(task: str, shard: int | None = None) -> str:
    return f"raw_{task}.jsonl" if shard is None else f"raw_{task}.shard-{shard:03d}.jsonl"


def raw_path(out_dir: str | Path, task: str, shard: int | None = None) -> Path:
    return Path(out_dir) / "raw" / raw_name(task, shard)


def _scan(path: Path) -> tuple[dict[int, dict], int]:
    """Records by index (first wins) and the byte length of the intact part of the file."""
    records: dict[int, dict] = {}
    data = path.read_bytes() if path.exists() else b""
    good = 0
    lines = data.split(b"\n")
    for lineno, line in enumerate(lines, 1):
        last = lineno == len(lines)
        if last and line == b"":
            break
        try:
            if last:
                raise ValueError("no newline: torn write")
            record = json.loads(line)
            if not isinstance(record, dict) or any(key not in record for key in RAW_KEYS):
                raise ValueError(f"expected an object with keys {', '.join(RAW_KEYS)}")
        except ValueError as err:
            if last:
                break  # a torn last line from a killed job: ignore
            raise UserError(f"{path}:{lineno}: bad raw completion line: {err}") from None
        records.setdefault(int(record["index"]), record)
        good += len(line) + 1
    return records, good


def read_raw(path: str | Path) -> dict[int, dict]:
    return _scan(Path(path))[0]


class RawWriter:
    """Appends one record per problem; on open, cuts a torn last line off."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records, good = _scan(self.path)
        if self.path.exists() and self.path.stat().st_size != good:
            os.truncate(self.path, good)
        self._handle = self.path.open("a", encoding="utf-8")

    def append(self, record: dict) -> None:
        self._handle.write(json.dumps({key: record[key] for key in RAW_KEYS}) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records.setdefault(int(record["index"]), record)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "RawWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
