"""Preemption/timeout -> checkpoint + requeue through submitit's Checkpointable.

A stage subclasses ResumableTask, keeps its progress with ``save_progress`` as it goes (atomic
JSON next to its outputs) and starts from ``load_progress()``. When Slurm signals the job
(``--signal=USR2@90`` before the time limit, or preemption), submitit calls ``checkpoint``, which
resubmits this same callable, and requeues the job; the requeued run resumes from the file,
not from zero. Keeping progress in a file (rather than only in the pickled object) also lets a
rerun of a killed job resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

from mft_hpc.rundir import atomic_write_json


class ResumableTask(Checkpointable):
    def __init__(self, progress_path: str | Path) -> None:
        self.progress_path = Path(progress_path)

    def load_progress(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.progress_path.read_text())
        except FileNotFoundError:
            return None

    def save_progress(self, progress: dict[str, Any]) -> None:
        atomic_write_json(self.progress_path, progress)

    def on_checkpoint(self) -> None:
        """Hook: flush state that is not saved at every step (e.g. model weights)."""

    def checkpoint(self, *args: Any, **kwargs: Any):
        self.on_checkpoint()
        return super().checkpoint(*args, **kwargs)
