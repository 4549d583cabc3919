from __future__ import annotations

from pydantic import Field

from mft_hpc.config.sections.base import Section


class ModelSection(Section):
    path: str = Field(description="HF causal LM directory (must exist)")
    trust_remote_code: bool = False
