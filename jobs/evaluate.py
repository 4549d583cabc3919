"""Compute-node entry of one evaluation job (pickled and run by submitit): one task per call."""

from __future__ import annotations

import logging


def evaluate_element(generations_dir: str, model: str, task: str, benchmarks_dir: str, out_dir: str,
                     eval_cfg) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mft_hpc.evaluate import evaluate_task

    score = evaluate_task(generations_dir, model, task, benchmarks_dir, out_dir, eval_cfg)
    return {"task": task, "model": model, "pass@1": score}
