"""A small progress file per array element for the dashboard: problems done/total and tok/s."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from mft_hpc.rundir import atomic_write_json


def progress_path(out_dir: str | Path, task: str, shard: int | None = None) -> Path:
    name = task if shard is None else f"{task}.shard-{shard:03d}"
    return Path(out_dir) / "progress" / f"{name}.json"


class Progress:
    def __init__(self, path: Path, task: str, shard: int | None, total: int, done: int):
        self.path, self.task, self.shard, self.total, self.done = path, task, shard, total, done
        self.tokens = 0
        self.started = time.monotonic()
        self.write("running")

    def add(self, n_tokens: int) -> None:
        self.done += 1
        self.tokens += n_tokens
        self.write("running")

    def write(self, state: str) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        atomic_write_json(self.path, {
            "task": self.task, "shard": self.shard, "state": state, "done": self.done, "total": self.total,
            "new_tokens": self.tokens, "tok_per_s": round(self.tokens / elapsed, 2), "elapsed_s": round(elapsed, 1),
            "updated": time.time(), "host": socket.gethostname(), "pid": os.getpid(),
        })
