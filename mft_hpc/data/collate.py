"""Turn rows into tensors: right padding to the batch's longest row, position ids per sample.

Keys: input_ids, loss_mask (token-level, unshifted), position_ids, task_ids [B], attention_mask
(1 real, 0 pad), and in pack mode segment_ids (the sample a token belongs to, within its row;
padding forms its own segment) from which `model_inputs` builds the no-cross-sample mask.
"""

from __future__ import annotations

import numpy as np
import torch

from mft_hpc.data.dataset import DatasetSplit


def collate_rows(split: DatasetSplit, row_indices) -> dict[str, torch.Tensor]:
    rows = [split.rows[i] for i in row_indices]
    lengths = [int(split.store.lengths[row].sum()) for row in rows]
    width = max(lengths)
    batch = len(rows)
    input_ids = np.full((batch, width), split.pad_id, dtype=np.int64)
    loss_mask = np.zeros((batch, width), dtype=np.int64)
    position_ids = np.zeros((batch, width), dtype=np.int64)
    segment_ids = np.zeros((batch, width), dtype=np.int64)
    attention_mask = np.zeros((batch, width), dtype=np.int64)
    for b, row in enumerate(rows):
        cursor = 0
        for segment, sample in enumerate(row.tolist()):
            tokens, mask = split.store.sample(sample)
            end = cursor + len(tokens)
            input_ids[b, cursor:end] = tokens
            loss_mask[b, cursor:end] = mask
            position_ids[b, cursor:end] = np.arange(len(tokens))
            segment_ids[b, cursor:end] = segment
            cursor = end
        attention_mask[b, :cursor] = 1
        if split.mode == "pack":
            position_ids[b, cursor:] = np.arange(width - cursor)
            segment_ids[b, cursor:] = len(row)
        else:  # padding: one sample per row, positions simply continue into the padding
            position_ids[b, cursor:] = np.arange(cursor, width)
    out = {
        "input_ids": torch.from_numpy(input_ids),
        "loss_mask": torch.from_numpy(loss_mask),
        "position_ids": torch.from_numpy(position_ids),
        "task_ids": torch.as_tensor(split.row_task[list(row_indices)], dtype=torch.long),
        "attention_mask": torch.from_numpy(attention_mask),
    }
    if split.mode == "pack":
        out["segment_ids"] = torch.from_numpy(segment_ids)
    return out
