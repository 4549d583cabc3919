"""Sandboxed evaluation of harness-format generations.

``evaluate_task(generations_dir, model, task, benchmarks_dir, out_dir, eval_cfg)`` is the entry
point the controller calls; ``evaluate_tasks`` scores several tasks in one sandbox batch.
"""

from mft_hpc.evaluate.evaluate import evaluate_task, evaluate_tasks

__all__ = ["evaluate_task", "evaluate_tasks"]
