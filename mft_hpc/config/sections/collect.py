from __future__ import annotations

from pydantic import Field

from mft_hpc.config.sections.base import Section


class CollectSection(Section):
    """The run's last job: leaderboard across members and the submission zips."""

    enabled: bool = Field(True, description="false: no collect job (e.g. `mft-hpc run --only train`)")
