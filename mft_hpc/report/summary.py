"""The dashboard's one line about the report: the run's cost and where the page is."""

from __future__ import annotations

import json
from pathlib import Path

from mft_hpc.rundir import RunDir


def cost_summary_line(run_root: str | Path) -> str | None:
    """``cost 1.20 CPU-h, 0.00 GPU-h (sacct) · report: <path>``; None before the first report."""
    run = RunDir(Path(run_root))
    try:
        report = json.loads(run.report_json.read_text())
        cost = report["scheduling"]["cost"]["total"]
        source = report["scheduling"]["source"]
        line = f"cost {cost['cpu_hours']:.2f} CPU-h, {cost['gpu_hours']:.2f} GPU-h ({source})"
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return f"report: {run.report_html}" if run.report_html.is_file() else None
    return f"{line} · report: {run.report_html}"
