"""What decoding settings apply: ours (greedy, harness length rule), never silently the checkpoint's.

The harness lets the checkpoint's generation_config.json leak in (``max_new_tokens`` overriding
``max_length``, ``repetition_penalty``, ...). We build the generation config from scratch and log
every value of the checkpoint's config that we do not apply, so nothing changes silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mft_hpc.config.sections.generate import GenerateSection

log = logging.getLogger(__name__)

# Keys of a checkpoint generation_config that would change greedy decoding or its length.
_IGNORED_KEYS = ("max_new_tokens", "max_length", "min_new_tokens", "min_length", "repetition_penalty",
                 "no_repeat_ngram_size", "do_sample", "temperature", "top_p", "top_k", "num_beams")


@dataclass(frozen=True)
class DecodeSettings:
    max_length: int             # prompt + generated tokens (harness: 2000)
    max_new_tokens: int | None  # optional extra cap
    eos_ids: frozenset[int]     # native stop ids: the checkpoint's eos plus the eos text's id
    pad_id: int

    def budget(self, prompt_tokens: int) -> int:
        """New tokens allowed for a prompt of this length."""
        budget = self.max_length - prompt_tokens
        if self.max_new_tokens is not None:
            budget = min(budget, self.max_new_tokens)
        return max(budget, 0)


def _as_set(value) -> set[int]:
    if value is None:
        return set()
    return {int(v) for v in (value if isinstance(value, (list, tuple)) else [value])}


def decode_settings(model_generation_config, tokenizer, gen_cfg: GenerateSection) -> DecodeSettings:
    eos_text_id = tokenizer.convert_tokens_to_ids(gen_cfg.eos)
    if eos_text_id is None or eos_text_id == tokenizer.unk_token_id:
        log.warning("eos text %r is not a token of this tokenizer: it stops generation only as a stop word", gen_cfg.eos)
        eos_text_id = None
    eos_ids = _as_set(getattr(model_generation_config, "eos_token_id", None)) | _as_set(eos_text_id)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eos_text_id if eos_text_id is not None else min(eos_ids, default=0)
    for key in _IGNORED_KEYS:
        value = getattr(model_generation_config, key, None)
        if value is not None and value != _DEFAULTS.get(key):
            log.warning("checkpoint generation_config %s=%r is NOT applied (greedy, harness length rule)", key, value)
    settings = DecodeSettings(gen_cfg.max_length_generation, gen_cfg.max_new_tokens, frozenset(eos_ids), int(pad_id))
    log.info("decoding: greedy (do_sample=False, num_beams=1, num_return_sequences=1), max_length=%d "
             "(prompt + new tokens), max_new_tokens=%s, eos ids=%s, pad id=%d", settings.max_length,
             settings.max_new_tokens, sorted(settings.eos_ids), settings.pad_id)
    return settings


# transformers' own defaults: a value equal to these is not a checkpoint choice worth a warning
_DEFAULTS = {"max_length": 20, "min_length": 0, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
             "do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 50, "num_beams": 1}
