"""Generation stage: the 13 tasks' completions and the harness's generation files.

Heavy libraries (torch, transformers, vllm) are imported only when a backend runs.
"""

from mft_hpc.generate.run import finalize_task, run_task, run_tasks

__all__ = ["finalize_task", "run_task", "run_tasks"]
