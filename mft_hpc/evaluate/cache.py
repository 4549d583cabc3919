"""Content-addressed verdict cache: a program judged once is not judged again.

A verdict depends on the problem (task, index), the exact program text after assembly, the test
code, the sandbox (image identity, the worker's code and toolchains as its probe reports them,
the runtime) and the limits (per-program timeouts, the sandbox's memory/pids limits). The cache
key is the SHA-256 of all of these; the value is the verdict, its reason and seconds.

Layout (one immutable JSON file per verdict, no database, no locks):

    <cache dir>/v1/<first two hex digits>/<key digest>.json

Safe for many concurrent writers on NFS-like shared filesystems: an entry is written to a unique
temporary file, fsync'ed, then ``link()``-ed to its final name, which fails if the name exists
(the first writer wins; a link whose reply was lost is recognised by the link count). Readers
only ever see complete entries. Every entry holds its full key, so a misplaced, truncated or
otherwise corrupt file is detected, reported as a warning and judged again — never trusted.

Flaky problems (known_broken.FLAKY) are stored with a ``flaky`` marker, and an entry whose
program is judged again with the other pass/fail outcome (two writers racing, or a
``--no-cache`` re-judgement) is rewritten with the marker and both verdicts: a flaky verdict is
never cached as a plain pass or fail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.evaluate.known_broken import FLAKY

log = logging.getLogger(__name__)

SCHEMA = 1
ENTRIES = f"v{SCHEMA}"
VERDICTS = ("pass", "fail", "compile_error", "timeout", "oom", "error")
# a verdict that says the evaluator failed (not the program) is never stored
EVALUATOR_ERROR = "evaluator error"
# temporary files older than this are left over from a writer that died: prune removes them
STALE_TEMP_S = 3600.0
IMAGE_SAMPLE_BYTES = 1 << 20


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def image_identity(image: str | None) -> str:
    """A cheap identity of an image file: its size, first and last MiB.

    A SIF starts with a header holding an id that is random per build, and its descriptor table;
    it ends with the squashfs inode and directory tables, which change with any file inside. A
    directory image (bwrap, an apptainer sandbox) is identified by the probe's fingerprint instead.
    """
    if not image:
        return "none"
    path = Path(image)
    if path.is_dir():
        return f"dir:{path.resolve()}"
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(IMAGE_SAMPLE_BYTES))
        handle.seek(max(0, size - IMAGE_SAMPLE_BYTES))
        digest.update(handle.read(IMAGE_SAMPLE_BYTES))
    return f"file:{digest.hexdigest()}"


def environment_of(runtime) -> dict:
    """Everything outside the program that decides its verdict (probes the runtime if needed)."""
    facts = runtime.probe()
    return {"runtime": runtime.name, "image": image_identity(runtime.image),
            "sandbox": facts.get("fingerprint", "unknown"), "limits": runtime.limits()}


def verdict_key(job: dict, environment: dict) -> dict:
    """The key of one job (a job_spec with its ``test`` code) in ``environment``."""
    return {"schema": SCHEMA, "task": job["task"], "problem": job["index"], "lang": job["lang"],
            "program": _sha256(job["source"]), "test": _sha256(job.get("test", "")),
            "timeout": job["timeout"], "compile_timeout": job["compile_timeout"], "environment": environment}


def key_digest(key: dict) -> str:
    return _sha256(json.dumps(key, sort_keys=True, separators=(",", ":")))


def cacheable(record: dict) -> bool:
    return record.get("verdict") in VERDICTS and not str(record.get("reason", "")).startswith(EVALUATOR_ERROR)


@dataclass(frozen=True)
class Entry:
    verdict: str
    reason: str
    seconds: float
    flaky: str | None


class VerdictCache:
    """One cache directory (see the module docstring); every method is safe to call concurrently."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.write_failures = 0     # a read-only or full cache warns once, not once per verdict

    def path(self, digest: str) -> Path:
        return self.root / ENTRIES / digest[:2] / f"{digest}.json"

    # -- reading ---------------------------------------------------------------------------------

    def get(self, key: dict) -> Entry | None:
        """The stored verdict for ``key``; None when absent, or (with a warning) unreadable/corrupt."""
        path = self.path(key_digest(key))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("%s: unreadable verdict cache entry (%s); judging the program again", path, err)
            return None
        return self._parse(path, data, key)

    @staticmethod
    def _parse(path: Path, data: bytes, key: dict) -> Entry | None:
        problem = None
        try:
            entry = json.loads(data.decode("utf-8"))
            if not isinstance(entry, dict):
                problem = "not a JSON object"
            elif entry.get("key") != key:
                problem = "its key does not match its file name"
            elif entry.get("verdict") not in VERDICTS:
                problem = f"unknown verdict {entry.get('verdict')!r}"
            elif not isinstance(entry.get("reason"), str) or not isinstance(entry.get("seconds"), (int, float)):
                problem = "reason or seconds missing"
            elif entry.get("flaky") is not None and not isinstance(entry["flaky"], str):
                problem = "malformed flaky marker"
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            problem = f"not valid JSON: {err}"
        if problem:
            log.warning("%s: corrupt verdict cache entry (%s); ignored, judging the program again", path, problem)
            return None
        return Entry(entry["verdict"], entry["reason"], float(entry["seconds"]), entry.get("flaky"))

    # -- writing ---------------------------------------------------------------------------------

    def put(self, key: dict, record: dict) -> str | None:
        """Store a fresh verdict; returns the flaky marker the problem now carries (None: not flaky).

        Never raises for filesystem trouble: a cache that cannot be written only costs re-judging.
        """
        flaky = FLAKY.get((key["task"], key["problem"]))
        path = self.path(key_digest(key))
        entry = {"key": key, "verdict": record["verdict"], "reason": record.get("reason", ""),
                 "seconds": float(record.get("seconds", 0.0)), "flaky": flaky,
                 "seen": [record["verdict"]], "host": socket.gethostname(), "created": time.time()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if self._create(path, entry):
                return flaky
            try:
                existing_bytes = path.read_bytes()
            except OSError:
                existing_bytes = b""
            existing = self._parse(path, existing_bytes, key) if existing_bytes else None
            if existing is None:                        # corrupt or unreadable: replace it
                self._replace(path, entry)
                return flaky
            if existing.flaky is None and (existing.verdict == "pass") != (record["verdict"] == "pass"):
                flaky = f"verdict disagreement: {existing.verdict} vs {record['verdict']}"
                log.warning("%s/%s: judged %s, the cache holds %s; marked flaky", key["task"], key["problem"],
                            record["verdict"], existing.verdict)
                self._replace(path, {**entry, "flaky": flaky, "seen": [existing.verdict, record["verdict"]]})
            return existing.flaky or flaky
        except OSError as err:
            self.write_failures += 1
            if self.write_failures == 1:
                log.warning("%s: cannot write verdict cache entry (%s); continuing without storing verdicts "
                            "(further failures are not reported)", path, err)
            return flaky

    def _temp(self, path: Path, entry: dict) -> Path:
        tmp = path.with_name(f".{path.stem}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "x", encoding="utf-8") as handle:
            json.dump(entry, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    def _create(self, path: Path, entry: dict) -> bool:
        """Create ``path`` atomically unless it exists (link(2): atomic and exclusive on NFS too)."""
        tmp = self._temp(path, entry)
        try:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError:
                # NFS: the link may have been made although its reply was lost
                if os.stat(tmp).st_nlink != 2:
                    raise
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _replace(self, path: Path, entry: dict) -> None:
        tmp = self._temp(path, entry)
        try:
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    # -- maintenance -----------------------------------------------------------------------------

    def _files(self):
        base = self.root / ENTRIES
        if not base.is_dir():
            return
        for folder in sorted(base.iterdir()):
            if folder.is_dir():
                yield from folder.iterdir()

    def size(self) -> dict:
        """Entries, their bytes, and leftover temporary files."""
        entries = total = temps = 0
        for path in self._files():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.name.endswith(".tmp"):
                temps += 1
            else:
                entries += 1
                total += stat.st_size
        return {"entries": entries, "bytes": total, "temporary_files": temps}

    def prune(self, older_than_s: float | None = None, max_bytes: int | None = None,
              now: float | None = None) -> dict:
        """Remove entries older than ``older_than_s``, then the oldest until at most ``max_bytes``
        remain; stale temporary files always. Returns counts of what was removed."""
        now = time.time() if now is None else now
        kept, removed, freed = [], 0, 0
        for path in self._files():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            age = now - stat.st_mtime
            stale_temp = path.name.endswith(".tmp") and age > STALE_TEMP_S
            too_old = not path.name.endswith(".tmp") and older_than_s is not None and age > older_than_s
            if stale_temp or too_old:
                path.unlink(missing_ok=True)
                removed, freed = removed + 1, freed + stat.st_size
            elif not path.name.endswith(".tmp"):
                kept.append((stat.st_mtime, stat.st_size, path))
        if max_bytes is not None:
            total = sum(size for _, size, _ in kept)
            for _, size, path in sorted(kept):
                if total <= max_bytes:
                    break
                path.unlink(missing_ok=True)
                total, removed, freed = total - size, removed + 1, freed + size
        return {"removed": removed, "bytes_freed": freed}
