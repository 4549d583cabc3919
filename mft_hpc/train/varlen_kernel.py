"""``torch_varlen``: a torch-native varlen attention kernel for packed training, registered with
transformers' ``AttentionInterface``.

It takes the micro-batch flattened to one token stream with ``cu_seq_lens_q/k`` (as flash kernels
do) and runs causal attention inside each sequence only:
- on CUDA in bf16/fp16, ``torch.nn.attention.varlen.varlen_attn`` (the flash kernel shipped in torch,
  no causal or cross-sample work wasted, no flash-attn build needed);
- otherwise (CPU, fp32, an older torch) ``scaled_dot_product_attention`` once per sequence with
  ``is_causal=True``: exact, slower.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mft_hpc.data.attention import varlen_attention

NAME = "torch_varlen"


def _torch_varlen_attn():
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:  # torch < 2.10
        return None
    return varlen_attn


def _per_sequence_sdpa(q, k, v, bounds: list[int], scaling, dropout: float, gqa: bool) -> torch.Tensor:
    """q/k/v [N, H, D] → [N, H, D], causal SDPA inside each [bounds[i], bounds[i+1])."""
    out = torch.empty_like(q)
    for start, end in zip(bounds[:-1], bounds[1:]):
        piece = F.scaled_dot_product_attention(q[start:end].transpose(0, 1), k[start:end].transpose(0, 1),
                                               v[start:end].transpose(0, 1), dropout_p=dropout, is_causal=True,
                                               scale=scaling, enable_gqa=gqa)
        out[start:end] = piece.transpose(0, 1)
    return out


@varlen_attention
def torch_varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout: float = 0.0,
                           cu_seq_lens_q=None, cu_seq_lens_k=None, max_length_q=None, max_length_k=None,
                           **kwargs):
    """transformers attention-function signature: query [B,Hq,T,D], key/value [B,Hkv,T,D] → ([B,T,Hq,D], None)."""
    if cu_seq_lens_q is None or max_length_q is None:
        raise RuntimeError(f"{NAME} attention needs cu_seq_lens_q/k and max_length_q/k (packed micro-batches "
                           "from mft_hpc.data.model_inputs); for unpacked inputs use sdpa")
    batch, heads, width, dim = query.shape
    q = query.transpose(1, 2).reshape(batch * width, heads, dim)
    k = key.transpose(1, 2).reshape(batch * width, key.shape[1], dim)
    v = value.transpose(1, 2).reshape(batch * width, value.shape[1], dim)
    gqa = key.shape[1] != heads
    varlen_attn = _torch_varlen_attn()
    if varlen_attn is not None and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16) and dropout == 0.0:
        out = varlen_attn(q, k, v, cu_seq_lens_q, cu_seq_lens_k, int(max_length_q), int(max_length_k),
                          scale=scaling, window_size=(-1, 0), enable_gqa=gqa)
    else:
        out = _per_sequence_sdpa(q, k, v, cu_seq_lens_q.tolist(), scaling, dropout, gqa)
    return out.view(batch, width, heads, dim), None


def register_torch_varlen() -> str:
    """Make ``attn_implementation: torch_varlen`` loadable (idempotent); returns the name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, torch_varlen_attention)
    return NAME
