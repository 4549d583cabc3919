"""Build tiny offline models: Qwen2 + a trained ChatML BPE, and Qwen-1 in its published layout.

The HF Hub is not reachable from tests, CI or the demo, so the model and tokenizer are made
locally: a BPE trained on Python's standard library sources with Qwen2's normalizer and
pre-tokenizer (so AutoTokenizer, which rebuilds Qwen2Tokenizer, gives the same ids) and a
randomly initialised 2-layer Qwen2. The tiny Qwen-1 (random weights, the real ``qwen.tiktoken``)
exercises the Qwen-1 import path end to end.
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


def qwen1_tiktoken_file() -> Path:
    """Qwen's real ``qwen.tiktoken``, as shipped inside the dashscope package (a dev dependency)."""
    import dashscope

    return Path(dashscope.__file__).parent / "resources" / "qwen.tiktoken"


def build_tiny_qwen1(out_dir: str | os.PathLike, *, hidden_size: int = 64, layers: int = 2, heads: int = 4,
                     vocab_size: int = 151936, seq_length: int = 8192, seed: int = 0) -> Path:
    """Write a tiny random Qwen-1 checkpoint in the published layout, with the real ``qwen.tiktoken``.

    Same names and config keys as the published Qwen-1.8B (``model_type: qwen``, fused ``c_attn``
    with bias, ``w1``/``w2``/``c_proj``, ``intermediate_size`` = 2 x MLP width, fp32), the fixture's
    shape, and Qwen-1's padded vocabulary so every id of the real tokenizer has an embedding. The
    remote-code files are not included: the importer does not need them.
    """
    out = Path(out_dir)
    if is_done(out):
        return out
    import json
    import shutil

    import torch
    from safetensors.torch import save_file

    mlp = 2 * hidden_size
    config = {
        "architectures": ["QWenLMHeadModel"], "model_type": "qwen", "tokenizer_class": "QWenTokenizer",
        "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig", "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
        "vocab_size": vocab_size, "hidden_size": hidden_size, "num_hidden_layers": layers, "num_attention_heads": heads,
        "kv_channels": hidden_size // heads, "intermediate_size": 2 * mlp, "layer_norm_epsilon": 1e-6,
        "rotary_emb_base": 10000, "rotary_pct": 1.0, "seq_length": seq_length, "max_position_embeddings": seq_length,
        "use_dynamic_ntk": True, "use_logn_attn": True, "use_flash_attn": "auto", "no_bias": True,
        "emb_dropout_prob": 0.0, "attn_dropout_prob": 0.0, "initializer_range": 0.02, "scale_attn_weights": True,
        "tie_word_embeddings": False, "bf16": False, "fp16": False, "fp32": True, "torch_dtype": "float32",
    }
    torch.manual_seed(seed)

    def normal(*shape):  # 0.2: large enough for LoRA to learn quickly on a tiny model (as build_tiny_qwen2)
        return torch.randn(*shape) * 0.2

    tensors = {"transformer.wte.weight": normal(vocab_size, hidden_size), "lm_head.weight": normal(vocab_size, hidden_size),
               "transformer.ln_f.weight": torch.ones(hidden_size)}
    for i in range(layers):
        p = f"transformer.h.{i}."
        tensors.update({
            p + "ln_1.weight": torch.ones(hidden_size), p + "ln_2.weight": torch.ones(hidden_size),
            p + "attn.c_attn.weight": normal(3 * hidden_size, hidden_size), p + "attn.c_attn.bias": normal(3 * hidden_size),
            p + "attn.c_proj.weight": normal(hidden_size, hidden_size), p + "mlp.w1.weight": normal(mlp, hidden_size),
            p + "mlp.w2.weight": normal(mlp, hidden_size), p + "mlp.c_proj.weight": normal(hidden_size, mlp),
        })
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(json.dumps({
        "chat_format": "chatml", "eos_token_id": 151643, "pad_token_id": 151643, "max_window_size": 6144,
        "max_new_tokens": 512, "do_sample": True, "top_k": 0, "top_p": 0.8, "repetition_penalty": 1.1}, indent=2))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "model_max_length": seq_length, "tokenizer_class": "QWenTokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_qwen.QWenTokenizer", None]}}, indent=2))
    shutil.copyfile(qwen1_tiktoken_file(), out / "qwen.tiktoken")
    mark_done(out, {"kind": "tiny-qwen1", "hidden_size": hidden_size, "layers": layers})
    return out
