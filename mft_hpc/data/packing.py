"""Best-fit-decreasing bin packing of sample lengths into rows of ``capacity`` tokens."""

from __future__ import annotations

import bisect

import numpy as np


def best_fit_decreasing(lengths: np.ndarray, capacity: int) -> list[np.ndarray]:
    """Rows of sample indices; each row's lengths sum to <= capacity (every length must fit).

    Samples are placed longest first into the open row with the least room that still fits
    (a sorted list of (room, row) keeps that lookup at O(log n)).
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    rows: list[list[int]] = []
    rooms: list[tuple[int, int]] = []  # sorted (room left, row index)
    for index in order.tolist():
        length = int(lengths[index])
        if length > capacity:
            raise ValueError(f"sample {index} has {length} tokens, more than the row capacity {capacity}")
        pos = bisect.bisect_left(rooms, (length, -1))
        if pos < len(rooms):
            room, row = rooms.pop(pos)
            rows[row].append(index)
            room -= length
        else:
            row, room = len(rows), capacity - length
            rows.append([index])
        if room > 0:
            bisect.insort(rooms, (room, row))
    return [np.asarray(row, dtype=np.int64) for row in rows]


def efficiency(total_tokens: int, n_rows: int, capacity: int) -> float:
    """Real tokens over row slots: 1.0 means no padding at all."""
    return total_tokens / (n_rows * capacity) if n_rows else 0.0
