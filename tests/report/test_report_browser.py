"""The run report in a real browser: headless Chromium opens the page, nothing is fetched, nothing
is logged as an error, and what is drawn is the run's own numbers (read back from its files)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mft_hpc.submission.competition import BASELINE_PASS1
from mft_hpc.tasks.names import TASK_NAMES

MAX_PAGE_BYTES = 3_000_000


def metrics_files(run: Path) -> dict[tuple[str, str], float]:
    """(member, task) -> pass@1, straight from the evaluation stage's metrics files."""
    out = {}
    for path in run.glob("members/*/evaluate/metrics_*/metrics_*.json"):
        member = path.parts[-4]
        data = json.loads(path.read_text())
        task = next(key for key in data if key != "config")
        out[(member, task)] = data[task]["pass@1"]
    return out


def job_runs(run: Path) -> int:
    with sqlite3.connect(run / "state.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]


def open_clean(browser, page_path: Path):
    page = browser.open_page(page_path)
    assert page.errors() == []
    assert page.foreign_requests() == []
    return page


def heatmap(page) -> dict[tuple[str, str], tuple[str, str | None]]:
    cells = page.evaluate("[...document.querySelectorAll('table.heatmap td.cell[data-task]')]"
                          ".map(c => [c.dataset.member, c.dataset.task, c.textContent, c.dataset.value || null])")
    return {(member, task): (text, value) for member, task, text, value in cells}


def check_figures(page, run: Path) -> dict:
    """Heatmap and bars show the metrics files' pass@1; header, cost and timeline match report.json."""
    report = json.loads((run / "collect" / "report.json").read_text())
    board = json.loads((run / "collect" / "leaderboard.json").read_text())
    scores = metrics_files(run)
    members = sorted({m for m, _ in scores})
    cells = heatmap(page)
    assert len(cells) == len(members) * len(TASK_NAMES)
    for (member, task), value in scores.items():
        assert cells[(member, task)] == (f"{value:.4f}", repr(value))
    bars = page.evaluate("[...document.querySelectorAll('svg.bars rect.bar')]"
                         ".map(r => [r.dataset.series, r.dataset.group, Number(r.dataset.value),"
                         " Number(r.getAttribute('height'))])")
    assert len(bars) == len(scores)
    heights = {(series, group): (value, height) for series, group, value, height in bars}
    unit = max(h / v for v, h in heights.values() if v > 0)  # px per pass@1
    assert all(abs(h - v * unit) < 0.6 for v, h in heights.values())  # bar height is the number
    baselines = page.evaluate("[...document.querySelectorAll('svg.bars line.baseline')].map(l => Number(l.dataset.value))")
    assert baselines == [BASELINE_PASS1[t] for t in TASK_NAMES]
    best = board["best_member"]
    best_row = next(row for row in board["members"] if row["member"] == best)
    assert page.evaluate("document.getElementById('best-mean').textContent") == f"{best_row['mean']:.4f}"
    total = report["scheduling"]["cost"]["total"]
    assert page.evaluate("document.getElementById('cost-cpu').textContent") == f"{total['cpu_hours']:.4f}"
    assert page.evaluate("document.querySelectorAll('svg.gantt rect[data-state]').length") == job_runs(run)
    assert page.evaluate("document.querySelectorAll('.training svg.line polyline').length") > 0
    return report


def test_demo_like_report_renders_with_its_numbers(browser, demo_like_run, tmp_path):
    page_path = demo_like_run / "collect" / "report.html"
    page = open_clean(browser, page_path)
    report = check_figures(page, demo_like_run)
    text = page.evaluate("document.body.innerText")
    assert "partial run (generate.limit = 3)" in text
    assert "valid (partial)" in text and "generations_demo-like-partial.zip" in text
    assert "measured: wall time x requested CPUs/GPUs" in text  # local executor: not accounting
    assert report["training"]["main"]["best_step"] is not None
    assert page.evaluate("[...document.querySelectorAll('.training .mark-label')].map(t => t.textContent)")[0] \
        == f"best step {report['training']['main']['best_step']}"
    # the most common failure reason of a task, with an example problem of the run
    first = report["evaluation"]["reasons_by_task"]["mbpp"][0]
    assert first["example_problem_id"] == str(11 + first["example_index"])  # mbpp's scored split is 11..510
    row = page.evaluate("[...document.querySelectorAll('td.reason')].map(td => td.parentElement.innerText)")
    assert any(first["reason"] in r and f"{first['example_problem_id']} · problem index {first['example_index']}" in r
               for r in row)
    shot = page.screenshot(tmp_path / "demo.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.slow
def test_sixteen_member_full_suite_sweep_page(browser, sweep16_run, tmp_path):
    page_path = sweep16_run / "collect" / "report.html"
    assert page_path.stat().st_size < MAX_PAGE_BYTES
    page = open_clean(browser, page_path)
    check_figures(page, sweep16_run)
    board = json.loads((sweep16_run / "collect" / "leaderboard.json").read_text())
    starred = page.evaluate("[...document.querySelectorAll('table.heatmap th')].map(th => th.textContent)"
                            ".filter(t => t.endsWith('★'))")
    assert starred == [f"{board['best_member']} ★"]
    assert page.evaluate("document.querySelectorAll('#sweep-training polyline').length") == 32
    print(f"16-member page: {page_path.stat().st_size / 1e6:.2f} MB, loaded and painted in {page.load_seconds:.2f} s")
    page.screenshot(tmp_path / "sweep16.png")


def test_a_broken_run_renders_and_says_what_is_missing(browser, broken_run):
    from mft_hpc.report import write_report

    html_path, _ = write_report(broken_run)
    page = open_clean(browser, html_path)
    missing = page.evaluate("[...document.querySelectorAll('#missing li')].map(li => li.textContent)")
    assert any("training failed: torch.OutOfMemoryError" in m for m in missing)
    assert any("unreadable metrics file" in m for m in missing)
    assert any("no evaluation results yet" in m for m in missing)
