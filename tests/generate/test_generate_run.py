"""The hf backend on the tiny model: harness stopping per sequence, raw files, resume, outputs."""

from __future__ import annotations

import json

import pytest

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.errors import UserError
from mft_hpc.generate import run_task
from mft_hpc.generate.outputs import generations_path
from mft_hpc.generate.progress import progress_path
from mft_hpc.generate.rawfile import raw_path, read_raw
from mft_hpc.generate.stopping import StopTracker
from mft_hpc.rundir import is_done
from mft_hpc.tasks import load_problems
from mft_hpc.tasks.postprocess import harness_output
from mft_hpc.tasks.stops import is_finished, stop_words


def config(benchmarks_dir, **kw):
    base = dict(benchmarks=str(benchmarks_dir), limit=3, max_new_tokens=24, dtype="float32", batch_size=3)
    return GenerateSection(**{**base, **kw})


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_is_finished_rules():
    py, java, go = (stop_words(t) for t in ("humanevalsynthesize-python", "humanevalsynthesize-java", "humanevalsynthesize-go"))
    assert not is_finished("humanevalsynthesize-python", "    x = 1\n\n    return x", py)
    assert is_finished("humanevalsynthesize-python", "    return x\nfoo", py)
    assert not is_finished("humanevalsynthesize-java", "  return 1;\n  }", java)  # method closed, class not yet
    assert is_finished("humanevalsynthesize-java", "  return 1;\n  }\n}", java)
    assert is_finished("humanevalsynthesize-go", "  var m map[string]struct", go)
    assert is_finished("humanevalsynthesize-cpp", "  return 1;\n}", stop_words("humanevalsynthesize-cpp"))
    assert is_finished("humanevalsynthesize-rust", "1<|endoftext|>", stop_words("humanevalsynthesize-rust"))
    mbpp = stop_words("mbpp")
    assert "<|endoftext|>" not in mbpp and mbpp[-1] == "<|im_end|>"
    assert not is_finished("mbpp", "def f():\n    return {\n", mbpp)  # no brace or indent rule for MBPP
    assert is_finished("mbpp", "```python\nclass A:\n```", mbpp)


