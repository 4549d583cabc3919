"""Build a tiny Qwen2 causal LM with a trained byte-level BPE and the ChatML special tokens.

The HF Hub is not reachable from tests, CI or the demo, so the model and tokenizer are made
locally: a BPE trained on Python's standard library sources with Qwen2's normalizer and
pre-tokenizer (so AutoTokenizer, which rebuilds Qwen2Tokenizer, gives the same ids) and a
randomly initialised 2-layer Qwen2.
"""

from __future__ import annotations

import glob
import os
import sysconfig
from pathlib import Path

from mft_hpc.rundir import is_done, mark_done

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2
QWEN2_PRETOKENIZE_RE = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_chatml_tokenizer(vocab_size: int = 1024, max_length: int = 2048, n_files: int = 60):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))[:n_files]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train(files, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None,
        unk_token=None, additional_special_tokens=["<|im_start|>"], model_max_length=max_length,
        padding_side="right", chat_template=CHATML_TEMPLATE,
    )


# Texts whose last token ends generations in the harness's ways: eos, <|endoftext|>, a closing brace
# (brace rule), a newline before a column-0 line (indent rule) or a stop word.
STOP_TEXTS = ("<|im_end|>", "<|endoftext|>", "}", "\n", "\ndef", "\nclass")


def emphasize_stop_tokens(model, tokenizer, scale: float) -> list[int]:
    """Scale the output embeddings of STOP_TEXTS' tokens so a random model emits them often and its
    outputs end in every way the harness stops, not only at the token cap; returns their ids."""
    import torch

    ids = sorted({tokenizer(text, add_special_tokens=False)["input_ids"][-1] for text in STOP_TEXTS})
    with torch.no_grad():
        model.get_output_embeddings().weight[ids] *= scale
    return ids


def build_tiny_qwen2(out_dir: str | os.PathLike, *, hidden_size: int = 64, layers: int = 2, heads: int = 4,
                     kv_heads: int = 2, vocab_size: int = 1024, max_positions: int = 2048, seed: int = 0,
                     stop_token_scale: float | None = None) -> Path:
    """Write a tiny Qwen2 model + ChatML tokenizer to ``out_dir`` (skipped if already done).

    The default head size is 16; vLLM's CPU attention needs 64 or more (``hidden_size=128, heads=2``).
    ``stop_token_scale`` (e.g. 2.0): see emphasize_stop_tokens."""
    out = Path(out_dir)
    if is_done(out):
        return out
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_chatml_tokenizer(vocab_size=vocab_size, max_length=max_positions)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions, tie_word_embeddings=True,
        # 0.02 (the default) leaves logits too small for LoRA to learn quickly on a tiny model
        initializer_range=0.2, bos_token_id=None, eos_token_id=2, pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 0
    if stop_token_scale is not None:
        emphasize_stop_tokens(model, tokenizer, stop_token_scale)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    mark_done(out, {"kind": "tiny-qwen2", "hidden_size": hidden_size, "layers": layers, "heads": heads,
                    "stop_token_scale": stop_token_scale})
    return out
