"""A Qwen-1 ``model.path`` is imported once into a cache keyed by its content, shared by everything.

The key is a hash of every file the conversion reads plus the converter's version, so every member,
stage and rerun (and every run under the same cache) finds the same native copy, and a changed
source or converter makes a new one. Concurrent imports of one source are safe: an exclusive lock
on ``<key>.lock`` lets one process convert while the others wait and then reuse its result, and the
directory only appears (renamed from a temporary name) when complete, with its ``.done`` marker.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from pathlib import Path

from mft_hpc.model.qwen1_import import CONVERTER_VERSION, Qwen1Source, import_qwen1, inspect_qwen1
from mft_hpc.rundir import is_done

log = logging.getLogger(__name__)
HASH_CHUNK = 8 << 20


def content_hash(source: Qwen1Source) -> str:
    """sha256 over the converter version and every (relative name, bytes) the conversion reads."""
    digest = hashlib.sha256(f"mft-hpc qwen1 import v{CONVERTER_VERSION}\0".encode())
    for path in source.files:
        digest.update(str(path.relative_to(source.path)).encode() + b"\0")
        with open(path, "rb", buffering=0) as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def cached_import_path(cache_dir: str | Path, source: Qwen1Source) -> tuple[Path, str]:
    """Where ``source``'s native copy lives in ``cache_dir``, and the content hash naming it."""
    key = content_hash(source)
    return Path(cache_dir).absolute() / f"qwen1-{key[:16]}", key


def import_cached(src: str | Path, cache_dir: str | Path) -> Path:
    """The native copy of the Qwen-1 checkpoint ``src`` in ``cache_dir``, converting it if no one has."""
    source = inspect_qwen1(src)
    dst, key = cached_import_path(cache_dir, source)
    if is_done(dst):
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst.with_name(dst.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process importing the same source: wait for it
        try:
            if not is_done(dst):
                log.info("importing Qwen-1 checkpoint %s into %s", src, dst)
                import_qwen1(src, dst, info={"content_sha256": key}, source=source)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return dst
