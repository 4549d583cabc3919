"""Which problems an array element generates: a task, or one shard of a task larger than shard_size."""

from __future__ import annotations

import math

from mft_hpc.tasks.names import PROBLEM_COUNTS
from mft_hpc.tasks.registry import check_task


def task_size(task: str, limit: int | None = None) -> int:
    """Problems a run generates for ``task`` without reading the data (load_problems checks these sizes)."""
    total = PROBLEM_COUNTS[check_task(task)]
    return total if limit is None else min(limit, total)


def n_shards(total: int, shard_size: int | None) -> int:
    """1 means "not sharded" (the element handles the whole task)."""
    if not shard_size or total <= shard_size:
        return 1
    return math.ceil(total / shard_size)


def shard_indices(total: int, shard_size: int | None, shard: int | None) -> range:
    if shard is None:
        return range(total)
    if n_shards(total, shard_size) == 1 or not 0 <= shard < n_shards(total, shard_size):
        raise ValueError(f"shard {shard} does not exist for {total} problems with shard_size={shard_size}")
    return range(shard * shard_size, min(total, (shard + 1) * shard_size))


def elements(task_sizes: dict[str, int], shard_size: int | None) -> list[tuple[str, int | None]]:
    """(task, shard) per array element, tasks in the given order."""
    out: list[tuple[str, int | None]] = []
    for task, total in task_sizes.items():
        count = n_shards(total, shard_size)
        out.extend([(task, None)] if count == 1 else [(task, k) for k in range(count)])
    return out


def pack(units: list, per_element: int) -> list[list]:
    """Consecutive units (tasks or shards) in groups of ``per_element``: one array element each."""
    return [units[start:start + per_element] for start in range(0, len(units), per_element)]
