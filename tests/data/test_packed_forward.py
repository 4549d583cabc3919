"""Packed micro-batches through the real tiny Qwen2, for every attention kernel: each sample gets the
logits and loss of its own unpacked pass."""

from __future__ import annotations

import pytest
import torch

from mft_hpc.config.sections.data import DataSection
from mft_hpc.data import build_datasets, make_loader, model_inputs
from tests.data.conftest import chat, write_jsonl


def _reference_varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                                cu_seq_lens_q=None, cu_seq_lens_k=None, max_length_q=None, max_length_k=None, **kwargs):
    """Plain-math attention over a micro-batch flattened to one stream, causal inside each
    [cu[i], cu[i+1]) only; it demands the varlen kwargs (no mask, no position-id guessing)."""
    assert attention_mask is None, "a varlen kernel gets no mask"
    assert cu_seq_lens_q is not None and cu_seq_lens_k is not None, "varlen kwargs missing"
    assert isinstance(max_length_q, int) and isinstance(max_length_k, int)
    _reference_varlen_attention.rows.append(query.shape[0])
    batch, heads, width, dim = query.shape
    groups = heads // key.shape[1]
    q = query.transpose(1, 2).reshape(batch * width, heads, dim)
    k = key.repeat_interleave(groups, dim=1).transpose(1, 2).reshape(batch * width, heads, dim)
    v = value.repeat_interleave(groups, dim=1).transpose(1, 2).reshape(batch * width, heads, dim)
    out = torch.zeros_like(q)
    bounds = cu_seq_lens_q.tolist()
    assert bounds[0] == 0 and bounds[-1] == batch * width and cu_seq_lens_k.tolist() == bounds
    assert max_length_q == max(b - a for a, b in zip(bounds[:-1], bounds[1:]))
    for start, end in zip(bounds[:-1], bounds[1:]):
        scores = torch.einsum("qhd,khd->hqk", q[start:end], k[start:end]) * scaling
        causal = torch.ones(end - start, end - start, dtype=torch.bool).tril()
        weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        out[start:end] = torch.einsum("hqk,khd->qhd", weights, v[start:end])
    return out.view(batch, width, heads, dim), None


_reference_varlen_attention.rows = []


@pytest.fixture(scope="module")
def isolation_bundle(tmp_path_factory, tiny_tokenizer):
    root = tmp_path_factory.mktemp("isolation")
    records = [chat(("human", f"q{i} " * (i % 3 + 1)), ("bot", f"a{i} " * (i % 5 + 1)))
               for i in range(60)]
    write_jsonl(root / "t1.jsonl", records)
    cfg = DataSection(paths=[str(root / "t1.jsonl")], seq_length=160, mode="pack", valid_ratio=0.0)
    return build_datasets(cfg, tiny_tokenizer, root / "cache", show_progress=False), cfg


def _flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                     deterministic=False):
    """flash-attn's dense entry point in pure torch: [B,T,H,D], causal over each whole row."""
    out = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                           is_causal=causal, scale=softmax_scale, enable_gqa=True)
    return out.transpose(1, 2)


def _flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                            softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0, deterministic=False):
    """flash-attn's varlen entry point in pure torch: [N,H,D], attention inside each cu_seqlens run."""
    out = torch.empty_like(q)
    bounds = cu_seqlens_q.tolist()
    for start, end in zip(bounds[:-1], bounds[1:]):
        out[start:end] = _flash_attn_func(q[None, start:end], k[None, start:end], v[None, start:end],
                                          softmax_scale=softmax_scale, causal=causal)[0]
    return out


@pytest.fixture
def flash_on_cpu(monkeypatch):
    """transformers' own flash_attention_2 path (flash_attention_forward → _flash_attention_forward, with
    its unpad/varlen/position-id logic) with flash-attn's two kernels swapped for the pure-torch ones
    above, so that path runs on CPU."""
    from transformers import modeling_flash_attention_utils as fa_utils

    monkeypatch.setattr(fa_utils, "_lazy_imports", lambda *args, **kwargs: (
        _flash_attn_func, _flash_attn_varlen_func, None, fa_utils._pad_input, fa_utils._unpad_input))
    monkeypatch.setattr(fa_utils, "_loaded_implementation", None)


def _load(tiny_model_dir, impl):
    from transformers import AttentionInterface, AutoModelForCausalLM

    from mft_hpc.data.attention import varlen_attention
    from mft_hpc.train.varlen_kernel import register_torch_varlen

    AttentionInterface.register("reference_varlen", varlen_attention(_reference_varlen_attention))
    register_torch_varlen()
    if impl == "flash_attention_2":  # loading would demand the flash-attn package: switch after loading
        model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
        model.config._attn_implementation = impl
        return model
    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation=impl).eval()


def _packed_batch(bundle, cfg, rows: int) -> dict:
    """The first micro-batch of ``rows`` rows in which every row holds at least three samples."""
    for batch in make_loader(bundle.train, cfg, micro_batch_size=rows, shuffle=False):
        counts = [len(seg[real.bool()].unique()) for seg, real in zip(batch["segment_ids"], batch["attention_mask"])]
        if len(counts) == rows and min(counts) >= 3:
            return batch
    raise AssertionError(f"no micro-batch of {rows} rows with several samples in every row")


