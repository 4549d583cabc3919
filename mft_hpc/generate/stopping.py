"""Per-sequence stopping exactly as the harness decides it, decoded incrementally.

The harness decodes all generated tokens after every step and asks ``is_finished``. Decoding the
whole tail every step is quadratic, so the tracker keeps the text of tokens already decoded at a
character boundary and decodes only the rest (byte-level BPE: the concatenation is the same text).
"""

from __future__ import annotations

from mft_hpc.tasks.stops import is_finished

REPLACEMENT_CHAR = "\ufffd"  # an incomplete UTF-8 sequence at the end of a partial decode


class StopTracker:
    """Follows one sequence's generated tokens; ``update`` says why it must stop, or None."""

    def __init__(self, task: str, tokenizer, stops: tuple[str, ...], eos_ids: set[int], budget: int):
        self.task, self.tokenizer, self.stops, self.eos_ids, self.budget = task, tokenizer, stops, eos_ids, budget
        self.text = ""      # decoded text of tokens[:self.decoded]
        self.decoded = 0
        self.stopped_at: int | None = None  # number of generated tokens kept
        self.reason: str | None = None

    def update(self, tokens: list[int]) -> str | None:
        if self.reason is not None:
            return self.reason
        n = len(tokens)
        pending = self.tokenizer.decode(tokens[self.decoded:], skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)
        text = self.text + pending
        if not pending.endswith(REPLACEMENT_CHAR):
            self.text, self.decoded = text, n
        if n and tokens[-1] in self.eos_ids:
            self.reason = "eos"
        elif is_finished(self.task, text, self.stops):
            self.reason = "stop"
        elif n >= self.budget:
            self.reason = "length"
        if self.reason is not None:
            self.stopped_at = n
        return self.reason


def scan_for_stop(tracker: StopTracker, tokens: list[int]) -> tuple[int, str]:
    """Where the harness would have stopped within a longer token list (greedy: same prefix)."""
    for n in range(1, len(tokens) + 1):
        if tracker.update(tokens[:n]):
            return n, tracker.reason
    return len(tokens), "length"
