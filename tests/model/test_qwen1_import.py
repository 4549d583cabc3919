"""`mft-hpc model import`: the Qwen-1 fixture reproduces Qwen-1's own outputs as a native Qwen2."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from mft_hpc.rundir import is_done


def _native(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def test_fixture_logits_and_greedy_match_qwen1(imported_fixture, qwen1_fixture):
    model = _native(imported_fixture)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    reference = load_file(str(qwen1_fixture / "reference.safetensors"))
    n_prompts = json.loads((qwen1_fixture / "reference.json").read_text())["prompts"]
    assert len(n_prompts) == 4
    for k in range(len(n_prompts)):
        ids = reference[f"ids_{k}"]
        with torch.no_grad():
            logits = model(ids).logits
        assert (logits - reference[f"logits_{k}"]).abs().max().item() < 1e-4, k
        greedy = reference[f"greedy_{k}"]
        new = greedy.shape[1] - ids.shape[1]
        # as the reference was made: argmax of a full forward pass over the sequence so far
        seq = ids
        with torch.no_grad():
            for _ in range(new):
                seq = torch.cat([seq, model(seq).logits[:, -1:].argmax(-1)], dim=1)
        assert torch.equal(seq, greedy), k
        # and through generate() with the KV cache, as generation runs it
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                             do_sample=False)
        assert torch.equal(out, greedy), k


def test_native_directory_layout(imported_fixture):
    from transformers import AutoTokenizer, GenerationConfig

    config = json.loads((imported_fixture / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["architectures"] == ["Qwen2ForCausalLM"]
    assert "auto_map" not in config and config["dtype"] == "float32"
    assert config["intermediate_size"] == 128 and config["max_position_embeddings"] == 8192
    assert not list(imported_fixture.glob("*.py")) and not (imported_fixture / "qwen.tiktoken").exists()
    assert is_done(imported_fixture)
    tokenizer = AutoTokenizer.from_pretrained(imported_fixture)
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|extra_204|>"]) == \
        [151643, 151644, 151645, 151850]
    assert tokenizer.eos_token == "<|endoftext|>" and len(tokenizer) == 151851
    assert tokenizer("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False)["input_ids"][0] == 151644
    generation = GenerationConfig.from_pretrained(imported_fixture)
    assert not generation.do_sample and generation.num_beams == 1
    assert generation.top_p in (None, 1.0) and generation.repetition_penalty in (None, 1.0)


def test_sharded_bf16_source_converts_to_sharded_bf16(qwen1_fixture, tmp_path, imported_fixture):
    """A published-style sharded source (index + shards, bf16) gives a sharded bf16 native model."""
    from safetensors.torch import save_file

    from mft_hpc.model.qwen1_import import import_qwen1

    src = tmp_path / "qwen1-bf16"
    src.mkdir()
    for name in ("config.json", "qwen.tiktoken", "generation_config.json"):
        shutil.copy(qwen1_fixture / name, src / name)
    tensors = {k: v.to(torch.bfloat16) for k, v in load_file(str(qwen1_fixture / "model.safetensors")).items()}
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for file_name, keys in halves.items():
        save_file({k: tensors[k] for k in keys}, str(src / file_name), metadata={"format": "pt"})
    (src / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: f for f, keys in halves.items() for k in keys}}))

    out = import_qwen1(src, tmp_path / "native", max_shard_bytes=200_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    bf16 = _native_bf16(out)
    reference = _native(imported_fixture).state_dict()
    for name, tensor in bf16.state_dict().items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, reference[name].to(torch.bfloat16)), name


def _native_bf16(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype="auto")


def test_reimport_is_a_no_op_and_refuses_another_source(imported_fixture, qwen1_fixture, tmp_path, capsys):
    from mft_hpc.cli.main import main

    before = (imported_fixture / "model.safetensors").stat().st_mtime_ns
    assert main(["model", "import", str(qwen1_fixture), str(imported_fixture)]) == 0
    assert "already a finished import" in capsys.readouterr().out
    assert (imported_fixture / "model.safetensors").stat().st_mtime_ns == before
    other = tmp_path / "other-qwen1"
    shutil.copytree(qwen1_fixture, other)
    assert main(["model", "import", str(other), str(imported_fixture)]) == 2
    assert f"already an import of {qwen1_fixture}, not of {other}" in capsys.readouterr().err


def test_interrupted_import_leaves_nothing_that_looks_finished(qwen1_fixture, tmp_path, monkeypatch):
    from mft_hpc.model import safetensors_stream
    from mft_hpc.model.qwen1_import import import_qwen1

    def fail(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors_stream, "copy_range", fail)
    dst = tmp_path / "native"
    with pytest.raises(KeyboardInterrupt):
        import_qwen1(qwen1_fixture, dst)
    assert not dst.exists() and not is_done(dst) and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert is_done(import_qwen1(qwen1_fixture, dst))
