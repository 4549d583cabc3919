"""Polling for the tests that wait on real Slurm jobs and processes (state lags: never trust one read)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout_s: float, interval_s: float = 0.5, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)
