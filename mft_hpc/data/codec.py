"""A thin adapter over the tokenizer: encode content as plain text and know the ChatML ids.

Two kinds of tokenizer are supported: any Hugging Face tokenizer with ``<|im_start|>`` and
``<|im_end|>`` tokens, and a tiktoken ``Encoding`` (Qwen-1 checkpoints ship ``qwen.tiktoken``
and remote code; we build the encoding directly so no remote code is needed). Content is encoded
with special tokens disallowed: a literal ``<|im_end|>`` inside data stays text.
"""

from __future__ import annotations

import functools
import hashlib
import os
import unicodedata
from pathlib import Path

from mft_hpc.errors import UserError
from mft_hpc.tasks.names import ENDOFTEXT, IM_END, IM_START

# Qwen-1's pre-tokenizer pattern and special tokens (tokenization_qwen.py)
QWEN1_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN1_SPECIAL_START = 151643
QWEN1_SPECIALS = (ENDOFTEXT, IM_START, IM_END) + tuple(f"<|extra_{i}|>" for i in range(205))


def read_tiktoken_ranks(vocab_file: str | os.PathLike) -> dict[bytes, int]:
    """``qwen.tiktoken``: one ``base64(token) rank`` per line; bad input is a UserError naming the line."""
    import base64
    import binascii

    ranks: dict[bytes, int] = {}
    try:
        with open(vocab_file, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    token, rank = line.split()
                    ranks[base64.b64decode(token, validate=True)] = int(rank)
                except (ValueError, binascii.Error):
                    raise UserError(f"{vocab_file}:{number}: not a 'base64-token rank' line") from None
    except OSError as err:
        raise UserError(f"{vocab_file}: cannot read: {err.strerror}") from None
    if not ranks:
        raise UserError(f"{vocab_file}: no tokens")
    return ranks


def qwen1_tiktoken(vocab_file: str | os.PathLike):
    """The Qwen-1 BPE as a tiktoken Encoding: ranks from ``qwen.tiktoken``, specials from id 151643."""
    import tiktoken

    ranks = read_tiktoken_ranks(vocab_file)
    specials = {tok: QWEN1_SPECIAL_START + i for i, tok in enumerate(QWEN1_SPECIALS)}
    return tiktoken.Encoding(name="qwen1", pat_str=QWEN1_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


class Codec:
    """What rendering needs from a tokenizer: plain-text batch encoding and the ChatML ids."""

    im_start: int
    im_end: int
    pad_id: int
    fingerprint: str

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    @functools.cached_property
    def max_token_bytes(self) -> int:
        """An upper bound on the UTF-8 bytes one token stands for: a text of more characters than
        ``n * max_token_bytes`` has more than ``n`` tokens, whatever they are (no need to encode it)."""
        raise NotImplementedError


class HFCodec(Codec):
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        for token in (IM_START, IM_END):
            if token not in vocab:
                raise UserError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no {token} token; "
                                "ChatML rendering needs <|im_start|> and <|im_end|>")
        self.im_start, self.im_end = vocab[IM_START], vocab[IM_END]
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else vocab.get(ENDOFTEXT, self.im_end)
        self.fingerprint = _hf_fingerprint(tokenizer)

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    @functools.cached_property
    def max_token_bytes(self) -> int:
        # a vocabulary string is at most 4 UTF-8 bytes per character (byte-level BPE: 1 per byte)
        return 4 * max((len(token) for token in self.tokenizer.get_vocab()), default=1)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)


class TiktokenCodec(Codec):
    def __init__(self, encoding):
        self.encoding = encoding
        specials = encoding._special_tokens
        for token in (IM_START, IM_END):
            if token not in specials:
                raise UserError(f"tiktoken encoding {encoding.name!r} has no {token} special token")
        self.im_start, self.im_end = specials[IM_START], specials[IM_END]
        self.pad_id = specials.get(ENDOFTEXT, self.im_end)
        digest = hashlib.sha256(b"nfc\0" + encoding._pat_str.encode())  # NFC: encode_texts normalises first
        for token, rank in sorted(encoding._mergeable_ranks.items(), key=lambda item: item[1]):
            digest.update(token + b"\0")
        digest.update(repr(sorted(specials.items())).encode())
        self.fingerprint = "tiktoken:" + digest.hexdigest()

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        # encode_ordinary: special-token strings in the text are encoded as plain text. It releases
        # the GIL, so two threads over two halves use both cores (a future per text would cost more).
        # NFC first, as Qwen-1's QWenTokenizer (and the converted fast tokenizer's normalizer) do.
        def encode(text: str) -> list[int]:
            return self.encoding.encode_ordinary(unicodedata.normalize("NFC", text))
        if len(texts) < 256:
            return [encode(text) for text in texts]
        from concurrent.futures import ThreadPoolExecutor

        half = len(texts) // 2
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda part: [encode(text) for text in part], (texts[:half], texts[half:]))
        return first + second

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids)

    @functools.cached_property
    def max_token_bytes(self) -> int:
        return max((len(token) for token in self.encoding.token_byte_values()), default=1)


def _hf_fingerprint(tokenizer) -> str:
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:  # slow tokenizer: the vocabulary and a probe encoding stand in for the model
        digest.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(repr(tokenizer.encode("probe <|im_end|> \n 1234 éß", add_special_tokens=False)).encode())
    return "hf:" + digest.hexdigest()


def as_codec(tokenizer) -> Codec:
    if isinstance(tokenizer, Codec):
        return tokenizer
    if type(tokenizer).__module__.startswith("tiktoken"):
        return TiktokenCodec(tokenizer)
    inner = getattr(tokenizer, "tokenizer", None)
    if type(inner).__module__.startswith("tiktoken"):
        # Qwen-1's remote-code QWenTokenizer wraps a tiktoken Encoding and would turn literal
        # special-token strings into control tokens; encode through the Encoding itself
        return TiktokenCodec(inner)
    return HFCodec(tokenizer)


def load_tokenizer(directory: str | os.PathLike):
    """A tokenizer from a model directory: Qwen-1 (``qwen.tiktoken``) via tiktoken, else AutoTokenizer."""
    path = Path(directory)
    if not path.is_dir():
        raise UserError(f"tokenizer directory {directory} does not exist")
    if (path / "qwen.tiktoken").is_file():
        return qwen1_tiktoken(path / "qwen.tiktoken")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load a tokenizer from {directory}: {err}") from None
