"""Load any HF causal LM directory for training: dtype, optional 4/8-bit base, LoRA, checkpointing."""

from __future__ import annotations

import os

from mft_hpc.config.schema import Config

# MFTCoder's per-family LoRA targets (train.target_modules: family); llama-like families add k_proj,
# which the original forgot. "all-linear" (the default) is the same set for these families.
FAMILY_TARGETS = {
    "qwen": ["c_attn", "c_proj", "w1", "w2"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "chatglm": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt_bigcode": ["c_proj", "c_attn", "q_attn", "c_fc"],
    "baichuan": ["W_pack", "o_proj", "gate_proj", "down_proj", "up_proj"],
}


def load_tokenizer(config: Config):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(config.model.path, trust_remote_code=config.model.trust_remote_code)


def lora_targets(config: Config, model_type: str):
    targets = config.train.target_modules
    if targets == "family":
        if model_type not in FAMILY_TARGETS:
            from mft_hpc.errors import UserError

            raise UserError(f"train.target_modules: no module list for model type {model_type!r}; "
                            f"known: {', '.join(sorted(FAMILY_TARGETS))} (or use all-linear)")
        return FAMILY_TARGETS[model_type]
    return targets


def _quantization_config(config: Config, bf16: bool):
    import torch
    from transformers import BitsAndBytesConfig

    if config.train.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32)


def load_trainable_model(config: Config, bf16: bool, report: dict | None = None):
    """The model to train: the base (quantized for QLoRA) wrapped by LoRA unless peft is none.
    ``report`` (optional) receives the kernels chosen (``kernels.py``)."""
    import torch
    from transformers import AutoModelForCausalLM

    from mft_hpc.train.kernels import apply_liger, attn_implementation

    train = config.train
    kwargs = {"dtype": torch.bfloat16 if bf16 else torch.float32, "trust_remote_code": config.model.trust_remote_code}
    attn = attn_implementation(config, torch.cuda.is_available())
    if attn:
        kwargs["attn_implementation"] = attn
    if train.peft == "qlora":
        kwargs["quantization_config"] = _quantization_config(config, bf16)
        if torch.cuda.is_available():  # bnb quantizes while loading onto this rank's GPU
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    model = AutoModelForCausalLM.from_pretrained(config.model.path, **kwargs)
    # from_pretrained returns eval mode; an eval forward of a 4-bit layer on CPU repacks its weights
    # for inference and breaks training afterwards (bitsandbytes CPU bug), so switch now.
    model.train()
    model.config.use_cache = False
    liger = apply_liger(config, model)
    if report is not None:
        report.update({"attn_implementation": model.config._attn_implementation, "liger": liger})
    always_checkpoint = train.gradient_checkpointing is True  # "auto" is decided once the engine is built
    if train.peft == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=always_checkpoint,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    elif always_checkpoint:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if train.peft == "none":
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(task_type="CAUSAL_LM", r=train.lora_rank, lora_alpha=train.lora_alpha,
                      lora_dropout=train.lora_dropout, target_modules=lora_targets(config, model.config.model_type))
    return get_peft_model(model, lora)
