"""`model_inputs`: forward kwargs that keep packed samples from attending to each other, for every
attention kernel and micro-batch size.

Each kernel family gets the isolation it honours (read from transformers 5.x: masking_utils,
modeling_flash_attention_utils, the Qwen2 model):

- ``eager`` / ``sdpa`` ("mask"): a 4D block-diagonal causal mask; transformers passes a 4D mask
  through unchanged (boolean for sdpa, additive float for eager).
- flash kernels (any name containing "flash", as transformers itself decides) and attention functions
  registered with ``@varlen_attention`` ("varlen"): no mask, plus ``cu_seq_lens_q/k`` and
  ``max_length_q/k`` over the micro-batch flattened to one token stream. transformers hands these
  kwargs down to the attention function; its flash path then runs the varlen kernel for any number of
  rows. Without them it would derive boundaries from ``position_ids`` only for a single row, so a
  micro-batch of several rows would attend across samples.
- ``flex_attention`` ("block_mask"): a document-causal ``BlockMask`` from the segment ids.

Anything else cannot be guaranteed to keep samples apart: `packing_strategy` refuses it, naming
``train.attn_implementation``.
"""

from __future__ import annotations

import torch

from mft_hpc.errors import UserError

ISOLATION_KEY = "train.attn_implementation"
VARLEN_FLAG = "mft_packed_varlen"  # set on attention functions that honour cu_seq_lens_q/k


def varlen_attention(function):
    """Mark an attention function (to register with transformers' ``AttentionInterface``) as one that
    honours ``cu_seq_lens_q/k`` + ``max_length_q/k``: packed micro-batches then send it those."""
    setattr(function, VARLEN_FLAG, True)
    return function


def packing_strategy(impl: str | None) -> str:
    """"mask", "varlen" or "block_mask" for attention implementation ``impl`` in pack mode; a
    UserError naming the key for a kernel that cannot be guaranteed to keep samples apart."""
    impl = impl or "sdpa"
    if impl in ("eager", "sdpa"):
        return "mask"
    if impl == "flex_attention":
        return "block_mask"
    # "flash" in the name: transformers' own test for a flash kernel; torch_varlen: ours, known by name
    # before it is registered (config validation runs before any model is loaded)
    if "flash" in impl or impl == "torch_varlen":
        return "varlen"
    from transformers import AttentionInterface

    if getattr(AttentionInterface._global_mapping.get(impl), VARLEN_FLAG, False):
        return "varlen"
    raise UserError(f"{ISOLATION_KEY}: {impl!r} cannot keep packed samples apart (data.mode: pack): it takes "
                    "neither a 4D mask nor cu_seq_lens; use sdpa, eager, torch_varlen, flash_attention_2/3 or "
                    "flex_attention, or data.mode: padding")


def block_causal_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """Bool[B,1,T,T]: query t sees key s iff s <= t and both are in the same segment."""
    width = segment_ids.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    return (same & causal)[:, None]


def varlen_kwargs(segment_ids: torch.Tensor) -> dict:
    """transformers' flash kwargs for a [B,T] micro-batch flattened to B*T tokens: one sequence per
    (row, segment) run; padding at a row's end is its own sequence (it carries no loss)."""
    flat = segment_ids.reshape(-1)
    starts = torch.ones_like(flat, dtype=torch.bool)
    starts[1:] = flat[1:] != flat[:-1]
    width = segment_ids.shape[1]
    starts[::width] = True  # every row starts a sequence, even if two rows share a segment id
    bounds = torch.cat([starts.nonzero().flatten(), torch.tensor([flat.numel()], device=flat.device)])
    cu = bounds.to(torch.int32)
    longest = int((bounds[1:] - bounds[:-1]).max())
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def document_block_mask(segment_ids: torch.Tensor):
    """flex_attention BlockMask: causal within a segment of the same row."""
    from torch.nn.attention.flex_attention import create_block_mask

    batch, width = segment_ids.shape

    def same_document_causal(b, h, q, kv):
        return (segment_ids[b, q] == segment_ids[b, kv]) & (kv <= q)

    return create_block_mask(same_document_causal, B=batch, H=None, Q_LEN=width, KV_LEN=width,
                             device=segment_ids.device)


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
    impl = getattr(hf_config(model), "_attn_implementation", None)
    strategy = packing_strategy(impl)
    if strategy == "varlen":  # computed on the host: max_length must be a Python int for the kernels
        kwargs.update({key: move(value) if torch.is_tensor(value) else value
                       for key, value in varlen_kwargs(batch["segment_ids"]).items()})
        return kwargs
    segments = move(batch["segment_ids"])
    if strategy == "block_mask":
        kwargs["attention_mask"] = document_block_mask(segments)
    elif impl == "sdpa":
        kwargs["attention_mask"] = block_causal_mask(segments)
    else:  # eager (or an unset implementation): an additive float mask works for both
        allowed = block_causal_mask(segments)
        dtype = _float_dtype(model)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        kwargs["attention_mask"] = mask.masked_fill(~allowed, torch.finfo(dtype).min)
    return kwargs
