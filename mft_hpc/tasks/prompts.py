"""Model input text, built exactly as the competition's launch script and harness build it.

The task prompt (HumanEvalPack ``instruct`` prompt, stripped; MBPP InCoder
docstring) gets one trailing "\\n" if it lacks one, then ``prefix + prompt + suffix``. The one
deliberate departure, opt-in (``assistant_newline``): the ChatML suffix may end ``assistant\\n`` as in training.
"""

from __future__ import annotations

from mft_hpc.tasks.names import IM_END, IM_START, PromptStyle, uses_chatml
from mft_hpc.tasks.registry import check_task, is_fixtests, language_of

RUST_MAIN = "fn main(){}\n"


def prompt_base(task: str, doc: dict) -> str:
    """The code the model continues: the docstring'd stub (synthesize) or the bare declaration (fix)."""
    if not is_fixtests(task):
        return doc["prompt"]  # already starts with fn main(){} for Rust
    if language_of(task) == "rust":
        return RUST_MAIN + doc["declaration"]
    return doc["declaration"]


def task_prompt(task: str, doc: dict) -> str:
    """The harness's ``task.get_prompt(doc)`` (HumanEvalPack with ``--prompt instruct``)."""
    if check_task(task) == "mbpp":
        return f'"""\n{doc["text"]}\n{doc["test_list"][0]}\n"""\n'
    base = prompt_base(task, doc)
    if is_fixtests(task):
        instruction = f'Fix bugs in {doc["entry_point"]}.'
        context = base + doc["buggy_solution"] + "\n" + doc["test"]
        text = context + "\n" + instruction  # instruct prompts put the context first
    else:
        text = doc["instruction"].strip()
    return (text + "\n\n" + base).strip()


CHATML_SUFFIX = f"{IM_END}\n{IM_START}assistant"


def chatml_wrap(system_prompt: str | None, assistant_newline: bool = False) -> tuple[str, str]:
    """The launch script's ChatML prefix/suffix; no newline after ``assistant`` (as shipped) unless
    ``assistant_newline``: then the header ends as MFTCoder's training renders it, ``assistant\\n``."""
    prefix = f"{IM_START}system\n{system_prompt or ''}{IM_END}\n{IM_START}user\n"
    return prefix, CHATML_SUFFIX + ("\n" if assistant_newline else "")


def prefix_suffix(task: str, style: PromptStyle = "competition", system_prompt: str | None = None,
                  assistant_newline: bool = False) -> tuple[str, str]:
    """competition: ChatML for mbpp, nothing for HumanEvalPack; chatml: ChatML for all; raw: nothing.

    ``assistant_newline`` is a no-op where there is no ChatML suffix.
    """
    check_task(task)
    if uses_chatml(task, style):
        return chatml_wrap(system_prompt, assistant_newline)
    return "", ""


def model_input(task: str, doc: dict, style: PromptStyle = "competition", system_prompt: str | None = None,
                assistant_newline: bool = False) -> str:
    """The exact text fed to the tokenizer."""
    prompt = task_prompt(task, doc)
    if not prompt.endswith("\n"):
        prompt += "\n"
    prefix, suffix = prefix_suffix(task, style, system_prompt, assistant_newline)
    return prefix + prompt + suffix
