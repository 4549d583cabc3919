"""Model FLOPs of a LoRA/QLoRA training step and MFU against the device's bf16 dense peak.

Per useful (non-pad) token, a weight matrix costs 2 FLOPs per parameter forward and 2 backward for the
input gradient; only trainable weights also cost 2 for their own gradient: 6 x trainable + 4 x frozen.
Parameters are counted as the model really has them: a 4-bit QLoRA weight by its unpacked shape
(bitsandbytes stores two values per byte). The input embedding is a lookup (no FLOPs); the LM head is
counted on the supervised tokens only (the tokens the loss needs; logits elsewhere are wasted work).
Causal attention adds 4 x hidden FLOPs per (query, key) pair forward and twice that backward, over the
pairs inside each sample. Recomputation by gradient checkpointing is not useful work and is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# dense (no sparsity) bf16 peak FLOP/s per device, from the vendors' data sheets
PEAK_BF16_DENSE = {"H200": 989e12, "H100": 989e12, "H800": 989e12, "GH200": 989e12, "B200": 2250e12,
                   "A100": 312e12, "A800": 312e12, "L40S": 362e12, "A10": 125e12, "V100": 125e12}


def peak_flops(configured_tflops: float | None = None) -> float | None:
    """FLOP/s to divide by: the configured value, else the GPU's bf16 dense peak (None: unknown/CPU)."""
    if configured_tflops:
        return configured_tflops * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_BF16_DENSE.items() if key in name), None)


def real_numel(param: torch.Tensor) -> int:
    """Parameters a tensor stands for: a bitsandbytes 4-bit weight by its original shape."""
    quant_state = getattr(param, "quant_state", None)
    shape = getattr(quant_state, "shape", None)
    if shape is not None:
        return int(math.prod(shape))
    return param.numel()


@dataclass(frozen=True)
class ModelFlops:
    trainable: int  # parameters with gradients (LoRA adapters), real count
    frozen: int  # frozen matmul weights and norms (no embedding, no LM head), real count
    head: int  # LM head weights (vocab x hidden)
    layers: int
    hidden: int

    @classmethod
    def of(cls, model) -> "ModelFlops":
        from mft_hpc.train.unwrap import hf_model

        inner = hf_model(model)
        skip = {id(p) for module in (inner.get_input_embeddings(), inner.get_output_embeddings())
                if module is not None for p in module.parameters()}
        head = inner.get_output_embeddings()
        trainable = frozen = 0
        for param in model.parameters():
            if id(param) in skip:
                continue
            if param.requires_grad:
                trainable += real_numel(param)
            else:
                frozen += real_numel(param)
        return cls(trainable=trainable, frozen=frozen, head=real_numel(head.weight) if head is not None else 0,
                   layers=inner.config.num_hidden_layers, hidden=inner.config.hidden_size)

    @property
    def total_params(self) -> int:
        return self.trainable + self.frozen + self.head

    def step_flops(self, tokens: int, supervised: int, attention_pairs: int) -> float:
        """Useful FLOPs of forward + backward over ``tokens`` real tokens."""
        dense = (6 * self.trainable + 4 * self.frozen) * tokens
        head = 4 * self.head * supervised
        attention = 12 * self.layers * self.hidden * attention_pairs
        return float(dense + head + attention)


def causal_pairs(lengths) -> int:
    """(query, key) pairs of causal attention inside samples of these lengths."""
    return int(sum(n * (n + 1) // 2 for n in lengths))


def batch_sample_lengths(batch: dict) -> list[int]:
    """Real sample lengths of a collated micro-batch (pack: each segment; padding: each row)."""
    real = batch["attention_mask"].bool()
    if "segment_ids" not in batch:
        return real.sum(dim=1).tolist()
    lengths = []
    for row, mask in zip(batch["segment_ids"], real):
        lengths += torch.unique_consecutive(row[mask], return_counts=True)[1].tolist()
    return lengths


def mfu(flops: float, seconds: float, peak: float | None, world_size: int = 1) -> float | None:
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / (peak * world_size)