def test_stop_tracker_decodes_incrementally_like_a_full_decode(tokenizer):
    text = "    s = \"h\u00e9llo \u4e16\u754c\"\n    return s  # \u00fc\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    tracker = StopTracker("humanevalsynthesize-python", tokenizer, stop_words("humanevalsynthesize-python"), {2}, 10_000)
    for n in range(1, len(ids) + 1):
        assert tracker.update(ids[:n]) is None
        full = tokenizer.decode(ids[:n], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert tracker.text == full or full.endswith("\ufffd")
    assert tracker.text == text
    stop_ids = ids + tokenizer("def g", add_special_tokens=False)["input_ids"]
    assert tracker.update(stop_ids) == "stop" and tracker.stopped_at == len(stop_ids)


def test_generate_resume_and_outputs(tiny_model_dir, benchmarks_dir, tmp_path, tokenizer):
    task = "humanevalsynthesize-python"
    cfg = config(benchmarks_dir)
    result = run_task(tiny_model_dir, task, tmp_path, cfg, model_name="tiny")
    assert result == {"task": task, "shard": None, "state": "finalized", "generated": 3}
    raw = raw_path(tmp_path, task)
    records = read_raw(raw)
    assert sorted(records) == [0, 1, 2]
    stops = stop_words(task)
    for record in records.values():
        assert set(record) == {"task", "index", "completion", "finish_reason", "n_tokens"}
        assert 1 <= record["n_tokens"] <= 24
        ids = tokenizer(record["completion"], add_special_tokens=False)["input_ids"]
        if record["finish_reason"] == "stop":  # stopped at the first token where the harness would
            assert is_finished(task, record["completion"], stops)
            shorter = tokenizer.decode(ids[:-1], skip_special_tokens=False)
            assert not is_finished(task, shorter, stops)
        else:
            assert record["finish_reason"] in ("length", "eos")
    final = generations_path(tmp_path, task, "tiny")
    docs = load_problems(benchmarks_dir, task)[:3]
    assert json.loads(final.read_text()) == [[harness_output(task, docs[i], records[i]["completion"])] for i in range(3)]
    assert final.read_text().isascii() and is_done(final)
    progress = json.loads(progress_path(tmp_path, task).read_text())
    assert progress["state"] == "done" and progress["done"] == progress["total"] == 3
    assert progress["new_tokens"] == sum(r["n_tokens"] for r in records.values())

    # a finished task is skipped
    assert run_task(tiny_model_dir, task, tmp_path, cfg, model_name="tiny")["state"] == "skipped"

    # killed mid-way: one intact line and a torn one on disk, no markers -> only 2 problems regenerated
    first = raw.read_text().splitlines()[0]
    raw.write_text(first + "\n" + '{"task": "humanevalsynthesize-python", "index": 7, "compl')
    for marker in (raw.with_name(raw.name + ".done"), final.with_name(final.name + ".done")):
        marker.unlink()
    final.unlink()
    again = run_task(tiny_model_dir, task, tmp_path, cfg.model_copy(update={"backend": "exact"}), model_name="tiny")
    assert again["generated"] == 2
    lines = raw.read_text().splitlines()
    assert len(lines) == 3 and lines[0] == first and all(json.loads(line) for line in lines)
    assert is_done(final) and len(json.loads(final.read_text())) == 3


def test_exact_and_sharded_runs_merge(tiny_model_dir, benchmarks_dir, tmp_path):
    cfg = config(benchmarks_dir, backend="exact", shard_size=2, max_new_tokens=8)
    task = "mbpp"
    first = run_task(tiny_model_dir, task, tmp_path, cfg, shard=1, model_name="tiny")
    assert first == {"task": task, "shard": 1, "state": "waiting for other shards", "generated": 1}
    assert not generations_path(tmp_path, task, "tiny").exists()
    second = run_task(tiny_model_dir, task, tmp_path, cfg, shard=0, model_name="tiny")
    assert second["state"] == "finalized" and second["generated"] == 2
    merged = read_raw(raw_path(tmp_path, task))
    assert sorted(merged) == [0, 1, 2]
    data = json.loads(generations_path(tmp_path, task, "tiny").read_text())
    assert len(data) == 3 and all(entry[0].startswith('"""\n') for entry in data)


def test_bad_model_name_and_unknown_task(tiny_model_dir, benchmarks_dir, tmp_path):
    with pytest.raises(UserError, match="no '_'"):
        run_task(tiny_model_dir, "mbpp", tmp_path, config(benchmarks_dir), model_name="my_model")
    with pytest.raises(UserError, match="unknown task"):
        run_task(tiny_model_dir, "humaneval-x", tmp_path, config(benchmarks_dir), model_name="m")


def test_checkpoint_generation_config_does_not_change_decoding(tiny_model_dir, benchmarks_dir, tokenizer, caplog):
    import logging

    from transformers import AutoModelForCausalLM

    from mft_hpc.generate.hf_backend import generate_with
    from mft_hpc.tasks.prompts import model_input

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    model.generation_config.max_new_tokens = 2
    model.generation_config.repetition_penalty = 3.0
    cfg = config(benchmarks_dir, max_new_tokens=12, eos="<|not-a-token|>")
    model.generation_config.eos_token_id = None  # no native eos: every row runs to 12 tokens or a stop word
    docs = load_problems(benchmarks_dir, "mbpp")[:2]
    records = []
    with caplog.at_level(logging.INFO, logger="mft_hpc.generate"):
        generate_with(model, tokenizer, "mbpp", {i: model_input("mbpp", d) for i, d in enumerate(docs)}, cfg,
                      records.append)
    assert "max_new_tokens=2 is NOT applied" in caplog.text and "repetition_penalty=3.0 is NOT applied" in caplog.text
    assert any(r["n_tokens"] > 2 for r in records) and all(r["n_tokens"] <= 12 for r in records)
    assert model.generation_config.max_new_tokens == 2  # restored for the caller


@pytest.mark.parametrize("task", ["humanevalfixtests-java", "mbpp"])
def test_exact_backend_equals_harness_generation_loop(tiny_model_dir, benchmarks_dir, tokenizer, task):
    """The harness's loop: batch 1, model.generate with a criterion decoding all new tokens every step."""
    import torch
    from transformers import AutoModelForCausalLM, StoppingCriteria, StoppingCriteriaList

    from mft_hpc.generate.hf_backend import generate_with
    from mft_hpc.tasks.prompts import model_input

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    cfg = config(benchmarks_dir, backend="exact", max_new_tokens=24)
    prompts = {i: model_input(task, d) for i, d in enumerate(load_problems(benchmarks_dir, task)[:3])}
    ours = []
    generate_with(model, tokenizer, task, prompts, cfg, ours.append)

    class EndOfFunction(StoppingCriteria):
        def __init__(self, start):
            self.start = start

        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, self.start:])
            return all(is_finished(task, text, stop_words(task)) for text in texts)

    for record in sorted(ours, key=lambda r: r["index"]):
        ids = torch.tensor([tokenizer(prompts[record["index"]])["input_ids"]])
        with torch.no_grad():
            out = model.generate(input_ids=ids, do_sample=False, max_new_tokens=24, pad_token_id=0,
                                 stopping_criteria=StoppingCriteriaList([EndOfFunction(ids.shape[1])]))
        harness = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert record["completion"] == harness and record["n_tokens"] == out.shape[1] - ids.shape[1]


def test_unsharded_element_covers_the_whole_task_despite_shard_size(tiny_model_dir, benchmarks_dir, tmp_path):
    cfg = config(benchmarks_dir, shard_size=2, max_new_tokens=4)
    result = run_task(tiny_model_dir, "humanevalsynthesize-js", tmp_path, cfg, model_name="tiny")
    assert result["state"] == "finalized" and result["generated"] == 3
    assert len(json.loads(generations_path(tmp_path, "humanevalsynthesize-js", "tiny").read_text())) == 3


def test_continuous_batching_equals_exact(tiny_model_dir, benchmarks_dir, tmp_path):
    task = "humanevalsynthesize-cpp"
    exact = run_task(tiny_model_dir, task, tmp_path / "exact", config(benchmarks_dir, backend="exact", max_new_tokens=12),
                     model_name="tiny")
    continuous = run_task(tiny_model_dir, task, tmp_path / "cb", config(benchmarks_dir, continuous_batching=True,
                                                                         max_new_tokens=12), model_name="tiny")
    assert exact["generated"] == continuous["generated"] == 3
    assert read_raw(raw_path(tmp_path / "cb", task)) == read_raw(raw_path(tmp_path / "exact", task))
