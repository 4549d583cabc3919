"""What a Qwen-1 checkpoint is and how it maps, exactly, onto transformers' native Qwen2.

Qwen-1 (``model_type: qwen``, remote code, ``qwen.tiktoken``) is Qwen2's architecture with other
names: the fused ``c_attn`` (with bias) splits into q/k/v (with bias) by output rows, the MLP
``c_proj(w1(x) * silu(w2(x)))`` is Qwen2's ``down(up(x) * silu(gate(x)))`` with gate = w2 and
up = w1, and its ``intermediate_size`` counts both halves. Dynamic NTK and log-n attention scaling
only act beyond ``seq_length`` tokens, so the native model is exact up to ``seq_length``, which
becomes its ``max_position_embeddings``. Anything else we refuse rather than convert approximately.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.errors import UserError

TIKTOKEN_FILE = "qwen.tiktoken"
# QWenConfig's defaults (configuration_qwen.py): a key missing from config.json takes these
QWEN1_DEFAULTS = {
    "vocab_size": 151936, "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "emb_dropout_prob": 0.0, "attn_dropout_prob": 0.0, "layer_norm_epsilon": 1e-6, "initializer_range": 0.02,
    "max_position_embeddings": 8192, "kv_channels": 128, "rotary_pct": 1.0, "rotary_emb_base": 10000,
    "use_dynamic_ntk": True, "use_logn_attn": True, "intermediate_size": 22016, "no_bias": True,
    "tie_word_embeddings": False, "use_cache_quantization": False,
}
# non-persistent buffers some Qwen-1 checkpoints carry; they hold no weights
IGNORED_SUFFIXES = (".attn.rotary_emb.inv_freq", ".rotary_emb.inv_freq", ".attn.masked_bias", ".attn.bias")
SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def is_qwen1_dir(path: str | Path) -> bool:
    """A Qwen-1 checkpoint: config.json says ``model_type: qwen`` (the published remote-code layout)."""
    config = Path(path) / "config.json"
    try:
        return json.loads(config.read_text()).get("model_type") == "qwen"
    except (OSError, ValueError, AttributeError):
        return False


@dataclass(frozen=True)
class Qwen1Shape:
    """The Qwen-1 hyper-parameters the conversion depends on (validated)."""

    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    mlp_width: int          # Qwen-1 intermediate_size / 2: the width of w1, w2 and c_proj's input
    rms_eps: float
    rope_theta: float
    max_positions: int
    attention_dropout: float
    initializer_range: float

    def expected_tensors(self) -> dict[str, tuple[int, ...]]:
        """Every Qwen-1 parameter name and its shape."""
        h, shapes = self.hidden_size, {}
        shapes["transformer.wte.weight"] = (self.vocab_size, h)
        for i in range(self.layers):
            p = f"transformer.h.{i}."
            shapes.update({
                p + "ln_1.weight": (h,), p + "attn.c_attn.weight": (3 * h, h), p + "attn.c_attn.bias": (3 * h,),
                p + "attn.c_proj.weight": (h, h), p + "ln_2.weight": (h,),
                p + "mlp.w1.weight": (self.mlp_width, h), p + "mlp.w2.weight": (self.mlp_width, h),
                p + "mlp.c_proj.weight": (h, self.mlp_width),
            })
        shapes["transformer.ln_f.weight"] = (h,)
        shapes["lm_head.weight"] = (self.vocab_size, h)
        return shapes

    def qwen2_config(self, dtype: str, eos_id: int | None) -> dict:
        """The native ``Qwen2ForCausalLM`` config.json for this shape.

        No ``pad_token_id``: Qwen2 would make it the embedding's padding_idx (a row without
        gradient), which Qwen-1's embedding does not have; padding lives in the generation config.
        """
        from transformers import Qwen2Config

        config = Qwen2Config(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.mlp_width,
            num_hidden_layers=self.layers, num_attention_heads=self.heads, num_key_value_heads=self.heads,
            hidden_act="silu", max_position_embeddings=self.max_positions, rms_norm_eps=self.rms_eps,
            rope_parameters={"rope_type": "default", "rope_theta": float(self.rope_theta)},
            tie_word_embeddings=False, use_sliding_window=False, attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range, bos_token_id=None, eos_token_id=eos_id, pad_token_id=None,
            architectures=["Qwen2ForCausalLM"], dtype=dtype,
        )
        return config.to_dict()


def qwen2_tensors(shape: Qwen1Shape, name: str) -> list[tuple[str, int, int]]:
    """Native (name, first row, end row) pieces of the Qwen-1 tensor ``name`` (rows of dim 0)."""
    h = shape.hidden_size
    if name == "transformer.wte.weight":
        return [("model.embed_tokens.weight", 0, shape.vocab_size)]
    if name == "transformer.ln_f.weight":
        return [("model.norm.weight", 0, h)]
    if name == "lm_head.weight":
        return [("lm_head.weight", 0, shape.vocab_size)]
    _, _, layer, rest = name.split(".", 3)
    p = f"model.layers.{layer}."
    if rest in ("attn.c_attn.weight", "attn.c_attn.bias"):
        kind = rest.rsplit(".", 1)[1]
        return [(p + f"self_attn.{proj}.{kind}", k * h, (k + 1) * h) for k, proj in enumerate(("q_proj", "k_proj", "v_proj"))]
    simple = {"ln_1.weight": ("input_layernorm.weight", h), "ln_2.weight": ("post_attention_layernorm.weight", h),
              "attn.c_proj.weight": ("self_attn.o_proj.weight", h), "mlp.w1.weight": ("mlp.up_proj.weight", shape.mlp_width),
              "mlp.w2.weight": ("mlp.gate_proj.weight", shape.mlp_width), "mlp.c_proj.weight": ("mlp.down_proj.weight", h)}
    native, rows = simple[rest]
    return [(p + native, 0, rows)]


def read_qwen1_config(src: Path) -> tuple[dict, Qwen1Shape]:
    """config.json of a Qwen-1 checkpoint, validated; every problem as ``file: key: reason``, exit 2."""
    path = src / "config.json"
    if not src.is_dir():
        raise UserError(f"{src}: not a directory")
    if not path.is_file():
        raise UserError(f"{src}: not a model directory (no config.json)")
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: not a JSON object")
    if raw.get("model_type") != "qwen":
        raise UserError(f"{path}: model_type: {raw.get('model_type')!r} is not a Qwen-1 checkpoint "
                        "(model_type: qwen); other models need no import")
    cfg = {**QWEN1_DEFAULTS, **raw}
    problems = []

    def refuse(key: str, reason: str) -> None:
        problems.append(f"{path}: {key}: {reason}")

    ints = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "kv_channels", "intermediate_size")
    for key in ints:
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] <= 0:
            refuse(key, f"must be a positive integer (got {cfg[key]!r})")
    if problems:
        raise UserError("\n".join(problems))
    if cfg["rotary_pct"] != 1.0:
        refuse("rotary_pct", f"{cfg['rotary_pct']} is not supported: Qwen2 rotates the whole head (rotary_pct 1.0)")
    if cfg["hidden_size"] % cfg["num_attention_heads"] or cfg["kv_channels"] * cfg["num_attention_heads"] != cfg["hidden_size"]:
        refuse("kv_channels", f"{cfg['kv_channels']} x {cfg['num_attention_heads']} heads must equal hidden_size "
                              f"{cfg['hidden_size']} (Qwen-1's attention assumes it)")
    if cfg["intermediate_size"] % 2:
        refuse("intermediate_size", f"{cfg['intermediate_size']} must be even (w1 and w2 are each half of it)")
    if cfg["no_bias"] is not True:
        refuse("no_bias", "only no_bias: true maps to Qwen2 (biases on c_proj and the MLP have no native place)")
    if cfg["tie_word_embeddings"]:
        refuse("tie_word_embeddings", "tied embeddings are not a published Qwen-1 layout")
    if cfg["emb_dropout_prob"]:
        refuse("emb_dropout_prob", f"{cfg['emb_dropout_prob']}: Qwen2 has no embedding dropout")
    if cfg["use_cache_quantization"]:
        refuse("use_cache_quantization", "quantized KV cache has no Qwen2 equivalent")
    scaled = bool(cfg["use_dynamic_ntk"] or cfg["use_logn_attn"])
    seq_length = cfg.get("seq_length")
    if not scaled:
        pass
    elif not isinstance(seq_length, int) or isinstance(seq_length, bool) or seq_length <= 0:
        refuse("seq_length", f"must be a positive integer (got {seq_length!r}): it is where Qwen-1's "
                             "dynamic NTK / log-n scaling starts")
    elif cfg["max_position_embeddings"] > seq_length:
        refuse("seq_length", f"{seq_length} is below max_position_embeddings {cfg['max_position_embeddings']}: "
                             "beyond seq_length Qwen-1 rescales attention (dynamic NTK / log-n), which Qwen2 does not")
    for key in ("layer_norm_epsilon", "rotary_emb_base"):
        if not isinstance(cfg[key], (int, float)) or isinstance(cfg[key], bool) or cfg[key] <= 0:
            refuse(key, f"must be a positive number (got {cfg[key]!r})")
    if problems:
        raise UserError("\n".join(problems))
    shape = Qwen1Shape(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], layers=cfg["num_hidden_layers"],
        heads=cfg["num_attention_heads"], mlp_width=cfg["intermediate_size"] // 2,
        rms_eps=float(cfg["layer_norm_epsilon"]), rope_theta=float(cfg["rotary_emb_base"]),
        max_positions=seq_length if scaled else cfg["max_position_embeddings"],
        attention_dropout=float(cfg["attn_dropout_prob"]), initializer_range=float(cfg["initializer_range"]),
    )
    return raw, shape
