"""Bad or unfinished runs: `mft-hpc report` still writes a page that says what is missing, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

from report_fakes import break_run, build_synthetic_run, write_config

from mft_hpc.cli.main import main as cli
from mft_hpc.config import load_config
from mft_hpc.dashboard import read_run, render_plain
from mft_hpc.report import build_report, cost_summary_line, write_report
from mft_hpc.rundir import RunDir
from mft_hpc.runplan.plan import build_plan
from mft_hpc.runplan.runfile import write_run


def report_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mft_hpc", "report", *args], capture_output=True, text=True)


def test_a_run_just_started_has_a_report_saying_nothing_is_there_yet(tmp_path, benchmarks_dir):
    loaded = load_config(write_config(tmp_path, "fresh", 2, 3, benchmarks_dir, tmp_path / "model", 10),
                         check_paths=False)
    plan = build_plan(RunDir.create(tmp_path / "fresh"), loaded.members, loaded.is_sweep)
    write_run(plan, loaded.config, loaded.is_sweep)
    done = report_cli(str(plan.run.root))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(plan.run.report_json.read_text())
    missing = "\n".join(report["missing"])
    for member in ("lr0.0001", "lr0.0002"):
        assert f"training {member}: no training metrics yet" in missing
        assert f"evaluation {member}: no evaluation results yet" in missing
    assert "scheduling: no job has been submitted yet" in missing
    assert "submission: collect has not finished" in missing
    page = plan.run.report_html.read_text()
    assert "no pass@1 yet" in page and "What is missing" in page


def test_broken_members_are_named_with_their_files(tmp_path, benchmarks_dir):
    run = build_synthetic_run(tmp_path, "broken", members=3, limit=2, benchmarks=benchmarks_dir,
                              model=tmp_path / "model", steps=20)
    broken = break_run(run)
    report = build_report(run)
    missing = report["missing"]
    first, second, third = report["run"]["members"]
    assert f"training {second}: training failed: torch.OutOfMemoryError: CUDA out of memory" in missing
    assert any(m.startswith(f"evaluation {first}: {broken['corrupt_metrics']}: unreadable metrics file")
               for m in missing)
    assert any(m.startswith(f"training {first}: ") and "metrics.jsonl: line" in m and "(skipped)" in m
               for m in missing)
    assert any(m.startswith(f"evaluation {third}: no evaluation results yet") for m in missing)
    # what could be read is still there: the torn line is skipped, the other tasks are scored
    assert report["training"][first]["last_step"] == 20
    assert report["evaluation"]["members"][first]["scores"]["mbpp"] is None
    assert sum(v is not None for v in report["evaluation"]["members"][first]["scores"].values()) == 12
    assert report["training"][second]["state"] == "failed"
    html_path, _ = write_report(run)
    assert "training failed: torch.OutOfMemoryError" in html_path.read_text()


def test_a_section_that_cannot_be_read_does_not_stop_the_page(tmp_path, benchmarks_dir):
    run = build_synthetic_run(tmp_path, "corrupt", members=1, limit=2, benchmarks=benchmarks_dir,
                              model=tmp_path / "model", steps=10)
    (run / "state.sqlite").write_bytes(b"this is not a database" * 100)
    for stale in run.glob("state.sqlite-*"):
        stale.unlink()
    assert cli(["report", str(run)]) == 0
    report = json.loads((run / "collect" / "report.json").read_text())
    assert any(m.startswith("state store: could not be read (StateUnreadable") and "mft-hpc repair" in m
               for m in report["missing"])
    assert report["evaluation"]["members"]["main"]["mean"] is not None


def test_not_a_run_directory_is_a_clear_error(tmp_path):
    done = report_cli(str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.startswith("mft-hpc: error: ") and "not a run directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_out_writes_the_page_and_its_json_where_asked(tmp_path, benchmarks_dir):
    run = build_synthetic_run(tmp_path, "out", members=1, limit=2, benchmarks=benchmarks_dir,
                              model=tmp_path / "model", steps=10)
    out = tmp_path / "elsewhere" / "page.html"
    assert cli(["report", str(run), "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert json.loads(out.with_suffix(".json").read_text())["run"]["name"] == "out"


def test_dashboard_shows_the_cost_and_the_report_path(tmp_path, benchmarks_dir):
    run = build_synthetic_run(tmp_path, "dash", members=1, limit=2, benchmarks=benchmarks_dir,
                              model=tmp_path / "model", steps=10)
    total = json.loads((run / "collect" / "report.json").read_text())["scheduling"]["cost"]["total"]
    line = f"cost {total['cpu_hours']:.2f} CPU-h, {total['gpu_hours']:.2f} GPU-h (measured)"
    assert f"{line} · report: {run / 'collect' / 'report.html'}" in render_plain(read_run(run))
    (run / "collect" / "report.json").write_text("{")
    assert cost_summary_line(run) == f"report: {run / 'collect' / 'report.html'}"
