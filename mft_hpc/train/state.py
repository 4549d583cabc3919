"""The trainer's own resumable state (saved as JSON in every checkpoint next to accelerate's state)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TrainerState:
    step: int = 0                  # optimizer steps done
    epoch: int = 0                 # data epoch being read
    batches_in_epoch: int = 0      # micro-batches of that epoch already read (data position)
    skipped_nonfinite: int = 0     # micro-batches whose loss was NaN/inf, never back-propagated
    tokens_seen: int = 0           # non-pad tokens of back-propagated micro-batches, all ranks
    best_eval: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False
    valid_history: list[list[float]] = field(default_factory=list)  # per eval: per-task valid loss
    task_weights: list[float] | None = None                          # current loss weights (CoBa)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainerState":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
