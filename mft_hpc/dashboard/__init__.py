"""The run dashboard: read a RunView from the run directory + state store, render it with rich."""

from mft_hpc.dashboard.render import render, render_plain
from mft_hpc.dashboard.snapshot import RunView, read_run

__all__ = ["RunView", "read_run", "render", "render_plain"]
