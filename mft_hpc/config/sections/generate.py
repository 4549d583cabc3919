from __future__ import annotations

from typing import Literal

from pydantic import Field

from mft_hpc.config.sections.base import Section

ALL_TASKS = tuple(
    [f"humanevalsynthesize-{lang}" for lang in ("python", "java", "js", "cpp", "go", "rust")]
    + [f"humanevalfixtests-{lang}" for lang in ("python", "java", "js", "cpp", "go", "rust")]
    + ["mbpp"]
)


class GenerateSection(Section):
    enabled: bool = True
    benchmarks: str = Field("../shared/benchmarks", description="benchmark data directory (must exist)")
    tasks: list[str] = Field(default_factory=lambda: list(ALL_TASKS))
    limit: int | None = Field(None, ge=1, description="first N problems per task (a partial run)")
    backend: Literal["hf", "vllm", "exact"] = "hf"
    batch_size: int = Field(32, ge=1)
    max_length_generation: int = Field(2000, ge=1, description="prompt + generated tokens, as the harness")
    prompt_style: Literal["competition", "chatml", "raw"] = "competition"
    system_prompt: str | None = None
    shard_size: int | None = Field(None, ge=1)
    model_name: str | None = Field(None, description="name in generations_{model}; default: run name + member")
    # Greedy is the only allowed decoding: these exist so that asking for sampling is a clear error.
    do_sample: Literal[False] = False
    num_beams: Literal[1] = 1
    num_return_sequences: Literal[1] = 1
