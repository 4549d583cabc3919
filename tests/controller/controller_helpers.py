"""Helpers for the controller tests: configs on the tiny model, training data, waiting on a run's state."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def write_chat_data(folder: Path, n: int = 16) -> list[str]:
    """One small ChatML task (``chat_rounds``) with learnable answers; the ``data.paths`` value."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"chat_rounds": [
        {"role": "human", "content": f"Write a function that adds {i} to x."},
        {"role": "bot", "content": f"def add_{i}(x):\n    return x + {i}\n"}]}) for i in range(n)]
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    return [str(folder)]


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
