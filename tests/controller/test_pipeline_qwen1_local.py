"""A tiny Qwen-1 checkpoint (published layout, real qwen.tiktoken) through the whole pipeline, locally:
model.path -> import -> pack-mode LoRA -> merge -> generation -> evaluation in the container -> collect.

The Slurm end-to-end test covers the DAG on the cluster; this one covers the Qwen-1 path once, on
the local executor, with one task.
"""

from __future__ import annotations

import json

import pytest
import yaml
from controller_helpers import write_config
from test_pipeline_e2e import memorize_data

from mft_hpc.config import load_config
from mft_hpc.controller.operations import resume, start_run
from mft_hpc.controller.refresh import refresh
from mft_hpc.rundir import is_done
from mft_hpc.rundir.state import COMPLETED, StateStore
from mft_hpc.runplan.runfile import load_run

IM_END = 151645


@pytest.mark.slow
@pytest.mark.container
def test_qwen1_source_end_to_end_locally(tmp_path, benchmarks_dir, evaluation_image):
    from mft_hpc.model.tiny import build_tiny_qwen1

    source = build_tiny_qwen1(tmp_path / "Qwen-1-tiny")
    data = memorize_data(tmp_path / "data" / "mbpp-memorize", benchmarks_dir)
    config = write_config(
        tmp_path / "qwen1.yaml",
        run={"name": "qwen1", "root": str(tmp_path / "runs")},
        cluster={"executor": "local", "time": 30},
        data={"paths": [str(data)], "seq_length": 512, "mode": "pack", "valid_ratio": 0.0},
        model={"path": str(source)},
        train={"lora_rank": 32, "lora_alpha": 64, "lora_dropout": 0.0, "learning_rate": 2e-2, "min_lr": 1e-7,
               "warmup_steps": 2, "max_steps": 40, "micro_batch_size": 2, "eval_steps": 1000, "save_steps": 1000,
               "merge_dtype": "fp32"},
        # fp32 and the header newline training renders: the memorised answers come back verbatim
        generate={"benchmarks": str(benchmarks_dir), "tasks": ["mbpp"], "limit": 2, "max_length_generation": 1024,
                  "batch_size": 2, "dtype": "float32", "assistant_newline": True},
        evaluate={"runtime": "apptainer", "image": str(evaluation_image)},
        submission={"allow_partial": True},
    )
    start_run(load_config(config))
    root = tmp_path / "runs" / "qwen1"
    plan = load_run(root)
    with StateStore(plan.run.state_db) as store:
        elements = refresh(plan, store, use_scheduler=False)
    assert {e.label: e.state for e in elements} == {e.label: COMPLETED for e in elements}

    # the run imported the source once into the cache and recorded both paths
    member = yaml.safe_load((root / "members" / "main" / "config.yaml").read_text())["model"]
    cache = tmp_path / "runs" / "model-cache"
    (native,) = [p for p in cache.iterdir() if p.is_dir()]
    assert member["path"] == str(native) and member["imported_from"] == str(source) and is_done(native)
    assert json.loads((native / "config.json").read_text())["model_type"] == "qwen2"
    assert resume(root).submitted == {}  # a rerun finds everything done (and the import in place)

    # the merged model stops on <|im_end|>: in the run's generations and when asked directly
    merged = root / "members" / "main" / "train" / "merged"
    assert json.loads((merged / "generation_config.json").read_text())["eos_token_id"] == IM_END
    raw = [json.loads(line) for line in (root / "members" / "main" / "generate" / "raw" / "raw_mbpp.jsonl")
           .read_text().splitlines()]
    assert len(raw) == 2 and all(r["finish_reason"] == "eos" and r["completion"].endswith("<|im_end|>")
                                 for r in raw), raw
    _assert_stops_on_im_end(merged, benchmarks_dir)

    board = json.loads((root / "collect" / "leaderboard.json").read_text())
    assert board["members"][0]["scores"]["mbpp"] > 0  # the memorised solutions pass in the container


def _assert_stops_on_im_end(merged, benchmarks_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mft_hpc.tasks.registry import load_problems

    tokenizer = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged)
    doc = load_problems(benchmarks_dir, "mbpp")[0]
    user = f'"""\n{doc["text"]}\n{doc["test_list"][0]}\n"""\n'
    prompt = f"<|im_start|>system\n<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    new = model.generate(**ids, max_new_tokens=400)[0, ids["input_ids"].shape[1]:].tolist()
    assert new[-1] == IM_END and len(new) < 400, tokenizer.decode(new)
