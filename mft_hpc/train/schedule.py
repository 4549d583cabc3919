"""Learning rate as a pure function of the optimizer step: linear warmup, cosine to a min_lr floor.

Stateless, so a resumed run gets exactly the same lr; the loop sets it once per optimizer step.
"""

from __future__ import annotations

import math


def lr_at(step: int, *, peak: float, min_lr: float, warmup: int, total: int) -> float:
    """The lr of optimizer step ``step`` (0-based) of ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + (peak - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
