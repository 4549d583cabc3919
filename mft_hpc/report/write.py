"""Write a run's report: the page and, beside it, the same numbers as JSON (atomic writes)."""

from __future__ import annotations

from pathlib import Path

from mft_hpc.report.build import build_report
from mft_hpc.report.page import render_html
from mft_hpc.rundir import RunDir, atomic_write_json, atomic_write_text
from mft_hpc.slurm.commands import SlurmCommands


def write_report(run_root: str | Path, out: str | Path | None = None,
                 commands: SlurmCommands | None = None) -> tuple[Path, Path]:
    """``out`` (default ``collect/report.html``) and its ``.json`` sibling; returns both paths."""
    run = RunDir(Path(run_root).resolve())
    html_path = Path(out) if out is not None else run.report_html
    json_path = run.report_json if out is None else html_path.with_suffix(".json")
    report = build_report(run.root, commands)
    atomic_write_json(json_path, report, indent=1)
    atomic_write_text(html_path, render_html(report))
    return html_path, json_path
