from __future__ import annotations

from typing import Literal

from pydantic import Field

from mft_hpc.config.sections.base import Section


class EvaluateSection(Section):
    enabled: bool = True
    runtime: Literal["apptainer", "singularity", "bwrap", "host"] = "apptainer"
    image: str | None = Field(None, description="built image (.sif); default: the cached build of containers/")
    workers: int | None = Field(None, ge=1, description="parallel programs; default: CPUs of the job")
    unsafe_host: bool = Field(False, description="required to run generated code with runtime: host")
    cache: bool = Field(True, description="reuse verdicts from the verdict cache (false: judge every program "
                        "again; verdicts are still recorded)")
    cache_dir: str | None = Field(None, description="verdict cache shared by every member and stage pointing at it "
                                  "(e.g. on a shared filesystem, across runs); default: <run root>/verdict-cache")
