"""CoBa-style dynamic task weights from the slopes of the per-task validation-loss history.

``history`` holds one row per evaluation: each task's validation loss divided by its first one.
Tasks whose loss still falls slowly or rises get more weight (relative convergence score); when the
total loss starts to go up, weight moves to the absolute convergence score (each task's slope
against its own slope history). Until ``window`` points exist the weights are uniform.
"""

from __future__ import annotations

import numpy as np


def _slope(points: np.ndarray) -> np.ndarray:
    """Least-squares slope of each column over the rows."""
    x = np.arange(len(points), dtype=float)
    x -= x.mean()
    return (x[:, None] * (points - points.mean(axis=0))).sum(axis=0) / (x**2).sum()


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def coba_weights(history: list[list[float]], window: int, temperature: float) -> list[float]:
    points = np.asarray(history, dtype=float)
    num_tasks = points.shape[1] if points.ndim == 2 else 0
    if num_tasks == 0 or len(points) < window:
        return [1.0] * max(num_tasks, 0)
    slopes = np.stack([_slope(points[end - window:end]) for end in range(window, len(points) + 1)])
    current = slopes[-1]
    rcs = _softmax(num_tasks * current / max(np.abs(current).sum(), 1e-12))
    acs = _softmax(-len(slopes) * current / np.maximum(np.abs(slopes).sum(axis=0), 1e-12))
    total = np.stack([_slope(points[end - window:end].max(axis=1, keepdims=True))[0]
                      for end in range(window, len(points) + 1)])
    divergence = min(1.0, len(total) * _softmax(-total / max(np.abs(total).sum(), 1e-12))[-1])
    weights = _softmax(temperature * (divergence * rcs + (1 - divergence) * acs))
    weights = np.maximum(weights, 1.0 / (10 * num_tasks))
    return (weights / weights.sum() * num_tasks).tolist()
