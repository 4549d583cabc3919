"""Per-task train/valid split: a seeded shuffle of the task's records, stable across other tasks.

The permutation depends only on (seed, task name, record count), so adding, removing or editing
another task never moves this task's samples between train and valid.
"""

from __future__ import annotations

import hashlib

import numpy as np


def valid_count(n_records: int, valid_ratio: float) -> int:
    """round(n * ratio), at least one for a task with >= 2 records (when ratio > 0), never all."""
    if valid_ratio <= 0 or n_records < 2:
        return 0
    return min(n_records - 1, max(1, round(n_records * valid_ratio)))


def task_rng(seed: int, task_name: str, purpose: str = "split") -> np.random.Generator:
    name_key = int.from_bytes(hashlib.sha256(f"{purpose}:{task_name}".encode()).digest()[:8], "little")
    return np.random.default_rng([seed, name_key])


def valid_record_mask(n_records: int, valid_ratio: float, seed: int, task_name: str) -> np.ndarray:
    """Bool[n_records]: True where the record (by its order in the task's files) goes to valid."""
    perm = task_rng(seed, task_name).permutation(n_records)
    mask = np.zeros(n_records, dtype=bool)
    mask[perm[: valid_count(n_records, valid_ratio)]] = True
    return mask
