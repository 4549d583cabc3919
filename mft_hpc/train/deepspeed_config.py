"""The DeepSpeed config generated from the ``train`` section, with ``train.deepspeed`` merged on top.

Batch sizes and accumulation are explicit (never "auto") so the config does not depend on how
accelerate discovers the world size; on CPU the optimizer stays torch AdamW (no cpu_adam JIT build).
"""

from __future__ import annotations

import copy
from typing import Any

from mft_hpc.config.sections.train import TrainSection


def deep_merge(base: dict, overrides: dict) -> dict:
    """``overrides`` merged into a copy of ``base``; nested dicts merge key by key."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_deepspeed_config(train: TrainSection, world_size: int, bf16: bool) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": train.zero_stage, "overlap_comm": False, "contiguous_gradients": True}
    if train.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
    config = {
        "train_micro_batch_size_per_gpu": train.micro_batch_size,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "train_batch_size": train.micro_batch_size * train.gradient_accumulation_steps * world_size,
        "gradient_clipping": train.max_grad_norm,
        # keep the torch AdamW we pass in, also with offload: DeepSpeedCPUAdam needs a C++ JIT build
        "zero_force_ds_cpu_optimizer": False,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "fp16": {"enabled": False},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    return deep_merge(config, train.deepspeed)
