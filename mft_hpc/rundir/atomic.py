"""Atomic file writes: a partial file never looks finished (`.done` markers: mft_hpc.rundir.done).

Every stage writes through these helpers: data goes to a temporary file in the same
directory, is fsync'ed, then renamed over the target (rename is atomic on POSIX), and the
directory is fsync'ed so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


def _umask() -> int:
    """The process umask, read without changing it (os.umask can only set it, racing other threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                durable: bool = True) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on clean exit fsync it and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched. ``durable=False``
    skips the two fsyncs (the rename stays atomic for readers): for many files of which a durable
    copy is written elsewhere (a sweep's per-member config.yaml, see runplan/runfile.py).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file 0600; give it the mode open() would, so a run on a shared
        # filesystem stays readable by the group the user's umask allows
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        if durable:
            _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    with atomic_open(path, "w", durable=durable) as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any, **dump_kwargs: Any) -> None:
    with atomic_open(path, "w") as handle:
        json.dump(obj, handle, **dump_kwargs)
