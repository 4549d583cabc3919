"""One element, several tasks, one model load; continuous batching that stops where the harness stops."""

from __future__ import annotations

import json
import logging

import pytest

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.generate import run_tasks
from mft_hpc.generate.engine import GenerationFailed, Work
from mft_hpc.generate.outputs import generations_path
from mft_hpc.generate.progress import progress_path
from mft_hpc.generate.rawfile import raw_path, read_raw
from mft_hpc.rundir import is_done
from mft_hpc.tasks import load_problems
from mft_hpc.tasks.prompts import model_input

TASKS = ["humanevalsynthesize-cpp", "humanevalfixtests-python", "mbpp"]


def config(benchmarks_dir, **kw):
    base = dict(benchmarks=str(benchmarks_dir), limit=3, max_new_tokens=16, dtype="float32", batch_size=3)
    return GenerateSection(**{**base, **kw})


def engine_starts(caplog) -> int:
    return sum("engine started" in record.getMessage() for record in caplog.records)


def test_element_with_several_tasks_loads_the_model_once_and_resumes_per_task(tiny_model_dir, benchmarks_dir,
                                                                             tmp_path, caplog):
    cfg = config(benchmarks_dir)
    units = [(task, None) for task in TASKS]
    with caplog.at_level(logging.INFO, logger="mft_hpc.generate"):
        results = run_tasks(tiny_model_dir, units, tmp_path, cfg, model_name="tiny")
    assert engine_starts(caplog) == 1
    assert results == [{"task": t, "shard": None, "state": "finalized", "generated": 3} for t in TASKS]
    for task in TASKS:
        assert is_done(generations_path(tmp_path, task, "tiny"))
        progress = json.loads(progress_path(tmp_path, task).read_text())
        assert progress["state"] == "done" and progress["done"] == progress["total"] == 3
    before = {task: generations_path(tmp_path, task, "tiny").read_bytes() for task in TASKS}

    # killed mid-way through the second task: the first stays finished, the second keeps 1 problem
    killed = TASKS[1]
    raw = raw_path(tmp_path, killed)
    raw.write_text(raw.read_text().splitlines()[0] + "\n")
    for path in (raw, generations_path(tmp_path, killed, "tiny")):
        path.with_name(path.name + ".done").unlink()
    generations_path(tmp_path, killed, "tiny").unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mft_hpc.generate"):
        again = run_tasks(tiny_model_dir, units, tmp_path, cfg.model_copy(update={"backend": "exact"}), model_name="tiny")
    assert engine_starts(caplog) == 1
    assert [(r["state"], r["generated"]) for r in again] == [("skipped", 0), ("finalized", 2), ("skipped", 0)]
    assert sorted(read_raw(raw)) == [0, 1, 2]
    assert {task: generations_path(tmp_path, task, "tiny").read_bytes() for task in TASKS} == before

    caplog.clear()  # all done: no model load at all
    with caplog.at_level(logging.INFO, logger="mft_hpc.generate"):
        assert [r["state"] for r in run_tasks(tiny_model_dir, units, tmp_path, cfg, model_name="tiny")] == ["skipped"] * 3
    assert engine_starts(caplog) == 0


def prompts_of(benchmarks_dir, task, limit):
    return {i: model_input(task, doc) for i, doc in enumerate(load_problems(benchmarks_dir, task)[:limit])}


def forward_counter(model):
    calls = []
    model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(1), with_kwargs=True)
    return calls


def test_continuous_batching_cancels_a_request_at_the_harness_stop(stopping_model_dir, benchmarks_dir, caplog):
    """No native eos and a cap of 400 tokens: only the harness's brace rule ends the request early, and
    the model is run a few steps past it at most (a request left to run would take 400)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mft_hpc.generate.hf_backend import generate_works

    model = AutoModelForCausalLM.from_pretrained(stopping_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(stopping_model_dir)
    model.generation_config.eos_token_id = None
    cfg = config(benchmarks_dir, continuous_batching=True, max_new_tokens=400, eos="<|not-a-token|>")
    task = "humanevalsynthesize-cpp"  # problem 0 stops by the brace rule after 3 tokens
    records = []
    calls = forward_counter(model)
    with caplog.at_level(logging.INFO, logger="mft_hpc.generate"):
        generate_works(model, tokenizer, [Work(task, prompts_of(benchmarks_dir, task, 1), records.append)], cfg)
    (record,) = records
    assert record["finish_reason"] == "stop" and record["n_tokens"] < 20
    assert len(calls) < 100, f"{len(calls)} forward passes for {record['n_tokens']} kept tokens: not cancelled"
    assert "1 request(s) cancelled at the harness's stop" in caplog.text


def test_continuous_batching_failed_requests_are_errors_on_their_problems(stopping_model_dir, benchmarks_dir):
    """The model fails mid-run (an injected fault in its forward): every problem finished before is
    delivered, every other one is named with the error, and nothing crashes with a KeyError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mft_hpc.generate.hf_backend import generate_works

    model = AutoModelForCausalLM.from_pretrained(stopping_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(stopping_model_dir)
    calls = []

    def fault(module, args, kwargs):
        calls.append(1)
        if len(calls) == 12:
            raise RuntimeError("injected device fault")

    model.register_forward_pre_hook(fault, with_kwargs=True)
    cfg = config(benchmarks_dir, continuous_batching=True, max_new_tokens=48)
    delivered: dict[str, list[dict]] = {task: [] for task in TASKS}
    works = [Work(task, prompts_of(benchmarks_dir, task, 3), delivered[task].append) for task in TASKS]
    with pytest.raises(GenerationFailed, match="injected device fault") as failure:
        generate_works(model, tokenizer, works, cfg)
    failed = set(failure.value.errors)
    done = {(task, r["index"]) for task, records in delivered.items() for r in records}
    assert failed and done, "the fault should fall between finished and unfinished problems"
    assert failed | done == {(task, i) for task in TASKS for i in range(3)} and not failed & done
    assert all("injected device fault" in why for why in failure.value.errors.values())


def test_continuous_batching_of_several_tasks_equals_exact(stopping_model_dir, benchmarks_dir, tmp_path):
    units = [(task, None) for task in TASKS + ["humanevalfixtests-java"]]
    exact = run_tasks(stopping_model_dir, units, tmp_path / "exact", config(benchmarks_dir, backend="exact",
                                                                             max_new_tokens=48), model_name="tiny")
    continuous = run_tasks(stopping_model_dir, units, tmp_path / "cb", config(benchmarks_dir, continuous_batching=True,
                                                                               max_new_tokens=48), model_name="tiny")
    assert exact == continuous
    reasons = set()
    for task, _ in units:
        assert read_raw(raw_path(tmp_path / "cb", task)) == read_raw(raw_path(tmp_path / "exact", task))
        assert (generations_path(tmp_path / "cb", task, "tiny").read_bytes()
                == generations_path(tmp_path / "exact", task, "tiny").read_bytes())
        reasons |= {r["finish_reason"] for r in read_raw(raw_path(tmp_path / "cb", task)).values()}
    assert {"eos", "stop"} <= reasons
