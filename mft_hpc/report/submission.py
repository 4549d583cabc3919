"""The submission zips of a run, re-checked the way ``mft-hpc pack --check`` checks any zip.

Collect records in the leaderboard's ``.done`` marker which members it packed and why others were
not packed; each zip in ``collect/`` is checked again here (a partial zip is accepted as partial).
"""

from __future__ import annotations

import json

from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir, done_marker
from mft_hpc.submission.check import check_zip


def submissions(run: RunDir) -> dict:
    marker = done_marker(run.leaderboard)
    packed, not_packed, notes = {}, {}, []
    if marker.is_file():
        try:
            info = json.loads(marker.read_text())
            packed, not_packed = dict(info.get("packed") or {}), dict(info.get("not_packed") or {})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError, ValueError) as err:
            notes.append(f"{marker}: unreadable ({err})")
    else:
        notes.append("collect has not finished: no submission packed yet")
    member_of = {path: member for member, path in packed.items()}
    zips = []
    for path in sorted(run.collect.glob("*.zip")) if run.collect.is_dir() else []:
        entry = {"path": str(path), "member": member_of.get(str(path)), "size_bytes": path.stat().st_size}
        try:
            checked = check_zip(path, allow_partial=True)
        except UserError as err:
            lines = [line for line in str(err).splitlines() if line != "submission refused:"]
            entry.update(valid=False, partial=None, error="; ".join(lines[:3]) + (" ..." if len(lines) > 3 else ""))
        else:
            entry.update(valid=True, partial=checked.partial, model=checked.model, programs=checked.total, error=None)
        zips.append(entry)
    if marker.is_file() and not zips:
        notes.append("no submission zip in collect/")
    return {"zips": zips, "not_packed": not_packed, "notes": notes}
