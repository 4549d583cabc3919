from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mft_hpc.config.sections.base import Section


def parse_path_list(value: object) -> object:
    """Accept a YAML list or MFTCoder's bracketed string ``"[a,b]"``."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]
    return value


class DataSection(Section):
    paths: list[str] = Field(default_factory=list, description="one task per path (dir or .jsonl)")
    seq_length: int = Field(4096, ge=16, description="max tokens per sample and per packed row")
    mode: Literal["pack", "padding"] = "pack"
    valid_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="per task; >= 1 valid sample for tasks with >= 2")
    overlong: Literal["truncate", "drop"] = Field("truncate", description="samples longer than seq_length")
    skip_invalid: bool = Field(False, description="train on the valid lines and count the invalid ones")
    sampling: Literal["proportional", "weights"] = "proportional"
    task_weights: dict[str, float] = Field(default_factory=dict, description="task name -> weight (sampling: weights)")
    seed: int = Field(42, description="seeds the per-task train/valid split")

    _split_paths = field_validator("paths", mode="before")(parse_path_list)

    @field_validator("task_weights")
    @classmethod
    def _weights_non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        if any(weight < 0 for weight in value.values()):
            raise ValueError("task weights must be >= 0")
        return value

    @model_validator(mode="after")
    def _weights_given(self) -> "DataSection":
        if self.sampling == "weights" and not any(self.task_weights.values()):
            raise ValueError("sampling: weights needs task_weights (task name -> weight, some > 0)")
        return self
