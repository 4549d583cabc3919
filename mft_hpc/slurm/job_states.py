"""Parse `squeue` / `sacct` output into {job id: state}; pure functions, tested on recorded text.

Both commands are asked for ``JobID|State`` lines. Array elements come as ``123_4``; pending
elements are folded into ranges such as ``123_[5-9%4]`` or ``123_[1,3-4]``, which are expanded
here so every element id gets its own entry.
"""

from __future__ import annotations

import re

# "123_[5-9,11%4]" -> master 123, spec "5-9,11"; the %N throttle is dropped
_RANGE = re.compile(r"^(?P<master>\d+)_\[(?P<spec>[\d,\-]+)(?:%\d+)?\]$")


def expand_job_id(raw: str) -> list[str]:
    """``123`` -> [123]; ``123_4`` -> [123_4]; ``123_[1-3%2]`` -> [123_1, 123_2, 123_3]."""
    raw = raw.strip()
    match = _RANGE.match(raw)
    if not match:
        return [raw]
    ids: list[str] = []
    for part in match["spec"].split(","):
        low, _, high = part.partition("-")
        for index in range(int(low), int(high or low) + 1):
            ids.append(f"{match['master']}_{index}")
    return ids


def normalize_state(raw: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``COMPLETED+`` -> ``COMPLETED``."""
    words = raw.strip().split()
    return words[0].rstrip("+") if words else "UNKNOWN"


def parse_state_lines(text: str) -> dict[str, str]:
    """Lines ``JobID|State`` (squeue ``-h -o %i|%T``, sacct ``-n -P -X -o JobID,State``).

    Step rows (``123.batch``) are skipped; a later line for the same id wins, which matches
    sacct listing a requeued job's older records first.
    """
    states: dict[str, str] = {}
    for line in text.splitlines():
        if "|" not in line:
            continue
        raw_id, raw_state = line.split("|", 2)[:2]
        if not raw_id.strip() or "." in raw_id:
            continue
        state = normalize_state(raw_state)
        for job_id in expand_job_id(raw_id):
            states[job_id] = state
    return states


def master_id(job_id: str) -> str:
    """``123_4`` -> ``123``; ``123`` -> ``123``."""
    return job_id.split("_", 1)[0]
