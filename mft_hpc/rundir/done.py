"""`.done` markers that certify: a marker names what it vouches for and is checked against it.

``<path>.done`` is written last (atomically) and holds, besides the stage's own info, the size,
mtime and SHA-256 of the output (a directory: every file's size) and a digest of each input it was
made from. A marker only counts while it still matches:

- cheap check (``is_done``): the output exists with the certified size; a file whose mtime moved
  (a copied run) is re-hashed; inputs are compared the same way;
- deep check (``deep=True``): every certified file is re-hashed.

Markers written before certification existed (no ``certifies`` key) count when the output exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from mft_hpc.rundir.atomic import atomic_write_json

DONE_SUFFIX = ".done"
CERTIFIES, INPUTS = "certifies", "inputs"  # the marker keys this module owns
_CHUNK = 1 << 20


def done_marker(path: str | os.PathLike) -> Path:
    """The marker that says ``path`` (a file or directory) is complete: ``<path>.done``."""
    p = Path(path)
    return p.with_name(p.name + DONE_SUFFIX)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_facts(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256_of(path)}


def _dir_files(path: Path) -> dict[str, int]:
    """Every regular file below ``path`` (hidden temporaries excluded) -> its size."""
    files = {}
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if file.is_file() and not any(part.startswith(".") for part in rel.parts):
            files[str(rel)] = file.stat().st_size
    return files


def describe(path: Path) -> dict:
    """What a marker certifies about ``path``."""
    if path.is_dir():
        return {"kind": "dir", "files": _dir_files(path)}
    return {"kind": "file", **_file_facts(path)}


def mark_done(path: str | os.PathLike, info: dict | None = None,
              inputs: dict[str, str | os.PathLike] | None = None) -> None:
    """Write the `.done` marker last, atomically; ``info`` (counts, timings...) is kept in it.

    ``inputs`` (name -> file) are the files the output was made from: a later change to one of
    them makes the marker stale.
    """
    target = Path(path)
    certificate = dict(info or {})
    certificate[CERTIFIES] = describe(target) if target.exists() else None
    if inputs:
        certificate[INPUTS] = {name: _file_facts(Path(p)) for name, p in inputs.items()}
    atomic_write_json(done_marker(target), certificate)


def read_marker(path: str | os.PathLike) -> dict | None:
    """The marker's content; None when there is no marker; {} when it is unreadable."""
    marker = done_marker(path)
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError):
        return {"_unreadable": True}
    return data if isinstance(data, dict) else {"_unreadable": True}


def done_info(path: str | os.PathLike) -> dict:
    """The stage's own info in the marker (certification keys removed)."""
    data = read_marker(path) or {}
    return {k: v for k, v in data.items() if k not in (CERTIFIES, INPUTS, "_unreadable")}


def _file_problem(path: Path, facts: dict, what: str, deep: bool) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return f"{what} missing ({path.name})"
    if not path.is_file():
        return f"{what} is not a file ({path.name})"
    if stat.st_size != facts.get("size"):
        return f"{what} changed: {stat.st_size} bytes, certified {facts.get('size')} bytes ({path.name})"
    if deep or stat.st_mtime_ns != facts.get("mtime_ns"):
        if sha256_of(path) != facts.get("sha256"):
            return f"{what} changed since certified: content differs ({path.name})"
    return None


def _dir_problem(path: Path, files: dict, deep: bool) -> str | None:
    if not path.is_dir():
        return f"output missing ({path.name})"
    for rel, size in files.items():
        try:
            actual = (path / rel).stat().st_size
        except OSError:
            return f"output incomplete: {rel} missing ({path.name})"
        if actual != size:
            return f"output changed: {rel} is {actual} bytes, certified {size} bytes ({path.name})"
    return None


def done_problem(path: str | os.PathLike, inputs: dict[str, str | os.PathLike] | None = None,
                 deep: bool = False) -> str | None:
    """Why ``path`` does not count as finished (None when it does).

    ``inputs``: name -> the file the output must have been made from now; an input the marker
    recorded under that name must still match (an input the marker did not record is not checked).
    """
    target = Path(path)
    marker = read_marker(target)
    if marker is None:
        return "not finished (no .done marker)"
    if marker.get("_unreadable"):
        return "its .done marker is unreadable"
    certified = marker.get(CERTIFIES, "legacy")
    if certified == "legacy" or certified is None:
        if certified is None or target.exists():
            return None
        return f"output missing ({target.name})"
    if certified.get("kind") == "dir":
        problem = _dir_problem(target, certified.get("files", {}), deep)
    else:
        problem = _file_problem(target, certified, "output", deep)
    if problem:
        return problem
    recorded = marker.get(INPUTS) or {}
    for name, current in (inputs or {}).items():
        if name in recorded:
            problem = _file_problem(Path(current), recorded[name], f"input {name}", deep)
            if problem:
                return f"made from other inputs: {problem}"
    return None


def is_done(path: str | os.PathLike, inputs: dict[str, str | os.PathLike] | None = None, deep: bool = False) -> bool:
    """True when ``path`` has a marker that still matches its output (and ``inputs``)."""
    return done_problem(path, inputs, deep) is None


def has_marker(path: str | os.PathLike) -> bool:
    return done_marker(path).exists()


def clear_done(path: str | os.PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        done_marker(path).unlink()
