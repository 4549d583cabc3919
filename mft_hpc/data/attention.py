"""`model_inputs`: forward kwargs that keep packed samples from attending to each other.

transformers 5.x returns a 4D ``attention_mask`` as-is (masking_utils._preprocess_mask_arguments),
so for sdpa a boolean [B,1,T,T] mask (True = attend) and for eager an additive float mask realise
the block-diagonal causal pattern. flash-attention gets no mask: with ``attention_mask=None``,
``use_cache=False`` and position ids restarting at 0 per sample, transformers derives the varlen
cu_seqlens from the position ids (the same derivation is checked on sdpa in the tests; flash
itself needs a GPU). flex_attention is refused in pack mode: on CPU (torch 2.13) it gave wrong
logits for packed rows and crashed with a 4D mask.
"""

from __future__ import annotations

import torch

from mft_hpc.errors import UserError


def block_causal_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """Bool[B,1,T,T]: query t sees key s iff s <= t and both are in the same segment."""
    width = segment_ids.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    return (same & causal)[:, None]


def hf_config(model):
    """The transformers config of a model that may be wrapped (DDP/DeepSpeed ``.module``, PEFT)."""
    from transformers import PretrainedConfig

    seen = model
    for _ in range(4):
        config = getattr(seen, "config", None)
        if isinstance(config, PretrainedConfig):
            return config
        seen = getattr(seen, "module", None) or getattr(seen, "model", None)
        if seen is None:
            break
    raise TypeError(f"cannot find a transformers config on {type(model).__name__}")


def _float_dtype(model) -> torch.dtype:
    dtype = getattr(model, "dtype", torch.float32)
    return dtype if isinstance(dtype, torch.dtype) and dtype.is_floating_point else torch.float32


def model_inputs(batch: dict[str, torch.Tensor], model) -> dict:
    """Kwargs for ``model(**kwargs)``; tensors are moved to the model's device."""
    device = getattr(model, "device", None)
    move = (lambda t: t.to(device, non_blocking=True)) if device is not None else (lambda t: t)
    kwargs = {"input_ids": move(batch["input_ids"]), "position_ids": move(batch["position_ids"]), "use_cache": False}
    if "segment_ids" not in batch:  # padding mode: right padding + the usual 2D mask
        kwargs["attention_mask"] = move(batch["attention_mask"])
        return kwargs
    impl = getattr(hf_config(model), "_attn_implementation", None) or "eager"
    if "flash" in impl:
        return kwargs
    if "flex" in impl:
        raise UserError(f"attn_implementation {impl!r} is not supported with data.mode: pack; "
                        "use sdpa, eager or flash_attention_2")
    allowed = block_causal_mask(move(batch["segment_ids"]))
    if impl == "sdpa":
        kwargs["attention_mask"] = allowed
    else:
        dtype = _float_dtype(model)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        kwargs["attention_mask"] = mask.masked_fill(~allowed, torch.finfo(dtype).min)
    return kwargs
