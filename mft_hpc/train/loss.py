"""Token-level cross-entropy on supervised positions only, combined across tasks (case3 and weights).

``loss_mask`` is unshifted: the hidden state at t-1 predicts token t where ``loss_mask[t] == 1``.
Logits are computed only for those positions: the decoder's hidden states are captured with a hook,
the supervised ones selected, and only they go through the LM head (the model itself is asked
for the last position's logits only where it supports ``logits_to_keep``).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from mft_hpc.train.kernels import liger_available
from mft_hpc.train.unwrap import hf_model


def _wants_logits_to_keep(model) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def _cross_entropy(head, hidden: torch.Tensor, targets: torch.Tensor, fused: bool = True) -> torch.Tensor:
    if fused and hidden.is_cuda and getattr(head, "bias", None) is None and liger_available():
        # fused linear + CE: the [N, vocab] logits never exist in memory
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        return LigerFusedLinearCrossEntropyLoss(reduction="none")(head.weight, hidden, targets)
    return F.cross_entropy(head(hidden).float(), targets, reduction="none")


def supervised_token_losses(model, inputs: dict, input_ids: torch.Tensor, loss_mask: torch.Tensor,
                            fused: bool = True):
    """Forward ``model`` (any wrapper) and return (per-token CE [N], row index of each token [N]);
    ``fused``: Liger's fused linear-CE on CUDA when installed."""
    hf = hf_model(model)
    captured: list[torch.Tensor] = []
    handle = hf.base_model.register_forward_hook(lambda _m, _a, out: captured.append(out[0]))
    extra = {"logits_to_keep": 1} if _wants_logits_to_keep(hf) else {}
    try:
        model(**inputs, **extra)
    finally:
        handle.remove()
    hidden = captured[-1]
    selected = loss_mask[:, 1:].to(hidden.device).bool()
    targets = input_ids[:, 1:].to(hidden.device)[selected]
    rows = selected.nonzero()[:, 0]
    return _cross_entropy(hf.get_output_embeddings(), hidden[:, :-1][selected], targets, fused), rows


def task_sums(token_losses: torch.Tensor, rows: torch.Tensor, task_ids: torch.Tensor, num_tasks: int):
    """Per-task sum of token losses and token counts ([T] each, float32)."""
    token_tasks = task_ids.to(token_losses.device)[rows]
    sums = torch.zeros(num_tasks, device=token_losses.device).index_add(0, token_tasks, token_losses.float())
    counts = torch.zeros(num_tasks, device=token_losses.device).index_add(
        0, token_tasks, torch.ones_like(token_losses, dtype=torch.float32))
    return sums, counts


def combine_tasks(sums: torch.Tensor, counts: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """case3: the (weighted) mean over the tasks present of each task's token-mean loss.

    A batch without supervised tokens gives NaN, which the loop skips (never back-propagated).
    """
    present = counts > 0
    if not bool(present.any()):
        return sums.sum() * float("nan")
    means = sums[present] / counts[present]
    if weights is None:
        return means.mean()
    w = weights.to(means.device)[present]
    return (means * w).sum() / w.sum()
