"""Collect: the leaderboard ranks members by the 13-task mean and shows missing tasks as missing."""

from __future__ import annotations

import json
from statistics import fmean

import pytest
import yaml
from dashboard_fakes import FAST, SLOW, build_run, write_metrics

from mft_hpc.collect import write_leaderboard
from mft_hpc.errors import UserError
from mft_hpc.submission.competition import BASELINE_MEAN, BASELINE_PASS1
from mft_hpc.submission.pack import pack_run
from mft_hpc.tasks.names import TASK_NAMES


def test_leaderboard_names_the_better_member_and_marks_missing_tasks(fake_run):
    board = write_leaderboard(fake_run)
    assert board["best_member"] == FAST
    fast, slow = board["members"]
    assert fast["member"] == FAST and fast["best"] and not slow["best"]
    expected_mean = fmean(min(1.0, BASELINE_PASS1[t] + 0.05) for t in TASK_NAMES)
    assert abs(fast["mean"] - expected_mean) < 1e-12
    assert abs(fast["delta_vs_baseline"] - (expected_mean - BASELINE_MEAN)) < 1e-12
    assert slow["mean"] is None and slow["missing"] == list(TASK_NAMES[3:])
    assert all(slow["scores"][t] is None for t in TASK_NAMES[3:])          # missing, not 0
    assert board["best_per_task"][TASK_NAMES[0]] == [FAST]

    saved = json.loads((fake_run / "collect" / "leaderboard.json").read_text())
    assert saved["best_member"] == FAST
    markdown = (fake_run / "collect" / "leaderboard.md").read_text()
    assert f"Best member: **{FAST}**" in markdown
    fast_row = next(line for line in markdown.splitlines() if line.startswith(f"| {FAST}"))
    slow_row = next(line for line in markdown.splitlines() if line.startswith(f"| {SLOW}"))
    assert "★ best" in fast_row and "★" not in slow_row
    assert slow_row.count("missing") == len(TASK_NAMES) - 3 + 1 and "| 0.0000" not in slow_row
    assert "organizers-baseline" in markdown and "0.0933" in markdown and "lightly fine-tuned" in markdown

    grouped_slow = json.loads((fake_run / "collect" / "grouped" / f"{SLOW}.json").read_text())
    assert grouped_slow["average"] is None
    assert [r["task"] for r in grouped_slow["results"]] == list(TASK_NAMES[:3])
    grouped_fast = json.loads((fake_run / "collect" / "grouped" / f"{FAST}.json").read_text())
    assert grouped_fast["meta"] == {"model": f"demo-{FAST}"}
    assert abs(grouped_fast["average"] - expected_mean) < 1e-12


def test_the_better_complete_member_wins_whatever_its_name(tmp_path):
    run = build_run(tmp_path, fast_bonus=0.01, slow_bonus=0.03)
    write_metrics(run, SLOW, {t: min(1.0, BASELINE_PASS1[t] + 0.03) for t in TASK_NAMES})
    board = write_leaderboard(run)
    assert board["best_member"] == SLOW
    assert [row["member"] for row in board["members"]] == [SLOW, FAST]


def test_a_broken_metrics_file_is_a_reported_problem_not_a_zero(fake_run):
    bad = fake_run / "members" / FAST / "evaluate" / f"metrics_demo-{FAST}" / f"metrics_mbpp_demo-{FAST}.json"
    bad.write_text('{"mbpp": {"pass@1": ')
    board = write_leaderboard(fake_run)
    fast = next(row for row in board["members"] if row["member"] == FAST)
    assert fast["scores"]["mbpp"] is None and fast["mean"] is None
    assert any("unreadable metrics file" in p and str(bad) in p for p in fast["problems"])
    assert board["best_member"] is None
    assert "## Problems" in (fake_run / "collect" / "leaderboard.md").read_text()


def test_partial_runs_are_flagged_and_pack_run_writes_into_collect(tmp_path):
    run = build_run(tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["generate"]["limit"] = 4
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    board = write_leaderboard(run)
    assert all(row["partial_run_limit"] == 4 for row in board["members"])
    markdown = (run / "collect" / "leaderboard.md").read_text()
    assert f"{FAST} ★ best (partial: limit 4)" in markdown and "not comparable to the baseline" in markdown
    # FAST's generations are full-length although the config says limit 4: pack refuses the mismatch
    with pytest.raises(UserError, match="generate.limit 4 means 4"):
        pack_run(run, member=FAST, allow_partial=True)


def test_pack_run_writes_the_members_zip_into_collect(fake_run):
    packed = pack_run(fake_run, member=FAST)
    assert packed.path == fake_run / "collect" / f"generations_demo-{FAST}.zip"
    assert packed.path.is_file() and not packed.checked.partial
    with pytest.raises(UserError, match="has 5 files, expected exactly 13"):
        pack_run(fake_run, member=SLOW)  # still generating
