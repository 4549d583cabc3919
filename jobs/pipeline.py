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

    On preemption or time limit submitit calls ``checkpoint`` and requeues the same call; training
    resumes from the member's last complete checkpoint.
    """

    def __call__(self, config, member_dir: str) -> str:
        _logging()
        from mft_hpc.train import train_member

        return str(train_member(config, member_dir))


def generate_tasks(model_dir: str, tasks: list[str], out_dir: str, gen_cfg, model_name: str,
                   trust_remote_code: bool = False) -> list[dict]:
    """Several tasks in one job (the local executor: the model is loaded once per task call)."""
    from jobs.generate import generate_element

    return [generate_element(model_dir, task, out_dir, gen_cfg, None, model_name, trust_remote_code)
            for task in tasks]


def evaluate_tasks(generations_dir: str, model: str, tasks: list[str], benchmarks_dir: str, out_dir: str,
                   eval_cfg, limit: int | None = None) -> dict[str, float]:
    """Several tasks in one sandbox batch (one container start); ``limit``: a partial run's problems."""
    _logging()
    from mft_hpc.evaluate import evaluate_tasks as evaluate

    return evaluate(generations_dir, model, tasks, benchmarks_dir, out_dir, eval_cfg, limit=limit)


def collect_run(run_root: str) -> dict:
    """Leaderboard of all members, and a validated submission zip per member where allowed."""
    _logging()
    from mft_hpc.collect import write_leaderboard
    from mft_hpc.controller.runfile import load_run
    from mft_hpc.errors import UserError
    from mft_hpc.rundir import mark_done
    from mft_hpc.submission.pack import pack_run

    plan = load_run(Path(run_root))
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
    mark_done(plan.leaderboard, {"packed": packed, "not_packed": problems})
    return {"best": board.get("best_member"), "packed": packed, "not_packed": problems}
