"""`make_loader`: the batches one rank reads in one epoch, resumable at any step."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from mft_hpc.config.sections.data import DataSection
from mft_hpc.data.collate import collate_rows
from mft_hpc.data.dataset import DatasetSplit
from mft_hpc.data.sampler import epoch_order, rank_rows


class BatchLoader:
    """Iterable of collated batches; ``len()`` is the number of batches it will yield."""

    def __init__(self, split: DatasetSplit, rows: np.ndarray, micro_batch_size: int, start_step: int = 0):
        self.split = split
        self.batches = [rows[i:i + micro_batch_size] for i in range(0, len(rows), micro_batch_size)]
        self.start_step = start_step

    def __len__(self) -> int:
        return max(0, len(self.batches) - self.start_step)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for rows in self.batches[self.start_step:]:
            yield collate_rows(self.split, rows.tolist())


def make_loader(dataset_split: DatasetSplit, data_cfg: DataSection, micro_batch_size: int, rank: int = 0,
                world_size: int = 1, epoch: int = 0, seed: int = 0, task_weights=None, start_step: int = 0,
                shuffle: bool = True) -> BatchLoader:
    """Batches of ``micro_batch_size`` rows for ``rank``.

    Training (``shuffle=True``): a permutation of all rows (or a task-weighted draw) that depends
    only on (seed, epoch); ranks get disjoint, equal-sized slices. ``start_step`` skips that many
    batches of this epoch (exact resume). Validation (``shuffle=False``): rows in order, every row
    read exactly once across ranks (ranks may differ by one row).
    ``task_weights`` defaults to ``data_cfg.task_weights`` when ``data_cfg.sampling == "weights"``.
    """
    if task_weights is None and data_cfg is not None and getattr(data_cfg, "sampling", "") == "weights":
        task_weights = data_cfg.task_weights
    order = epoch_order(dataset_split.row_task, dataset_split.task_names, epoch, seed,
                        task_weights if shuffle else None, shuffle)
    rows = rank_rows(order, rank, world_size, drop_uneven=shuffle)
    return BatchLoader(dataset_split, rows, micro_batch_size, start_step)
