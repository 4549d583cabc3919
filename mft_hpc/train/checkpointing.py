"""``train.gradient_checkpointing``: true, false, or ``auto`` — checkpoint only as many decoder
layers as the measured activation memory requires.

The estimate is measured, not modelled: one forward of a synthetic micro-batch of the configured
shape (``micro_batch_size`` x ``seq_length``, packed like real rows) through the real model and loss,
truncated to 1 and then 2 decoder layers, counts the bytes autograd saves for backward
(``saved_tensors_hooks``; parameters and shared storages counted once and not at all). That gives
the bytes per layer and the fixed part (embeddings, norm, head + loss). With k of L layers
checkpointed (the first k) the peak is about

    fixed + k * boundary + max(L - k, 1 if k else 0) * per_layer

(``boundary`` = the layer input a checkpointed layer keeps; backward frees the kept layers before it
recomputes a checkpointed one, so one recomputed layer is live at a time). The budget is the free device memory now (after the model and engine
are set up) minus what the first optimizer step still allocates (Adam moments, gradients) and a
reserve; on CPU, the available system memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

RESERVE_FRACTION = 0.10  # of total device memory: allocator fragmentation, kernels' workspaces
RESERVE_BYTES = 2 * 2**30


@dataclass(frozen=True)
class ActivationEstimate:
    per_layer: int  # bytes saved for backward by one decoder layer
    fixed: int  # embeddings, final norm, LM head + loss on the supervised tokens
    boundary: int  # bytes a checkpointed layer keeps (its input hidden states)
    layers: int

    def peak(self, checkpointed: int) -> int:
        # backward frees the last (kept) layers before it recomputes the first (checkpointed) ones,
        # so a recomputed layer never coexists with the kept layers' activations
        live_layers = max(self.layers - checkpointed, 1 if checkpointed else 0)
        return self.fixed + checkpointed * self.boundary + live_layers * self.per_layer


def synthetic_batch(micro_batch_size: int, seq_length: int, vocab: int, packed: bool, seed: int = 0) -> dict:
    """Rows of ``seq_length`` tokens (pack mode: eight samples a row), half of each sample supervised."""
    generator = torch.Generator().manual_seed(seed)
    shape = (micro_batch_size, seq_length)
    pieces = 8 if packed and seq_length >= 16 else 1
    length = seq_length // pieces
    segment_ids = torch.clamp(torch.arange(seq_length) // length, max=pieces - 1).expand(shape).contiguous()
    starts = torch.searchsorted(segment_ids[0], segment_ids[0], right=False)
    position_ids = (torch.arange(seq_length) - starts).expand(shape).contiguous()
    loss_mask = (position_ids >= length // 2).long()
    batch = {"input_ids": torch.randint(3, vocab, shape, generator=generator), "loss_mask": loss_mask,
             "position_ids": position_ids, "attention_mask": torch.ones(shape, dtype=torch.long),
             "task_ids": torch.zeros(micro_batch_size, dtype=torch.long)}
    if packed:
        batch["segment_ids"] = segment_ids
    return batch


def _saved_bytes(model, batch: dict) -> int:
    """Bytes of the distinct non-parameter storages autograd saves in one forward of ``batch``."""
    from mft_hpc.data import model_inputs
    from mft_hpc.train.loss import supervised_token_losses
    from mft_hpc.train.unwrap import hf_model

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        losses, _ = supervised_token_losses(model, model_inputs(batch, hf_model(model)), batch["input_ids"],
                                            batch["loss_mask"])
    del losses
    return sum(seen.values())


def measure_activations(model, micro_batch_size: int, seq_length: int, packed: bool) -> ActivationEstimate:
    """Run the real forward (+ loss) with 1 and 2 decoder layers and difference the saved bytes."""
    from mft_hpc.train.unwrap import hf_model

    inner = hf_model(model)
    config = inner.config
    layers = config.num_hidden_layers
    batch = synthetic_batch(micro_batch_size, seq_length, config.vocab_size, packed)
    flags = _layer_flags(inner)
    set_checkpointed_layers(inner, 0)
    was_training = inner.training
    inner.train()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    # dropout draws random numbers: measure on a forked RNG so training sees the same stream as without it
    with torch.random.fork_rng(devices=devices):
        try:  # the model iterates over layers[:num_hidden_layers]
            config.num_hidden_layers = 1
            one = _saved_bytes(model, batch)
            config.num_hidden_layers = min(2, layers)
            two = _saved_bytes(model, batch)
        finally:
            config.num_hidden_layers = layers
            for layer, flag in zip(_checkpoint_layers(inner), flags):
                layer.gradient_checkpointing = flag
            inner.train(was_training)
    per_layer = max(two - one, 0) if layers > 1 else one
    boundary = micro_batch_size * seq_length * config.hidden_size * inner.dtype.itemsize
    return ActivationEstimate(per_layer=per_layer, fixed=max(one - per_layer, 0), boundary=boundary, layers=layers)


def plan(estimate: ActivationEstimate, budget: int) -> int:
    """The fewest checkpointed layers whose peak fits ``budget`` (all layers if none does)."""
    for checkpointed in range(estimate.layers + 1):
        if estimate.peak(checkpointed) <= budget:
            return checkpointed
    return estimate.layers


def memory_budget(trainable_params: int, world_size: int) -> int:
    """Bytes the activations may use: free memory now minus what the first optimizer step allocates."""
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        # not yet allocated before the first step: fp32 Adam moments (ZeRO partitions them) and the
        # bf16 gradients plus their fp32 partition
        pending = trainable_params * (8 + 4) // max(world_size, 1) + trainable_params * 2
        return int(free - pending - RESERVE_FRACTION * total - RESERVE_BYTES)
    import psutil

    return int(psutil.virtual_memory().available * (1 - RESERVE_FRACTION))


def _checkpoint_layers(model) -> list:
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [module for module in model.modules() if isinstance(module, GradientCheckpointingLayer)]


def _layer_flags(model) -> list[bool]:
    return [bool(layer.gradient_checkpointing) for layer in _checkpoint_layers(model)]


def set_checkpointed_layers(model, count: int) -> None:
    """Checkpoint the first ``count`` decoder layers (non-reentrant), none of the others."""
    if count and not hasattr(_checkpoint_layers(model)[0], "_gradient_checkpointing_func"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    for index, layer in enumerate(_checkpoint_layers(model)):
        layer.gradient_checkpointing = index < count


def decide(model, micro_batch_size: int, seq_length: int, packed: bool, world_size: int) -> dict:
    """Measure, plan and apply ``auto``; returns the decision (logged with the run's metrics)."""
    from mft_hpc.train.unwrap import hf_model

    inner = hf_model(model)
    estimate = measure_activations(model, micro_batch_size, seq_length, packed)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    budget = memory_budget(trainable, world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():  # every rank decides the same
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None
        agreed = torch.tensor([float(budget)], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MIN)
        budget = int(agreed.item())
    checkpointed = plan(estimate, budget)
    set_checkpointed_layers(inner, checkpointed)
    gib = 2**30
    return {"checkpointed_layers": checkpointed, "layers": estimate.layers,
            "activation_gib_per_layer": round(estimate.per_layer / gib, 4),
            "activation_gib_fixed": round(estimate.fixed / gib, 4),
            "estimated_peak_gib": round(estimate.peak(checkpointed) / gib, 3),
            "budget_gib": round(budget / gib, 3), "estimate": asdict(estimate)}



def decide_checkpointing(config, model, world_size: int) -> dict:
    """``train.gradient_checkpointing`` for the built engine: true/false as set, ``auto`` measured."""
    from mft_hpc.train.unwrap import hf_model

    setting = config.train.gradient_checkpointing
    layers = hf_model(model).config.num_hidden_layers
    if setting != "auto":
        return {"setting": setting, "checkpointed_layers": layers if setting else 0, "layers": layers}
    decision = decide(model, config.train.micro_batch_size, config.data.seq_length, config.data.mode == "pack",
                      world_size)
    return {"setting": "auto", **decision}
