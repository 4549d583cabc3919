"""What every generation backend shares: the work it is handed, how a result is recorded, how it fails.

An array element opens one engine and hands it the work of all its tasks (or shards) at once, so a
suite packed into one element loads the model once. Each finished problem goes to its task's
``on_result`` at once (the caller appends it to that task's raw file); a problem whose request
failed is reported in ``GenerationFailed`` after every other problem was handed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Work:
    """One task's (or shard's) prompts, index -> model input text, and where each result goes."""

    task: str
    prompts: dict[int, str]
    on_result: Callable[[dict], None]


class GenerationFailed(RuntimeError):
    """Some problems got no completion; ``errors`` maps (task, index) to why. The others were delivered."""

    def __init__(self, errors: dict[tuple[str, int], str]):
        self.errors = errors
        shown = "; ".join(f"{task} problem {index}: {why}" for (task, index), why in sorted(errors.items())[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} problem(s) failed to generate: {shown}{more}")


def record(task: str, index: int, tokens: list[int], reason: str, tokenizer) -> dict:
    """A raw-file record: the kept tokens decoded exactly as the harness decodes them."""
    completion = tokenizer.decode(tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return {"task": task, "index": index, "completion": completion, "finish_reason": reason, "n_tokens": len(tokens)}
