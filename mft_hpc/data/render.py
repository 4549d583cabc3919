"""MFTCoder's exact ChatML rendering with a token-level loss mask.

Per round: ``<|im_start|>{system|user|assistant}\\n{content}<|im_end|>\\n``; the final ``\\n`` is
removed, so a sample ends with ``<|im_end|>``. Mask 1 on bot content tokens and the bot's
``<|im_end|>``, 0 elsewhere. Each piece is encoded on its own (as MFTCoder does), content with
special tokens disallowed and never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from mft_hpc.data.codec import Codec
from mft_hpc.data.records import Turn

ROLE_WORD = {"system": "system", "human": "user", "bot": "assistant"}
OK, TRUNCATED, DROPPED = "ok", "truncated", "dropped"


@dataclass(frozen=True)
class Rendered:
    input_ids: list[int]
    loss_mask: list[int]
    status: str  # ok | truncated | dropped (then both lists are empty)


class ChatMLRenderer:
    def __init__(self, codec: Codec, seq_length: int | None = None, overlong: str = "truncate"):
        if overlong not in ("truncate", "drop"):
            raise ValueError(f"overlong must be truncate or drop, not {overlong!r}")
        self.codec = codec
        self.seq_length = seq_length
        self.overlong = overlong
        words = list(ROLE_WORD.values())
        role_ids = codec.encode_texts([word + "\n" for word in words] + ["\n"])
        self.marker = {role: [codec.im_start] + ids for role, ids in zip(ROLE_WORD, role_ids)}
        self.newline = role_ids[-1]

    def _overlong(self, content: str) -> bool:
        """True when ``content`` alone has more than ``seq_length`` tokens, known without encoding it:
        more characters than ``seq_length`` tokens can hold (memory stays bounded on hostile data)."""
        return self.seq_length is not None and len(content) > self.seq_length * self.codec.max_token_bytes

    def render_many(self, conversations: list[tuple[Turn, ...]]) -> list[Rendered]:
        """Render a batch; all contents go to the tokenizer in one call (fast tokenizers parallelise it).

        A content that cannot fit ``seq_length`` is never encoded: the sample ends before it.
        """
        contents = [content for turns in conversations for _, content in turns if not self._overlong(content)]
        encoded = iter(self.codec.encode_texts(contents))
        return [self._assemble(turns, [None if self._overlong(c) else next(encoded) for _, c in turns])
                for turns in conversations]

    def render(self, turns: tuple[Turn, ...]) -> Rendered:
        return self.render_many([turns])[0]

    def _assemble(self, turns: tuple[Turn, ...], content_ids: list[list[int] | None]) -> Rendered:
        ids: list[int] = []
        mask: list[int] = []
        span_ends: list[int] = []  # length after each bot's <|im_end|>: the legal truncation points
        overflow = False
        for (role, _), content in zip(turns, content_ids):
            if content is None:  # longer than seq_length on its own: nothing from here on can fit
                overflow = True
                break
            supervised = 1 if role == "bot" else 0
            if ids:
                ids += self.newline
                mask += [0] * len(self.newline)
            ids += self.marker[role]
            mask += [0] * len(self.marker[role])
            ids += content
            ids.append(self.codec.im_end)
            mask += [supervised] * (len(content) + 1)
            if supervised:
                span_ends.append(len(ids))
        if self.seq_length is None or (len(ids) <= self.seq_length and not overflow):
            return Rendered(ids, mask, OK)
        fitting = [end for end in span_ends if end <= self.seq_length]
        if self.overlong == "drop" or not fitting:
            return Rendered([], [], DROPPED)
        return Rendered(ids[: fitting[-1]], mask[: fitting[-1]], TRUNCATED)
