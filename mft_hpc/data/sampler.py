"""Which rows each rank reads in an epoch: a seeded permutation, sliced disjointly across ranks.

Sampling is proportional to task size (a plain permutation of all rows) or follows explicit task
weights (each task gets a weight-proportional share of the epoch, its rows cycled or
subsampled). The order depends only on (seed, epoch), so every rank computes the same one and
takes every ``world_size``-th row; an epoch can be resumed at any step.
"""

from __future__ import annotations

import numpy as np

from mft_hpc.errors import UserError


def _weights_vector(task_weights, task_names: list[str]) -> np.ndarray:
    if isinstance(task_weights, dict):
        unknown = sorted(set(task_weights) - set(task_names))
        if unknown:
            raise UserError(f"data.task_weights: unknown task {unknown[0]!r}; tasks are {', '.join(task_names)}")
        missing = [name for name in task_names if name not in task_weights]
        if missing:
            raise UserError(f"data.task_weights: no weight for task {missing[0]!r}")
        weights = [task_weights[name] for name in task_names]
    else:
        weights = list(task_weights)
        if len(weights) != len(task_names):
            raise UserError(f"task_weights has {len(weights)} values for {len(task_names)} tasks")
    vector = np.asarray(weights, dtype=np.float64)
    if (vector < 0).any() or vector.sum() <= 0:
        raise UserError("task_weights must be >= 0 with a positive sum")
    return vector


def epoch_order(row_task: np.ndarray, task_names: list[str], epoch: int, seed: int,
                task_weights=None, shuffle: bool = True) -> np.ndarray:
    """Row indices of one epoch (all ranks together)."""
    n_rows = len(row_task)
    if not shuffle:
        return np.arange(n_rows)
    rng = np.random.default_rng([seed, epoch, 0x5A17])
    if not task_weights:
        return rng.permutation(n_rows)
    weights = _weights_vector(task_weights, task_names)
    present = np.bincount(row_task, minlength=len(task_names)) > 0
    weights = np.where(present, weights, 0.0)
    quota = np.floor(n_rows * weights / weights.sum()).astype(np.int64)
    parts = []
    for task_id in np.flatnonzero(quota):
        rows = np.flatnonzero(row_task == task_id)
        repeats = -(-quota[task_id] // len(rows))
        cycled = np.concatenate([rng.permutation(rows) for _ in range(repeats)])
        parts.append(cycled[: quota[task_id]])
    return rng.permutation(np.concatenate(parts))


def rank_rows(order: np.ndarray, rank: int, world_size: int, drop_uneven: bool = True) -> np.ndarray:
    """This rank's rows: every ``world_size``-th; the tail is cut so ranks get equal counts (disjoint)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    if drop_uneven and len(order) >= world_size:
        order = order[: len(order) // world_size * world_size]
    return order[rank::world_size]
