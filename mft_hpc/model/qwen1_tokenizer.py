"""Qwen-1's tiktoken BPE as a transformers fast tokenizer (tokenizer.json), ids unchanged.

transformers' ``TikTokenConverter`` turns tiktoken ranks into byte-level BPE merges (with
``ignore_merges``, so a whole pre-token in the vocabulary is one token, as in tiktoken). We give it
Qwen-1's pre-tokenizer pattern and add what Qwen-1's ``QWenTokenizer`` does around tiktoken: NFC
normalisation, and its 208 special tokens (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``,
``<|extra_0..204|>``) at ids 151643.. .
"""

from __future__ import annotations

import os

from mft_hpc.data.codec import QWEN1_PATTERN, QWEN1_SPECIALS, read_tiktoken_ranks
from mft_hpc.errors import UserError
from mft_hpc.model.tiny import CHATML_TEMPLATE
from mft_hpc.tasks.names import ENDOFTEXT, IM_END, IM_START


def build_qwen1_fast_tokenizer(vocab_file: str | os.PathLike, model_max_length: int = 8192):
    """A ``PreTrainedTokenizerFast`` equal to Qwen-1's tokenizer; eos and pad ``<|endoftext|>`` as in Qwen-1."""
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = read_tiktoken_ranks(vocab_file)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise UserError(f"{vocab_file}: ranks are not 0..{len(ranks) - 1} without gaps: not a Qwen-1 BPE file")

    class _Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(_url):
            return ranks

    backend = _Converter(vocab_file=str(vocab_file), pattern=QWEN1_PATTERN).converted()
    backend.normalizer = normalizers.NFC()
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in QWEN1_SPECIALS])
    first = len(ranks)
    for offset, token in enumerate(QWEN1_SPECIALS):
        if backend.token_to_id(token) != first + offset:
            raise RuntimeError(f"{token} got id {backend.token_to_id(token)}, expected {first + offset}")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=ENDOFTEXT, pad_token=ENDOFTEXT, bos_token=None, unk_token=None,
        additional_special_tokens=[IM_START, IM_END], model_max_length=model_max_length,
        padding_side="right", chat_template=CHATML_TEMPLATE, clean_up_tokenization_spaces=False,
    )
