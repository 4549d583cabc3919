from __future__ import annotations

from typing import Literal

from pydantic import Field

from mft_hpc.config.sections.base import Section


class TrainSection(Section):
    enabled: bool = True
    peft: Literal["lora", "qlora", "none"] = "lora"
    quantization: Literal["4bit", "8bit"] = Field("4bit", description="QLoRA base weights (peft: qlora only)")
    lora_rank: int = Field(64, gt=0)
    lora_alpha: int = Field(128, gt=0)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear", "family"] = Field(
        "all-linear", description="all-linear, family (the model family's MFTCoder list) or explicit module names")
    learning_rate: float = Field(2e-4, gt=0)
    min_lr: float = Field(1e-5, ge=0)
    warmup_steps: int = Field(30, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float = Field(1.0, gt=0)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; default: epochs x steps per epoch")
    micro_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    loss_mode: Literal["case3", "task_weights", "coba"] = "case3"
    task_weights: dict[str, float] = Field(default_factory=dict, description="loss weight per task (loss_mode: task_weights)")
    coba_history: int = Field(4, ge=2, description="CoBa: validation points the slopes are fitted over")
    coba_temperature: float = Field(5.0, gt=0, description="CoBa: softmax temperature of the task weights")
    log_steps: int = Field(10, ge=1)
    eval_steps: int = Field(100, ge=1)
    eval_max_batches: int | None = Field(None, ge=1, description="cap on validation micro-batches per rank and evaluation")
    save_steps: int = Field(100, ge=1)
    keep_last: int = Field(2, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    zero_stage: Literal[0, 1, 2, 3] = 2
    offload_optimizer: bool = False
    bf16: bool | None = Field(None, description="default: on GPU yes, on CPU no")
    gradient_checkpointing: bool | Literal["auto"] = Field(
        "auto", description="auto: checkpoint only as many decoder layers as the measured activation memory needs")
    attn_implementation: str | None = Field(
        None, description="sdpa, eager, torch_varlen, flash_attention_2/3, flex_attention; default: torch_varlen "
                          "for data.mode pack on a GPU, else the model's")
    liger: bool | None = Field(None, description="Liger RMSNorm/SwiGLU/RoPE + fused linear-CE; default: when "
                                                 "installed and on CUDA")
    tf32: bool = Field(True, description="TF32 matmuls for fp32 pieces on GPU")
    mfu_peak_tflops: float | None = Field(None, gt=0, description="MFU denominator per GPU; default: the GPU's "
                                                                  "bf16 dense peak")
    merge_dtype: Literal["bf16", "fp32"] = "bf16"
    seed: int = 42
    deepspeed: dict = Field(default_factory=dict, description="overrides merged into the generated DeepSpeed config")
