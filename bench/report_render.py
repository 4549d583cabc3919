"""Size and render time of the run report for a 16-member sweep of the full suite.

Builds a synthetic finished run (tests/report/report_fakes.py: 16 members, 2,468 problems each,
2,000 logged training steps with CoBa weights, the real collect step), then measures:
- the page size (goal < 3 MB) and the time to build report.json + report.html;
- the time headless Chromium takes to load and paint it (goal < 2 s), and the ratio to a baseline
  measured in the same browser in the same run: the leaderboard.md of that run as a bare HTML page.
Needs Debian's chromium (tests/report/install_chromium.sh). Usage: python bench/report_render.py
"""

from __future__ import annotations

import argparse
import html
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "report"), str(REPO)]

from chromium import Browser  # noqa: E402
from report_fakes import build_synthetic_run  # noqa: E402

from mft_hpc.report import write_report  # noqa: E402

GOAL_BYTES, GOAL_SECONDS = 3_000_000, 2.0


def load_times(browser: Browser, page: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        opened = browser.open_page(page)
        assert opened.errors() == [] and opened.foreign_requests() == [], (opened.errors(), opened.foreign_requests())
        times.append(opened.load_seconds)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--benchmarks", default=str(REPO.parent / "shared" / "benchmarks"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        root = Path(tmp)
        run = build_synthetic_run(root, "sweep", members=args.members, limit=None, benchmarks=Path(args.benchmarks),
                                  model=root / "model", steps=2000, coba=True)
        started = time.perf_counter()
        page, numbers = write_report(run)
        build_s = time.perf_counter() - started
        baseline = root / "leaderboard.html"
        board = (run / "collect" / "leaderboard.md").read_text()
        baseline.write_text(f"<!DOCTYPE html><meta charset=utf-8><pre>{html.escape(board)}</pre>")
        with Browser() as browser:
            load_times(browser, page, 1)  # warm up the browser
            report_s = statistics.median(load_times(browser, page, args.repeats))
            base_s = statistics.median(load_times(browser, baseline, args.repeats))
        size = page.stat().st_size
        print(f"members: {args.members}, page {size / 1e6:.2f} MB (goal < {GOAL_BYTES / 1e6:.2f} MB: "
              f"{size / GOAL_BYTES:.2f} of it), report.json {numbers.stat().st_size / 1e6:.2f} MB")
        print(f"build report.json + report.html: {build_s:.2f} s")
        print(f"load + paint in headless Chromium, median of {args.repeats}: {report_s:.3f} s "
              f"(goal < {GOAL_SECONDS:.0f} s: {report_s / GOAL_SECONDS:.2f} of it); leaderboard page {base_s:.3f} s; "
              f"ratio report/leaderboard {report_s / base_s:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
