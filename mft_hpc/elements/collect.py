"""The collect element: the leaderboard of all members, a validated submission zip per member where
allowed, the run report; finished only when every evaluation has its score."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.elements.generate import merge_finished_shards
from mft_hpc.elements.logs import job_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectElement:
    """Collect the run in ``run_root`` (its members, configs and outputs are read from the run directory)."""

    run_root: str

    def __call__(self) -> dict:
        job_logging()
        from mft_hpc.collect import write_leaderboard
        from mft_hpc.errors import UserError
        from mft_hpc.rundir import mark_done
        from mft_hpc.runplan.runfile import load_run
        from mft_hpc.submission.pack import pack_run

        run_root = self.run_root
        plan = load_run(Path(run_root))
        for member in plan.members:  # without an evaluation stage nothing else would merge them
            merge_finished_shards(member.generate_dir, member.tasks, member.config.generate, member.model_name)
        board = write_leaderboard(run_root)
        packed, problems = {}, {}
        for member in plan.members:
            submission = member.config.submission
            if not submission.enabled:
                continue
            partial = member.config.generate.limit is not None
            if partial and not submission.allow_partial:
                problems[member.name] = "partial run (generate.limit) and submission.allow_partial is false: not packed"
                continue
            try:
                packed[member.name] = str(pack_run(run_root, member.name, allow_partial=submission.allow_partial).path)
            except UserError as err:
                problems[member.name] = str(err)
        report = _write_report(run_root)  # before the marker: a finished collect has its report
        missing = [f"{member.name}/{task}" for member in plan.members for task in member.eval_tasks
                   if not member.is_done("evaluate", task)]
        if missing:  # a leaderboard of missing scores must not look finished: resume/retry will redo it
            raise RuntimeError(f"leaderboard incomplete: no score for {len(missing)} evaluation(s) "
                               f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
        mark_done(plan.leaderboard, {"packed": packed, "not_packed": problems})
        return {"best": board.get("best_member"), "packed": packed, "not_packed": problems, "report": report}


def _write_report(run_root: str) -> str | None:
    """collect/report.html: an extra, so a failure is logged (with the command that retries it), not raised."""
    from mft_hpc.report import write_report

    try:
        return str(write_report(run_root)[0])
    except Exception:  # noqa: BLE001 - the leaderboard and zips are already done
        log.exception("report not written; retry with `mft-hpc report %s`", run_root)
        return None
