"""Splits, rows, sampling, resume and the tokenized cache, on the tiny ChatML tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mft_hpc.config.sections.data import DataSection
from mft_hpc.data import build_datasets, make_loader
from mft_hpc.data.split import valid_count, valid_record_mask
from tests.data.conftest import chat, write_jsonl


def make_tasks(root, sizes: dict[str, int]) -> list[str]:
    paths = []
    for name, n in sizes.items():
        records = [chat(("human", f"{name} q{i} " + "x " * (i % 9)), ("bot", f"{name} a{i} " + "y " * (i % 13)))
                   for i in range(n)]
        paths.append(str(write_jsonl(root / name / "part.jsonl", records).parent))
    return paths


def cfg_for(paths, **kw) -> DataSection:
    return DataSection(paths=paths, **{"seq_length": 128, "valid_ratio": 0.1, **kw})


def test_valid_count_minimum_and_never_all():
    assert valid_count(1, 0.05) == 0
    assert valid_count(2, 0.05) == 1
    assert valid_count(100, 0.05) == 5
    assert valid_count(10, 0.0) == 0


def test_split_stable_when_other_tasks_change(tmp_path, tiny_tokenizer):
    a, b = make_tasks(tmp_path, {"alpha": 30, "beta": 7})
    c = make_tasks(tmp_path, {"gamma": 12})[0]
    one = build_datasets(cfg_for([a, b]), tiny_tokenizer, tmp_path / "c1", show_progress=False)
    two = build_datasets(cfg_for([c, a]), tiny_tokenizer, tmp_path / "c2", show_progress=False)

    def valid_tokens(bundle, task):
        tid = bundle.task_names.index(task)
        split = bundle.valid
        return sorted(tuple(split.store.sample(int(s))[0]) for i, r in enumerate(split.rows)
                      if split.row_task[i] == tid for s in r)

    assert valid_tokens(one, "alpha") == valid_tokens(two, "alpha")
    assert len(valid_tokens(one, "alpha")) == 3 and len(valid_tokens(one, "beta")) == 1
    assert one.train.n_samples + one.valid.n_samples == 37
    mask = valid_record_mask(30, 0.1, 42, "alpha")
    assert mask.sum() == 3 and not np.array_equal(mask, valid_record_mask(30, 0.1, 43, "alpha"))


@pytest.mark.parametrize("mode", ["pack", "padding"])
def test_distributed_epoch_is_disjoint_permutation_and_resumable(tmp_path, tiny_tokenizer, mode):
    paths = make_tasks(tmp_path, {"alpha": 40, "beta": 20})
    cfg = cfg_for(paths, mode=mode, valid_ratio=0.0, seq_length=64 if mode == "pack" else 128)
    bundle = build_datasets(cfg, tiny_tokenizer, tmp_path / "cache", show_progress=False)
    train = bundle.train

    def seen(rank, world, epoch=0, start=0):
        out = []
        for batch in make_loader(train, cfg, 2, rank, world, epoch, seed=5, start_step=start):
            assert batch["input_ids"].shape == batch["loss_mask"].shape == batch["position_ids"].shape
            assert batch["task_ids"].shape[0] == batch["input_ids"].shape[0]
            for row, tid in zip(batch["input_ids"].tolist(), batch["task_ids"].tolist()):
                out.append((tuple(row), tid))
        return out

    per_rank = [seen(r, 3) for r in range(3)]
    assert len({len(x) for x in per_rank}) == 1
    flat = [item for rank in per_rank for item in rank]
    assert len(flat) == len(train) // 3 * 3
    assert len(set(flat)) == len(flat)  # disjoint across ranks, nothing repeated
    single = seen(0, 1)
    assert len(single) == len(train) and len(set(single)) == len(train)  # epoch = permutation
    assert seen(0, 1, epoch=1) != single
    assert seen(0, 1, start=3) == single[6:]  # resume from step 3 with micro batch 2
    assert len(make_loader(train, cfg, 2, start_step=3, seed=5)) == -(-len(train) // 2) - 3


def test_padding_batch_layout(tmp_path, tiny_tokenizer):
    paths = make_tasks(tmp_path, {"alpha": 6})
    cfg = cfg_for(paths, mode="padding", valid_ratio=0.0)
    bundle = build_datasets(cfg, tiny_tokenizer, None, show_progress=False)
    batch = next(iter(make_loader(bundle.train, cfg, 4, seed=1, shuffle=False)))
    lengths = batch["attention_mask"].sum(1)
    assert batch["input_ids"].shape[1] == int(lengths.max())  # dynamic padding
    pad = batch["attention_mask"] == 0
    assert (batch["input_ids"][pad] == bundle.train.pad_id).all() and (batch["loss_mask"][pad] == 0).all()
    assert "segment_ids" not in batch


def test_pack_positions_restart_and_one_task_per_row(tmp_path, tiny_tokenizer):
    paths = make_tasks(tmp_path, {"alpha": 30, "beta": 30})
    cfg = cfg_for(paths, mode="pack", valid_ratio=0.0, seq_length=96)
    bundle = build_datasets(cfg, tiny_tokenizer, None, show_progress=False)
    store = bundle.train.store
    for i, row in enumerate(bundle.train.rows):
        assert set(store.task[row].tolist()) == {bundle.train.row_task[i]}
    batch = next(iter(make_loader(bundle.train, cfg, 4, seed=0)))
    starts = (batch["position_ids"] == 0) & (batch["attention_mask"] == 1)
    assert (starts.sum(1) == batch["segment_ids"].masked_fill(batch["attention_mask"] == 0, -1).amax(1) + 1).all()
    assert (batch["input_ids"][starts] == tiny_tokenizer.convert_tokens_to_ids("<|im_start|>")).all()


def test_task_weights_shift_the_mix(tmp_path, tiny_tokenizer):
    paths = make_tasks(tmp_path, {"alpha": 60, "beta": 15})
    cfg = cfg_for(paths, mode="padding", valid_ratio=0.0)
    bundle = build_datasets(cfg, tiny_tokenizer, None, show_progress=False)
    proportional = np.concatenate([b["task_ids"].numpy() for b in make_loader(bundle.train, cfg, 5, seed=3)])
    assert np.bincount(proportional).tolist() == [60, 15]
    weighted = np.concatenate([b["task_ids"].numpy() for b in
                               make_loader(bundle.train, cfg, 5, seed=3, task_weights={"alpha": 1, "beta": 1})])
    assert np.bincount(weighted).tolist() == [37, 37]


def test_cache_is_reused_and_keyed_by_data(tmp_path, tiny_tokenizer):
    paths = make_tasks(tmp_path, {"alpha": 10})
    cfg = cfg_for(paths)
    first = build_datasets(cfg, tiny_tokenizer, tmp_path / "cache", show_progress=False)
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(entries) == 2 and entries[1] == entries[0] + ".done"
    assert isinstance(first.train.store.tokens, np.memmap)
    again = build_datasets(cfg, tiny_tokenizer, tmp_path / "cache", show_progress=False)
    assert len(list((tmp_path / "cache").iterdir())) == 2
    assert np.array_equal(np.asarray(again.train.store.tokens), np.asarray(first.train.store.tokens))
    write_jsonl(tmp_path / "alpha" / "part.jsonl", [chat(("human", "changed"), ("bot", "data"))] * 3)
    build_datasets(cfg, tiny_tokenizer, tmp_path / "cache", show_progress=False)
    assert len(list((tmp_path / "cache").iterdir())) == 4


def test_overlong_counted(tmp_path, tiny_tokenizer):
    long = chat(("human", "q " * 200), ("bot", "a " * 200))
    multi = chat(("human", "q"), ("bot", "short"), ("human", "q " * 200), ("bot", "a " * 200))
    path = write_jsonl(tmp_path / "t.jsonl", [long, multi, chat(("human", "q"), ("bot", "a"))])
    for overlong, truncated, dropped in (("truncate", 1, 1), ("drop", 0, 2)):
        cfg = cfg_for([str(path)], seq_length=64, overlong=overlong, valid_ratio=0.0)
        bundle = build_datasets(cfg, tiny_tokenizer, None, show_progress=False)
        assert (bundle.stats.truncated, bundle.stats.dropped) == (truncated, dropped)
        assert bundle.train.n_samples == 3 - dropped
        assert int(bundle.train.store.lengths.max()) <= 64


def test_qwen_bpe_dataset_and_cache_key(tmp_path, tiny_tokenizer, qwen_tokenizer):
    paths = make_tasks(tmp_path, {"alpha": 8})
    cfg = cfg_for(paths, mode="padding", valid_ratio=0.0)
    qwen = build_datasets(cfg, qwen_tokenizer, tmp_path / "cache", show_progress=False)
    build_datasets(cfg, tiny_tokenizer, tmp_path / "cache", show_progress=False)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2  # keyed by tokenizer
    batch = next(iter(make_loader(qwen.train, cfg, 8, shuffle=False)))
    real = batch["attention_mask"].bool()
    assert (batch["input_ids"][:, 0] == 151644).all() and qwen.train.pad_id == 151643
    last = real.sum(1) - 1
    rows = torch.arange(8)
    assert (batch["input_ids"][rows, last] == 151645).all() and (batch["loss_mask"][rows, last] == 1).all()
