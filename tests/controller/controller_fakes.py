"""Helpers for the controller tests: configs on the tiny model, waiting on a run's state."""

from __future__ import annotations

import time
from pathlib import Path

import yaml


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def wait_for_run(root: Path, deadline_s: float = 420.0, settled=lambda elements: True):
    """Refresh the run until no element is in flight (and ``settled``); return its elements."""
    from mft_hpc.controller.operations import refresh_run
    from mft_hpc.controller.refresh import in_flight

    end = time.monotonic() + deadline_s
    while True:
        elements = refresh_run(root)
        if not any(in_flight(e) for e in elements) and settled(elements):
            return elements
        if time.monotonic() > end:
            raise AssertionError("run did not settle: " + ", ".join(f"{e.label}={e.state}" for e in elements))
        time.sleep(2)
