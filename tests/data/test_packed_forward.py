"""A packed row through the real tiny Qwen2 gives each sample the logits of its own unpacked pass."""

from __future__ import annotations

import pytest
import torch

from mft_hpc.config.sections.data import DataSection
from mft_hpc.data import build_datasets, make_loader, model_inputs
from tests.data.conftest import chat, write_jsonl


@pytest.fixture(scope="module")
def packed_bundle(tmp_path_factory, tiny_tokenizer):
    root = tmp_path_factory.mktemp("pack")
    records = [chat(("human", f"question {i} " * (i % 5 + 1)), ("bot", f"answer {i} " * (i % 7 + 1)))
               for i in range(24)]
    write_jsonl(root / "t1.jsonl", records)
    cfg = DataSection(paths=[str(root / "t1.jsonl")], seq_length=256, mode="pack", valid_ratio=0.0)
    return build_datasets(cfg, tiny_tokenizer, root / "cache", show_progress=False), cfg


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_forward_equals_unpacked(tiny_model_dir, packed_bundle, impl):
    from transformers import AutoModelForCausalLM

    bundle, cfg = packed_bundle
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation=impl).eval()
    batch = next(iter(make_loader(bundle.train, cfg, micro_batch_size=2, seed=1)))
    segments = batch["segment_ids"]
    assert int(segments[0].max()) >= 2, "a row should hold several samples"
    with torch.no_grad():
        packed = model(**model_inputs(batch, model)).logits
        # the same rows with no isolation mask would differ: proves the mask matters
        leaky = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                      attention_mask=torch.ones_like(batch["input_ids"]), use_cache=False).logits
        compared = 0
        for b in range(batch["input_ids"].shape[0]):
            real = batch["attention_mask"][b].bool()
            for seg in segments[b][real].unique().tolist():
                where = (segments[b] == seg) & real
                alone = model(input_ids=batch["input_ids"][b][where][None], use_cache=False).logits[0]
                torch.testing.assert_close(packed[b][where], alone, rtol=1e-4, atol=1e-4)
                if seg > 0:
                    assert not torch.allclose(leaky[b][where], alone, atol=1e-3)
                compared += 1
    assert compared >= 4


def test_position_ids_alone_isolate_samples(tiny_model_dir, packed_bundle):
    """The flash-attention route: no mask, positions restarting at 0; transformers derives the
    boundaries (checked on sdpa, which shares that derivation)."""
    from transformers import AutoModelForCausalLM

    bundle, cfg = packed_bundle
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
    batch = next(iter(make_loader(bundle.train, cfg, micro_batch_size=1, seed=2)))
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        for seg in batch["segment_ids"][0].unique().tolist():
            where = batch["segment_ids"][0] == seg
            alone = model(input_ids=batch["input_ids"][0][where][None], use_cache=False).logits[0]
            torch.testing.assert_close(packed[where], alone, rtol=1e-4, atol=1e-4)


def test_rows_are_filled_and_single_task(packed_bundle):
    bundle, cfg = packed_bundle
    split = bundle.train
    assert split.n_samples == 24
    assert all(split.row_length(i) <= cfg.seq_length for i in range(len(split)))
    assert len(split) < 24 / 2  # packing merged samples
    assert 0 < split.packing_efficiency <= 1


def test_padding_mode_forward_matches_unpadded(tiny_model_dir, tmp_path, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    records = [chat(("human", "q " * (i + 1)), ("bot", "a " * (3 * i + 1))) for i in range(4)]
    cfg = DataSection(paths=[str(write_jsonl(tmp_path / "t.jsonl", records))], seq_length=128, mode="padding",
                      valid_ratio=0.0)
    bundle = build_datasets(cfg, tiny_tokenizer, None, show_progress=False)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
    batch = next(iter(make_loader(bundle.train, cfg, micro_batch_size=4, shuffle=False)))
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        padded = model(**model_inputs(batch, model)).logits
        for b in range(4):
            real = batch["attention_mask"][b].bool()
            alone = model(input_ids=batch["input_ids"][b][real][None], use_cache=False).logits[0]
            torch.testing.assert_close(padded[b][real], alone, rtol=1e-4, atol=1e-4)


def test_model_inputs_sees_through_peft(tiny_model_dir, packed_bundle):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    bundle, cfg = packed_bundle
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear")).eval()
    batch = next(iter(make_loader(bundle.train, cfg, micro_batch_size=1, seed=3)))
    kwargs = model_inputs(batch, model)
    assert kwargs["attention_mask"].dtype == torch.float32 and kwargs["attention_mask"].dim() == 4
    with torch.no_grad():
        logits = model(**kwargs).logits[0]
        seg = batch["segment_ids"][0]
        last = seg == seg.max()
        alone = model(input_ids=batch["input_ids"][0][last][None], use_cache=False).logits[0]
    torch.testing.assert_close(logits[last], alone, rtol=1e-4, atol=1e-4)
