"""Small demo-like multi-task data and configs for the training tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from mft_hpc.config.schema import Config

WORDS = ["alpha", "beta", "gamma", "delta", "sum", "list", "value", "return", "print", "index"]


def write_tasks(root: Path, n_per_task: int = 24, seed: int = 0) -> list[str]:
    """Two ChatML tasks with learnable, deterministic answers (code-synthesis-like and repair-like)."""
    rng = random.Random(seed)
    paths = []
    for task in ("synth", "repair"):
        folder = root / task
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n_per_task):
            a, b = rng.sample(WORDS, 2)
            if task == "synth":
                q, ans = f"Write a function named {a}_{b}.", f"def {a}_{b}(x):\n    return x + {i % 5}\n"
            else:
                q, ans = f"Fix: def {a}(x) retrun {b}", f"def {a}(x):\n    return {b}\n"
            lines.append(json.dumps({"chat_rounds": [{"role": "human", "content": q},
                                                     {"role": "bot", "content": ans}]}))
        (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
        paths.append(str(folder))
    return paths


def make_config(model_dir: Path, data_paths: list[str], data_mode: str = "padding", **train) -> Config:
    defaults = dict(peft="lora", lora_rank=8, lora_alpha=16, lora_dropout=0.05, learning_rate=5e-3, min_lr=5e-4,
                    warmup_steps=2, max_steps=8, micro_batch_size=4, eval_steps=4, save_steps=4, log_steps=1,
                    zero_stage=2, merge_dtype="fp32", seed=7)
    defaults.update(train)
    return Config.model_validate({
        "run": {"name": "t"}, "model": {"path": str(model_dir)},
        "data": {"paths": data_paths, "seq_length": 128, "mode": data_mode, "valid_ratio": 0.2, "seed": 3},
        "train": defaults,
    })


# the run every distributed and resume test compares against: 20 steps of 2 x 2 micro-batches = 4 rows
REFERENCE = dict(lora_dropout=0.1, max_steps=20, save_steps=3, eval_steps=8, gradient_accumulation_steps=2,
                 micro_batch_size=2, keep_last=1)


def metric_rows(member: Path, kind: str = "train") -> list[dict]:
    lines = (member / "train" / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["kind"] == kind]


def trained_step(member: Path) -> int:
    """The last step in metrics.jsonl while a job writes it (a half-written last line is skipped)."""
    path = member / "train" / "metrics.jsonl"
    steps = [0]
    for line in (path.read_text().splitlines() if path.exists() else []):
        try:
            steps.append(json.loads(line).get("step", 0))
        except json.JSONDecodeError:
            pass
    return max(steps)


def with_cluster(config: Config, **cluster) -> Config:
    data = config.model_dump()
    data["cluster"].update(cluster)
    return Config.model_validate(data)
