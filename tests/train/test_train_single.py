"""Single-process training on the tiny Qwen2 (DeepSpeed ZeRO-2 engine, gloo, fp32 on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mft_hpc.train import train_member
from tests.train.helpers import make_config
from tests.train.helpers import metric_rows as _rows


@pytest.mark.slow
def test_lora_learns_then_merged_model_generates_and_stops_at_im_end(tmp_path, tiny_model_dir, task_paths,
                                                                     torch_one_thread):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = make_config(tiny_model_dir, task_paths, data_mode="pack", lora_rank=16, lora_alpha=32, lora_dropout=0.0,
                         learning_rate=1e-2, min_lr=1e-3, max_steps=40, eval_steps=20, save_steps=20, log_steps=1)
    merged = train_member(config, tmp_path / "m")
    train = _rows(tmp_path / "m")
    assert [r["step"] for r in train] == list(range(1, 41))
    assert sum(r["loss"] for r in train[-5:]) / 5 < 0.3 * train[0]["loss"]
    assert set(train[-1]["loss_per_task"]) == {"synth", "repair"}
    evals = _rows(tmp_path / "m", "eval")
    assert [r["step"] for r in evals] == [20, 40] and evals[0]["valid_loss"] < train[0]["loss"]
    rank = json.loads((tmp_path / "m" / "train" / "ranks" / "rank_0.json").read_text())
    assert (rank["engine"], rank["zero_stage"], rank["world_size"]) == ("DeepSpeedEngine", 2, 1)
    out = tmp_path / "m" / "train"
    assert (out / "loss_curve.png").stat().st_size > 0 and list((out / "tensorboard").glob("events.*"))

    generation = json.loads((merged / "generation_config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert generation["eos_token_id"] == im_end and generation["pad_token_id"] == im_end
    assert generation["do_sample"] is False and "max_new_tokens" not in generation and "max_length" not in generation
    model = AutoModelForCausalLM.from_pretrained(str(merged))
    record = json.loads(Path(task_paths[1], "data.jsonl").read_text().splitlines()[0])
    question, answer = (turn["content"] for turn in record["chat_rounds"])
    prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    enc = tokenizer(prompt, return_tensors="pt")
    generated = model.generate(**enc, max_new_tokens=60)[0, enc["input_ids"].shape[1]:].tolist()
    assert im_end in generated and generated[-1] == im_end and len(generated) < 60  # stopped at <|im_end|>

    before = (out / "metrics.jsonl").read_text()
    assert train_member(config, tmp_path / "m") == merged  # rerun: finished work is skipped
    assert (out / "metrics.jsonl").read_text() == before


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_resume_after_kill_reproduces_the_uninterrupted_losses(tmp_path, reference_run):
    config, straight_dir = reference_run

    def kill_at_step_5(state):
        if state.step == 5:
            raise _Killed

    with pytest.raises(_Killed):
        train_member(config, tmp_path / "killed", on_step=kill_at_step_5)
    ckpts = tmp_path / "killed" / "train" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*.done")) == ["step_00000003.done"]  # keep_last 1
    assert not (tmp_path / "killed" / "train" / "adapter.done").exists()
    train_member(config, tmp_path / "killed")  # resumes from step 3

    straight, resumed = _rows(straight_dir), _rows(tmp_path / "killed")
    assert [r["step"] for r in resumed] == list(range(1, 21))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight]  # exact, fp32 on CPU
    assert [r["lr"] for r in resumed] == [r["lr"] for r in straight]
    assert [r["valid_loss"] for r in _rows(tmp_path / "killed", "eval")] == \
           [r["valid_loss"] for r in _rows(straight_dir, "eval")]
    saved = [json.loads(line)["step"] for line in (ckpts / "history.jsonl").read_text().splitlines()]
    assert saved == sorted(set(saved)) and saved[-1] == 20
    starts = _rows(tmp_path / "killed", "start")
    assert [(r["step"], r.get("resumed_from")) for r in starts] == [(0, None), (3, "step_00000003")]


@pytest.mark.slow
def test_resume_is_exact_with_bf16_adapters_under_deepspeed(tmp_path, tiny_model_dir, task_paths, torch_one_thread):
    """As in production on GPU: DeepSpeed bf16 (bf16 adapters, fp32 master weights in the optimizer),
    packed rows; a run killed after its step-3 checkpoint resumes to the same per-step losses."""
    from tests.train.helpers import REFERENCE

    config = make_config(tiny_model_dir, task_paths, data_mode="pack", bf16=True, **{**REFERENCE, "max_steps": 8})

    def kill_at_step_5(state):
        if state.step == 5:
            raise _Killed

    train_member(config, tmp_path / "straight")
    with pytest.raises(_Killed):
        train_member(config, tmp_path / "killed", on_step=kill_at_step_5)
    train_member(config, tmp_path / "killed")
    rank = json.loads((tmp_path / "straight" / "train" / "ranks" / "rank_0.json").read_text())
    assert (rank["engine"], rank["adapter_dtype"]) == ("DeepSpeedEngine", "bfloat16")
    straight, resumed = _rows(tmp_path / "straight"), _rows(tmp_path / "killed")
    assert [r["step"] for r in resumed] == list(range(1, 9))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight]  # exact, not approximately
    assert len({r["loss"] for r in straight}) > 1
    assert [(r["step"], r.get("resumed_from")) for r in _rows(tmp_path / "killed", "start")] == \
        [(0, None), (3, "step_00000003")]


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_qlora_trains_on_cpu(tmp_path, tiny_model_dir, task_paths, torch_one_thread, quantization):
    """NF4 and LLM.int8 base weights (bitsandbytes 0.50 runs both on CPU, ../shared/reference/ml_cpu.md)."""
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the install
        pytest.skip(f"bitsandbytes unusable here: {exc}")
    from safetensors.torch import load_file

    config = make_config(tiny_model_dir, task_paths, peft="qlora", quantization=quantization, max_steps=4,
                         eval_steps=4, save_steps=4)
    merged = train_member(config, tmp_path / "q")
    rank = json.loads((tmp_path / "q" / "train" / "ranks" / "rank_0.json").read_text())
    assert rank["quantized_layers"] == 14  # 7 linear layers x 2 decoder layers are quantized
    losses = [r["loss"] for r in _rows(tmp_path / "q")]
    assert len(losses) == 4 and all(0 < loss < 20 for loss in losses)
    evals = _rows(tmp_path / "q", "eval")
    assert len(evals) == 1 and 0 < evals[0]["valid_loss"] < 20
    adapter = load_file(str(tmp_path / "q" / "train" / "adapter" / "adapter_model.safetensors"))
    assert any(bool(t.abs().sum() > 0) for name, t in adapter.items() if "lora_B" in name)  # it did train
    assert (merged / "model.safetensors").exists()


@pytest.mark.slow
def test_early_stopping_keeps_the_best_adapter_and_coba_reweights(tmp_path, tiny_model_dir, task_paths,
                                                                  torch_one_thread):
    # lr 1.0 makes the validation loss blow up after the first steps: patience 2 stops the run
    config = make_config(tiny_model_dir, task_paths, learning_rate=1.0, min_lr=0.1, warmup_steps=0, max_steps=30,
                         eval_steps=1, save_steps=100, keep_last=1, early_stopping_patience=2,
                         loss_mode="coba", coba_history=2)
    train_member(config, tmp_path / "e")
    result = json.loads((tmp_path / "e" / "train" / "adapter.done").read_text())
    evals = _rows(tmp_path / "e", "eval")
    assert result["stopped_early"] and result["last_step"] < 30
    best = min(evals[1:], key=lambda r: r["valid_loss"])  # evals[0]: CoBa's step-0 baseline
    assert result["from_step"] == result["best_step"] == best["step"] < result["last_step"]
    assert result["last_step"] - result["best_step"] == 2  # two evaluations without improvement
    kept = sorted(p.name for p in (tmp_path / "e" / "train" / "checkpoints").glob("step_*.done"))
    assert f"step_{result['best_step']:08d}.done" in kept  # the best survives keep_last
    assert evals[0]["step"] == 0 and evals[0]["task_weights"] == [1.0, 1.0]
    assert any(r["task_weights"] != [1.0, 1.0] for r in evals[2:])  # CoBa moved the weights


def _model_with_a_nan_token(tiny_model_dir, out: Path, task_paths) -> Path:
    """The tiny model, untied, with the input embedding of one token that ~1/4 of the samples
    contain set to NaN: exactly those samples give a NaN loss."""
    import collections

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    samples = [tokenizer.apply_chat_template([{"role": "user" if t["role"] == "human" else "assistant",
                                                "content": t["content"]} for t in json.loads(line)["chat_rounds"]],
                                              tokenize=False)
               for path in task_paths for line in Path(path, "data.jsonl").read_text().splitlines()]
    seen = collections.Counter(tok for text in samples for tok in set(tokenizer(text)["input_ids"]))
    token = min(seen, key=lambda tok: abs(seen[tok] / len(samples) - 0.25))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    with torch.no_grad():
        model.get_input_embeddings().weight[token] = float("nan")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
def test_nonfinite_losses_are_skipped_and_counted_never_backpropagated(tmp_path, tiny_model_dir, task_paths,
                                                                        torch_one_thread):
    from safetensors.torch import load_file

    model_dir = _model_with_a_nan_token(tiny_model_dir, tmp_path / "nan-model", task_paths)
    config = make_config(model_dir, task_paths, micro_batch_size=1, max_steps=12, eval_steps=100, save_steps=100)
    train_member(config, tmp_path / "n")
    result = json.loads((tmp_path / "n" / "train" / "adapter.done").read_text())
    assert result["last_step"] == 12 and result["skipped_nonfinite"] > 0
    rows = _rows(tmp_path / "n")
    assert all(r["loss"] is not None for r in rows) and rows[-1]["skipped_nonfinite"] == result["skipped_nonfinite"]
    adapter = load_file(str(tmp_path / "n" / "train" / "adapter" / "adapter_model.safetensors"))
    assert adapter and all(bool(t.isfinite().all()) for t in adapter.values())
    assert any(bool(t.abs().sum() > 0) for name, t in adapter.items() if "lora_B" in name)  # it did train


@pytest.mark.slow
def test_epoch_training_logs_its_step_total_and_the_dashboard_shows_an_eta(tmp_path, tiny_model_dir, task_paths,
                                                                         torch_one_thread):
    """With the default ``max_steps: null`` the total comes from the epochs: the loop logs it in every row,
    so the dashboard (which reads only metrics.jsonl and the config) has a step total and an ETA."""
    import yaml

    from mft_hpc.dashboard.render import render_plain
    from mft_hpc.dashboard.snapshot import read_run

    config = make_config(tiny_model_dir, task_paths, max_steps=None, epochs=1, micro_batch_size=2, eval_steps=100,
                         save_steps=100)
    run = tmp_path / "runs" / "t"
    train_member(config, run / "members" / "main")
    train = _rows(run / "members" / "main")
    total = len(train)
    assert total > 3 and {r["total_steps"] for r in train} == {total}
    assert _rows(run / "members" / "main", "start")[0]["total_steps"] == total

    (run / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    metrics = run / "members" / "main" / "train" / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] <= 3))  # as seen mid-training
    member = read_run(run).members[0]
    assert member.train.step == 3 and member.train.total_steps == total and member.train.eta_s > 0
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in render_plain(read_run(run)).splitlines()]
    (training_row,) = [cells for cells in rows if cells[:2] == ["main", f"3/{total}"]]  # member, step, ..., ETA
    assert training_row[-1].endswith("s") and training_row[-1] != "—"
