"""The competition's vocabulary: task names, problem counts, prompt styles, the ChatML special tokens.

Imports nothing from the project: the config validates against these names, and tasks, submission,
data and train read them from here (one owner per fact).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

LANGUAGES = ("python", "java", "js", "cpp", "go", "rust")

# In the harness's (and the generations files') order: synthesize, fix, mbpp.
TASK_NAMES: tuple[str, ...] = (
    tuple(f"humanevalsynthesize-{language}" for language in LANGUAGES)
    + tuple(f"humanevalfixtests-{language}" for language in LANGUAGES)
    + ("mbpp",)
)

HUMANEVALPACK_SIZE = 164
MBPP_FIRST_TASK_ID, MBPP_LAST_TASK_ID = 11, 510  # the scored MBPP split: 500 problems

# Problems per task = entries in generations_{task}_{model}.json, in dataset order.
PROBLEM_COUNTS = MappingProxyType({
    task: MBPP_LAST_TASK_ID - MBPP_FIRST_TASK_ID + 1 if task == "mbpp" else HUMANEVALPACK_SIZE for task in TASK_NAMES})

PromptStyle = Literal["competition", "chatml", "raw"]
PROMPT_STYLES: tuple[str, ...] = ("competition", "chatml", "raw")

IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"


def uses_chatml(task: str, style: str) -> bool:
    """Whether ``task`` under ``style`` is ChatML-wrapped, i.e. has an assistant header (competition: mbpp only)."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}")
    return style == "chatml" or (style == "competition" and task == "mbpp")
