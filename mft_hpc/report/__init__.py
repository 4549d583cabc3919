"""The run report: one self-contained HTML page (``collect/report.html``) and its numbers as JSON
(``collect/report.json``): training curves, pass@1 against the baseline, verdicts, the Slurm
timeline and the run's cost, the submission.
"""

from mft_hpc.report.build import build_report
from mft_hpc.report.page import render_html
from mft_hpc.report.summary import cost_summary_line
from mft_hpc.report.write import write_report

__all__ = ["build_report", "cost_summary_line", "render_html", "write_report"]
