"""No-op stages for the scale tests: each element writes what its stage's output looks like to the
controller (the file and its `.done` marker) and nothing else, so that hundreds of Slurm elements
run in seconds. Pickled by value (see test_scale_slurm.py): jobs need not import tests/."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mft_hpc.generate.outputs import generations_path
from mft_hpc.rundir import atomic_write_json, mark_done


class Train:
    """Training of member ``config.train.seed``: sleeps ``sleep_s[seed]`` s; raises for ``fail_seeds``."""

    def __init__(self, sleep_s: dict[int, float] | None = None, fail_seeds: tuple[int, ...] = ()):
        self.sleep_s = sleep_s or {}
        self.fail_seeds = fail_seeds

    def __call__(self, config, member_dir: str) -> str:
        seed = config.train.seed
        time.sleep(self.sleep_s.get(seed, 0))
        if seed in self.fail_seeds:
            raise RuntimeError(f"training of seed {seed} failed on purpose")
        merged = Path(member_dir) / "train" / "merged"
        merged.mkdir(parents=True, exist_ok=True)
        mark_done(merged)
        return str(merged)


def generate(model_dir, units, out_dir, gen_cfg, model_name=None, trust_remote_code=False) -> list[dict]:
    """Every (task, shard) of the element: the whole task's generations file (shards are not used here)."""
    for task, _shard in units:
        path = generations_path(out_dir, task, model_name)
        atomic_write_json(path, [["pass"]])
        mark_done(path)
    return [{"task": task} for task, _ in units]


def evaluate(generations_dir, model, tasks, benchmarks_dir, out_dir, eval_cfg, limit=None, gen_cfg=None) -> dict:
    """pass@1 of a member: its seed / 100 (read from the member directory's config), so ranks are known."""
    import yaml

    member_dir = Path(out_dir).parent
    seed = yaml.safe_load((member_dir / "config.yaml").read_text())["train"]["seed"]
    scores = {}
    for task in tasks:
        path = Path(out_dir) / f"metrics_{model}" / f"metrics_{task}_{model}.json"
        atomic_write_json(path, {task: {"pass@1": seed / 100}})
        mark_done(path)
        scores[task] = seed / 100
    return scores
