"""Kernel choice on the training path: packed isolation refused where it cannot hold, Liger's clean
fallback, MFU accounting with real parameter counts, and measured gradient checkpointing."""

from __future__ import annotations

import pytest
import torch

from mft_hpc.errors import ConfigError, UserError
from tests.train.helpers import make_config


@pytest.mark.parametrize("impl", ["paged|eager", "my_kernel"])
def test_an_unknown_kernel_refuses_pack_mode_naming_the_key(impl):
    from mft_hpc.data.attention import packing_strategy

    with pytest.raises(UserError, match=r"^train\.attn_implementation: .*cannot keep packed samples apart"):
        packing_strategy(impl)
    assert [packing_strategy(name) for name in ("sdpa", "eager", "flash_attention_2", "flash_attention_3",
                                                 "torch_varlen", "flex_attention")] == \
        ["mask", "mask", "varlen", "varlen", "varlen", "block_mask"]


def test_validation_names_file_line_and_key_before_submission(tmp_path, tiny_model_dir, task_paths):
    from mft_hpc.config import load_config
    from mft_hpc.train import validate_train_config

    path = tmp_path / "cfg.yaml"
    path.write_text("run:\n  name: t\n  root: " + str(tmp_path / "runs") + "\n"
                    "model:\n  path: " + str(tiny_model_dir) + "\n"
                    "data:\n  paths: [" + ", ".join(task_paths) + "]\n  seq_length: 128\n  mode: pack\n"
                    "generate:\n  enabled: false\n"
                    "train:\n  attn_implementation: paged|eager\n")
    with pytest.raises(ConfigError) as err:
        validate_train_config(load_config(path).config, path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "attn_implementation" in text)
    assert f"{path}:{line}: train.attn_implementation: 'paged|eager' cannot keep packed samples apart" in str(err.value)


