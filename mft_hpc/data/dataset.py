"""Datasets the trainer consumes: rows of samples (one sample, or a packed set) per split."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from mft_hpc.config.sections.data import DataSection
from mft_hpc.data.codec import as_codec
from mft_hpc.data.packing import best_fit_decreasing, efficiency
from mft_hpc.data.records import discover_tasks
from mft_hpc.data.split import valid_record_mask
from mft_hpc.data.store import TokenStore, load_or_build
from mft_hpc.errors import UserError

MAX_ERRORS_SHOWN = 20


@dataclass
class DatasetSplit:
    """``rows[i]`` holds sample ids (into ``store``) of row i; every row belongs to one task."""

    name: str
    store: TokenStore
    rows: list[np.ndarray]
    row_task: np.ndarray
    task_names: list[str]
    mode: str
    seq_length: int
    pad_id: int

    def __len__(self) -> int:
        return len(self.rows)

    def row_length(self, i: int) -> int:
        return int(self.store.lengths[self.rows[i]].sum())

    @property
    def n_tokens(self) -> int:
        return int(sum(self.store.lengths[row].sum() for row in self.rows))

    @property
    def n_samples(self) -> int:
        return int(sum(len(row) for row in self.rows))

    @property
    def packing_efficiency(self) -> float:
        return efficiency(self.n_tokens, len(self.rows), self.seq_length)


@dataclass
class DataStats:
    records: int
    invalid: int
    skipped: int
    truncated: int
    dropped: int
    per_task: list[dict] = field(default_factory=list)
    train_packing_efficiency: float = 0.0
    valid_packing_efficiency: float = 0.0

    def summary(self) -> str:
        return (f"{self.records} records, {self.invalid} invalid ({self.skipped} skipped), "
                f"{self.truncated} truncated, {self.dropped} dropped as over-long; "
                f"row fill: train {self.train_packing_efficiency:.3f}, valid {self.valid_packing_efficiency:.3f}")


@dataclass
class DataBundle:
    train: DatasetSplit
    valid: DatasetSplit
    task_names: list[str]
    stats: DataStats
    errors: list[str]


def _rows(store: TokenStore, sample_ids: np.ndarray, n_tasks: int, mode: str, seq_length: int):
    rows: list[np.ndarray] = []
    row_task: list[int] = []
    for task_id in range(n_tasks):
        ids = sample_ids[store.task[sample_ids] == task_id]
        if mode == "pack":
            task_rows = [ids[row] for row in best_fit_decreasing(store.lengths[ids], seq_length)]
        else:
            task_rows = [ids[i:i + 1] for i in range(len(ids))]
        rows += task_rows
        row_task += [task_id] * len(task_rows)
    return rows, np.asarray(row_task, dtype=np.int64)


def split_store(store: TokenStore, valid_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids of train and valid: each task's records are split by ``valid_record_mask``."""
    in_valid = np.zeros(len(store), dtype=bool)
    for task_id, info in enumerate(store.index["tasks"]):
        of_task = np.flatnonzero(store.task == task_id)
        mask = valid_record_mask(info["records"], valid_ratio, seed, info["name"])
        in_valid[of_task] = mask[store.record[of_task]]
    return np.flatnonzero(~in_valid), np.flatnonzero(in_valid)


def refuse_invalid(errors: list[str]) -> None:
    if not errors:
        return
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    raise UserError("\n".join(shown + ([f"... and {more} more"] if more else [])
                              + [f"{len(errors)} invalid line(s) in the training data; fix them "
                                 "(see `mft-hpc data check`) or set data.skip_invalid: true"]))


def build_datasets(data_cfg: DataSection, tokenizer, cache_dir: str | os.PathLike | None = None,
                   show_progress: bool = True) -> DataBundle:
    """Read, validate, tokenize (cached under ``cache_dir``), split and row up the configured tasks.

    Raises UserError listing ``file:line: reason`` when any line is invalid, unless
    ``data_cfg.skip_invalid`` (then they are skipped and counted).
    """
    codec = as_codec(tokenizer)
    tasks = discover_tasks(list(data_cfg.paths))
    store = load_or_build(tasks, codec, data_cfg.seq_length, data_cfg.overlong, cache_dir, show_progress,
                          check_errors=None if data_cfg.skip_invalid else refuse_invalid)
    errors = list(store.index["errors"])
    task_names = [task.name for task in tasks]
    train_ids, valid_ids = split_store(store, data_cfg.valid_ratio, data_cfg.seed)
    pad_id = int(store.index["pad_id"])
    splits = {}
    for name, ids in (("train", train_ids), ("valid", valid_ids)):
        rows, row_task = _rows(store, ids, len(tasks), data_cfg.mode, data_cfg.seq_length)
        splits[name] = DatasetSplit(name, store, rows, row_task, task_names, data_cfg.mode, data_cfg.seq_length, pad_id)
    if not len(splits["train"]):
        raise UserError(f"no training samples in data.paths ({', '.join(task_names)}): every line was invalid, "
                        f"dropped as longer than seq_length {data_cfg.seq_length}, or held out for validation")
    per_task = store.index["tasks"]
    stats = DataStats(
        records=sum(t["records"] for t in per_task) + len(errors), invalid=len(errors),
        skipped=len(errors) if data_cfg.skip_invalid else 0,
        truncated=sum(t["truncated"] for t in per_task), dropped=sum(t["dropped"] for t in per_task),
        per_task=per_task, train_packing_efficiency=splits["train"].packing_efficiency,
        valid_packing_efficiency=splits["valid"].packing_efficiency,
    )
    return DataBundle(train=splits["train"], valid=splits["valid"], task_names=task_names, stats=stats, errors=errors)
