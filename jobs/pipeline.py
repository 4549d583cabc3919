"""Compute-node entry points the controller submits (pickled by submitit).

Thin wrappers: each calls one stage function of mft_hpc with plain arguments.
"""

from __future__ import annotations

import logging
from pathlib import Path

from submitit.helpers import Checkpointable


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class TrainElement(Checkpointable):
    """One sweep member's training (an array element, possibly multi-node).

    On preemption or time limit the training checkpoints after the current optimizer step, then
    submitit calls ``checkpoint`` and requeues the same call, which resumes from that checkpoint.
    """

    def __call__(self, config, member_dir: str) -> str:
        _logging()
        from mft_hpc.train import train_member

        return str(train_member(config, member_dir))


def generate_tasks(model_dir: str, elements: list, out_dir: str, gen_cfg, model_name: str,
                   trust_remote_code: bool = False) -> list[dict]:
    """Several generation elements in one job (the local executor): each a task name (the whole task)
    or a ``(task, shard)`` pair; the model is loaded once for all of them."""
    from jobs.generate import generate_element

    return generate_element(model_dir, elements, out_dir, gen_cfg, model_name, trust_remote_code)


def merge_finished_shards(generate_dir: Path, tasks: list[str], gen_cfg, model: str) -> None:
    """Write the generations file of each task whose shards are all done but never merged (the last
    shard died between its raw file and the merge); a no-op for merged or unfinished tasks."""
    from mft_hpc.generate import finalize_task
    from mft_hpc.generate.outputs import generations_path
    from mft_hpc.rundir import is_done

    for task in tasks:
        if not is_done(generations_path(generate_dir, task, model)):
            finalize_task(generate_dir, task, gen_cfg, model)


def evaluate_tasks(generations_dir: str, model: str, tasks: list[str], benchmarks_dir: str, out_dir: str,
                   eval_cfg, limit: int | None = None, gen_cfg=None) -> dict[str, float]:
    """Several tasks in one sandbox batch (one container start); ``limit``: a partial run's problems.

    With ``gen_cfg``, a sharded task whose shards are all done but whose merge never happened (the
    last shard died between its raw file and the generations file) is merged here first.
    """
    _logging()
    from mft_hpc.evaluate import evaluate_tasks as evaluate

    if gen_cfg is not None:
        merge_finished_shards(Path(generations_dir).parent, tasks, gen_cfg, model)
    return evaluate(generations_dir, model, tasks, benchmarks_dir, out_dir, eval_cfg, limit=limit)


def collect_run(run_root: str) -> dict:
    """Leaderboard of all members, a validated submission zip per member where allowed, the run report."""
    _logging()
    from mft_hpc.collect import write_leaderboard
    from mft_hpc.runplan.runfile import load_run
    from mft_hpc.errors import UserError
    from mft_hpc.rundir import mark_done
    from mft_hpc.submission.pack import pack_run

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
        logging.getLogger(__name__).exception("report not written; retry with `mft-hpc report %s`", run_root)
        return None


def advance_waves(run_root: str, functions=None) -> dict:
    """The advance job of a run cut in waves (mft_hpc.controller.waves): submit the next wave."""
    _logging()
    from mft_hpc.controller.operations import advance

    outcome = advance(run_root, functions)
    return {"submitted": len(outcome.submitted), "sbatch": outcome.sbatch_calls, "notes": outcome.notes}
