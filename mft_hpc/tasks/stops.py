"""Stop words and the harness's per-sequence "is this generation finished?" rule."""

from __future__ import annotations

from mft_hpc.tasks.names import ENDOFTEXT, IM_END
from mft_hpc.tasks.registry import check_task, language_of

_LANGUAGE_STOP_WORDS = {
    "python": ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\nassert"),
    "go": ("\n//", "\nfunc main(", "struct", "\nfunc"),
    "cpp": (), "js": (), "java": (), "rust": (),
}
_MBPP_STOP_WORDS = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/")
# Blocks already open when the completion starts (Java: class Solution + the method).
_OPEN_BRACES = {"java": 2, "cpp": 1, "js": 1, "go": 1, "rust": 1}


def stop_words(task: str, eos: str = IM_END) -> tuple[str, ...]:
    """In the harness's order: the task's list, <|endoftext|> (HumanEvalPack only), then eos."""
    if check_task(task) == "mbpp":
        return _MBPP_STOP_WORDS + (eos,)
    return _LANGUAGE_STOP_WORDS[language_of(task)] + (ENDOFTEXT, eos)


def open_braces(task: str) -> int:
    return _OPEN_BRACES[language_of(task)]


def is_finished(task: str, generated: str, stops: tuple[str, ...]) -> bool:
    """The harness's stopping check on the generated text alone (not the prompt)."""
    if any(word in generated for word in stops):
        return True
    if task == "mbpp":
        return False
    if language_of(task) == "python":
        # any non-empty line at column 0 ends the function body
        return any(line.strip() and line[0] not in " \t" for line in generated.split("\n"))
    # braces in strings and comments count too, as in the harness
    return generated.count("{") + open_braces(task) == generated.count("}")