def _model_with(tiny_model_dir, impl: str, attention_backend: bool):
    """The tiny model set to ``impl``; without ``attention_backend`` it stands for a model that computes
    attention its own way (like remote code): no AttentionInterface dispatch, so neither a 4D mask nor
    the varlen kwargs are known to reach its kernel."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model._supports_attention_backend = attention_backend
    model.config._attn_implementation = impl
    return model


def test_flash_without_isolation_refuses_to_start(tiny_model_dir, task_paths):
    from mft_hpc.train.kernels import check_packed_isolation

    pack = make_config(tiny_model_dir, task_paths, data_mode="pack")
    with pytest.raises(UserError, match=r"^train\.attn_implementation: Qwen2ForCausalLM does not dispatch"):
        check_packed_isolation(pack, _model_with(tiny_model_dir, "flash_attention_2", attention_backend=False))
    flex = _model_with(tiny_model_dir, "flex_attention", attention_backend=True)
    with pytest.raises(UserError, match=r"^train\.attn_implementation: flex_attention has no backward on CPU"):
        check_packed_isolation(pack, flex)
    padding = make_config(tiny_model_dir, task_paths, data_mode="padding")
    assert check_packed_isolation(padding, _model_with(tiny_model_dir, "flash_attention_2", False)) is None
    assert check_packed_isolation(pack, _model_with(tiny_model_dir, "flash_attention_2", True)) == "varlen"


def test_training_refuses_to_start_with_a_kernel_that_cannot_isolate(tmp_path, tiny_model_dir, task_paths,
                                                                      torch_one_thread):
    """The real start (model loaded, engine built): refused before the first step, nothing trained."""
    from mft_hpc.train import train_member

    config = make_config(tiny_model_dir, task_paths, data_mode="pack", attn_implementation="paged|eager")
    with pytest.raises(UserError, match=r"^train\.attn_implementation: 'paged\|eager' cannot keep packed"):
        train_member(config, tmp_path / "m")
    assert not list((tmp_path / "m" / "train").glob("checkpoints/step_*")) and \
        not (tmp_path / "m" / "train" / "metrics.jsonl").exists()


def test_liger_falls_back_cleanly_without_cuda(tiny_model_dir, task_paths):
    from transformers import AutoModelForCausalLM

    from mft_hpc.train.kernels import apply_liger

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert apply_liger(make_config(tiny_model_dir, task_paths), model) == []  # default: when usable
    with pytest.raises(UserError, match=r"^train\.liger: true needs CUDA"):
        apply_liger(make_config(tiny_model_dir, task_paths, liger=True), model)


def test_mfu_counts_trainable_frozen_and_4bit_weights_by_real_size(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from mft_hpc.train.flops import ModelFlops, causal_pairs, mfu

    def lora(model):
        return get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))

    full = ModelFlops.of(lora(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    body = sum(p.numel() for name, p in base.named_parameters() if "embed_tokens" not in name)
    assert full.frozen == body and full.head == base.get_output_embeddings().weight.numel()  # tied head
    assert full.trainable == sum(p.numel() for n, p in lora(base).named_parameters() if "lora_" in n)
    quantized = lora(AutoModelForCausalLM.from_pretrained(
        str(tiny_model_dir), quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")))
    packed_numel = sum(p.numel() for p in quantized.parameters() if not p.requires_grad)
    four_bit = ModelFlops.of(quantized)
    assert (four_bit.frozen, four_bit.trainable) == (full.frozen, full.trainable)  # not the packed uint8 count
    assert packed_numel < full.frozen + full.head
    flops = full.step_flops(tokens=100, supervised=40, attention_pairs=causal_pairs([60, 40]))
    expected = (6 * full.trainable + 4 * full.frozen) * 100 + 4 * full.head * 40 + \
        12 * full.layers * full.hidden * (60 * 61 // 2 + 40 * 41 // 2)
    assert flops == expected
    assert mfu(flops, 2.0, peak=1e12) == pytest.approx(expected / 2.0 / 1e12)
    assert mfu(flops, 2.0, peak=None) is None


def test_auto_checkpointing_measures_and_checkpoints_only_what_the_budget_needs(torch_one_thread):
    """The estimate from 1- and 2-layer forwards predicts what a 4-layer model really saves, with and
    without checkpointed layers, and the plan checkpoints the fewest layers that fit."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mft_hpc.train import checkpointing

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    model = get_peft_model(Qwen2ForCausalLM(config), LoraConfig(r=4, target_modules="all-linear")).train()
    estimate = checkpointing.measure_activations(model, micro_batch_size=2, seq_length=128, packed=True)
    assert estimate.layers == 4 and estimate.per_layer > estimate.boundary > 0 and estimate.fixed > 0
    assert estimate.peak(0) > estimate.peak(1) > estimate.peak(2) > estimate.peak(3)
    assert checkpointing.plan(estimate, budget=10**12) == 0
    assert checkpointing.plan(estimate, budget=estimate.peak(2)) == 2
    assert checkpointing.plan(estimate, budget=0) == 4

    batch = checkpointing.synthetic_batch(2, 128, config.vocab_size, packed=True)
    measured_full = checkpointing._saved_bytes(model, batch)
    assert measured_full == pytest.approx(estimate.peak(0), rel=0.02)  # extrapolated from 1 and 2 layers
    inner = model.get_base_model()
    checkpointing.set_checkpointed_layers(inner, 2)
    assert [layer.gradient_checkpointing for layer in inner.model.layers] == [True, True, False, False]
    # what autograd keeps with 2 of 4 layers checkpointed is what the plan's peak(2) assumed
    measured_half = checkpointing._saved_bytes(model, batch)
    assert measured_half == pytest.approx(estimate.peak(2), rel=0.05)
    assert measured_full - measured_half > 1.5 * estimate.per_layer
    checkpointing.set_checkpointed_layers(inner, 0)
    assert not any(layer.gradient_checkpointing for layer in inner.model.layers)
