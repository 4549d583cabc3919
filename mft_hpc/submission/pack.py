"""Pack a generations folder into the zip the competition platform takes, and re-check the result.

The zip holds ``generations_{model}/`` and its 13 files, nothing else (no ``.done`` markers, no
metadata): entries are sorted and timestamped 1980-01-01 so the same generations give the same bytes.
A partial run (generate.limit) packs only with ``allow_partial``: the file name then says ``partial``
and the zip comment marks it, so ``pack --check`` refuses it unless asked to accept partial zips.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.rundir import atomic_open
from mft_hpc.submission.check import (
    PARTIAL_COMMENT_PREFIX,
    PARTIAL_WORD,
    CheckedSubmission,
    check_files,
    check_zip,
)
from mft_hpc.submission.source import PackSource, resolve_source

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Packed:
    path: Path
    checked: CheckedSubmission
    source: PackSource


def candidate_names(folder: Path) -> list[str]:
    """Files that belong in the submission: ``generations_*.json`` (markers, temp and meta files excluded)."""
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.name.startswith("generations_") and p.name.endswith(".json"))


def partial_name(out: Path) -> Path:
    if PARTIAL_WORD in out.name:
        return out
    return out.with_name(f"{out.stem}-{PARTIAL_WORD}{out.suffix or '.zip'}")


def default_out(source: PackSource, run_collect_dir: Path | None) -> Path:
    name = f"{source.folder.name}.zip"
    return (run_collect_dir / name) if run_collect_dir is not None else Path(name)


def pack(source: PackSource, out: Path, allow_partial: bool = False) -> Packed:
    names = candidate_names(source.folder)
    checked = check_files(str(source.folder), source.model, names,
                          lambda name: (source.folder / name).read_bytes(),
                          allow_partial=allow_partial, limit=source.limit)
    if checked.partial:
        out = partial_name(out)
    folder = source.folder.name
    with atomic_open(out, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        directory = zipfile.ZipInfo(f"{folder}/", _FIXED_TIME)
        directory.external_attr = 0o40755 << 16
        archive.writestr(directory, b"")
        for name in names:
            info = zipfile.ZipInfo(f"{folder}/{name}", _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, (source.folder / name).read_bytes())
        if checked.partial:
            archive.comment = PARTIAL_COMMENT_PREFIX + f": limit={source.limit}".encode()
    # Check what was written, the way anyone else's zip is checked.
    return Packed(out, check_zip(out, allow_partial=checked.partial), source)


def pack_run(run: str | Path, member: str | None = None, allow_partial: bool = False,
             out: Path | None = None) -> Packed:
    """Pack one member of a run into ``<run>/collect/generations_{model}.zip`` (the collect stage's call)."""
    source = resolve_source(run, member=member)
    return pack(source, out or default_out(source, Path(run) / "collect"), allow_partial=allow_partial)
