"""The 13 competition tasks: names, languages, problem loading, prompts, stops, post-processing."""

from mft_hpc.tasks.names import LANGUAGES, TASK_NAMES
from mft_hpc.tasks.registry import language_of, load_problems

__all__ = ["LANGUAGES", "TASK_NAMES", "language_of", "load_problems"]
