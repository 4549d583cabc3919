from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

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
    seq_length: int = Field(4096, ge=16)
    mode: Literal["pack", "padding"] = "pack"
    valid_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    overlong: Literal["truncate", "drop"] = "truncate"
    skip_invalid: bool = False
    sampling: Literal["proportional", "weights"] = "proportional"
    task_weights: dict[str, float] = Field(default_factory=dict)
    seed: int = 42

    _split_paths = field_validator("paths", mode="before")(parse_path_list)
