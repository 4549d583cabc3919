from __future__ import annotations

from pydantic import Field

from mft_hpc.config.sections.base import Section


class SubmissionSection(Section):
    enabled: bool = True
    allow_partial: bool = Field(False, description="pack a run made with generate.limit (zip name says partial)")