def _alone_logits(model, impl: str, ids: torch.Tensor) -> torch.Tensor:
    """One sample in its own forward: the plain call, or one sequence [0, n) for a varlen kernel."""
    if "varlen" not in impl:  # flash_attention_2 here: one row, no padding → its dense causal kernel
        return model(input_ids=ids[None], use_cache=False).logits[0]
    cu = torch.tensor([0, len(ids)], dtype=torch.int32)
    return model(input_ids=ids[None], position_ids=torch.arange(len(ids))[None], use_cache=False,
                 cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=len(ids), max_length_k=len(ids)).logits[0]


def _sample_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-mean CE of one sample (hidden t-1 predicts token t where mask[t])."""
    chosen = mask[1:].bool()
    return torch.nn.functional.cross_entropy(logits[:-1][chosen], ids[1:][chosen])


@pytest.mark.parametrize("rows", [1, 2, 4])
@pytest.mark.parametrize("impl", ["sdpa", "eager", "reference_varlen", "torch_varlen", "flash_attention_2"])
def test_packed_micro_batch_gives_each_sample_its_own_logits_and_loss(tiny_model_dir, isolation_bundle, impl, rows,
                                                                      flash_on_cpu):
    """Through transformers' dispatch: a packed micro-batch of ``rows`` rows gives every sample the
    logits, loss and per-token training losses of that sample run alone."""
    from mft_hpc.train.loss import supervised_token_losses

    bundle, cfg = isolation_bundle
    model = _load(tiny_model_dir, impl)
    batch = _packed_batch(bundle, cfg, rows)
    segments = batch["segment_ids"]
    _reference_varlen_attention.rows.clear()
    with torch.no_grad():
        inputs = model_inputs(batch, model)
        packed = model(**inputs).logits
        token_losses, _ = supervised_token_losses(model, inputs, batch["input_ids"], batch["loss_mask"])
        if impl == "reference_varlen":  # the function really ran, on the whole micro-batch
            assert _reference_varlen_attention.rows and set(_reference_varlen_attention.rows) == {rows}
        alone_losses, compared = [], 0
        for b in range(rows):
            real = batch["attention_mask"][b].bool()
            for seg in segments[b][real].unique().tolist():
                where = (segments[b] == seg) & real
                ids, mask = batch["input_ids"][b][where], batch["loss_mask"][b][where]
                alone = _alone_logits(model, impl, ids)
                torch.testing.assert_close(packed[b][where], alone, rtol=1e-4, atol=1e-4)
                if mask[1:].any():
                    torch.testing.assert_close(_sample_loss(packed[b][where], ids, mask), _sample_loss(alone, ids, mask),
                                               rtol=1e-5, atol=1e-5)
                    alone_losses.append(torch.nn.functional.cross_entropy(
                        alone[:-1][mask[1:].bool()], ids[1:][mask[1:].bool()], reduction="none"))
                compared += 1
    torch.testing.assert_close(token_losses, torch.cat(alone_losses), rtol=1e-4, atol=1e-4)
    assert compared >= 3 * rows


def test_without_isolation_samples_leak(tiny_model_dir, isolation_bundle):
    """The control: the same packed rows with a plain causal mask give other logits (the check can fail)."""
    bundle, cfg = isolation_bundle
    model = _load(tiny_model_dir, "sdpa")
    batch = _packed_batch(bundle, cfg, 2)
    with torch.no_grad():
        isolated = model(**model_inputs(batch, model)).logits
        leaky = model(input_ids=batch["input_ids"], attention_mask=torch.ones_like(batch["input_ids"]),
                      position_ids=batch["position_ids"], use_cache=False).logits
    later = batch["segment_ids"] > 0
    assert not torch.allclose(isolated[later], leaky[later], atol=1e-3)


@pytest.mark.parametrize("rows", [1, 2])
def test_transformers_flash_path_isolates_only_single_rows_from_position_ids(tiny_model_dir, isolation_bundle,
                                                                              flash_on_cpu, rows):
    """Why the varlen kwargs: given only restarting position ids, transformers' flash path finds the
    sample boundaries for a single row but attends across samples as soon as a micro-batch has 2 rows."""
    bundle, cfg = isolation_bundle
    model = _load(tiny_model_dir, "flash_attention_2")
    batch = _packed_batch(bundle, cfg, rows)
    with torch.no_grad():
        guessed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        isolated = model(**model_inputs(batch, model)).logits
    later = batch["segment_ids"] > 0
    if rows == 1:
        torch.testing.assert_close(guessed, isolated, rtol=1e-4, atol=1e-4)
    else:
        assert not torch.allclose(guessed[later], isolated[later], atol=1e-3)


def test_varlen_kernels_demand_the_varlen_kwargs(tiny_model_dir, isolation_bundle):
    bundle, cfg = isolation_bundle
    batch = _packed_batch(bundle, cfg, 2)
    for impl in ("reference_varlen", "torch_varlen"):
        model = _load(tiny_model_dir, impl)
        with pytest.raises((AssertionError, RuntimeError), match="varlen"):
            model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False)


def test_rows_are_filled_and_single_task(isolation_bundle):
    bundle, cfg = isolation_bundle
    split = bundle.train
    assert split.n_samples == 60
    assert all(split.row_length(i) <= cfg.seq_length for i in range(len(split)))
    assert len(split) < 60 / 3  # packing merged samples
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


def test_model_inputs_sees_through_peft(tiny_model_dir, isolation_bundle):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    bundle, cfg = isolation_bundle
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
