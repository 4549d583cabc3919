from __future__ import annotations

import re

from pydantic import field_validator

from mft_hpc.config.sections.base import Section

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


class RunSection(Section):
    """Where the run directory lives: ``<root>/<name>``."""

    name: str
    root: str = "runs"

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        # The name becomes a directory and part of Slurm job names: keep it portable.
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.' and '-' only (no '/', '_' or spaces)")
        return value
