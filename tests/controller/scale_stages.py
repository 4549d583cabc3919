"""No-op stages for the scale tests: each element writes what its stage's output looks like to the
controller (the file and its `.done` marker) and nothing else, so that hundreds of Slurm elements
run in seconds. They take the fields of mft_hpc.elements' classes. Pickled by value (see
test_scale_slurm.py): jobs need not import tests/."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mft_hpc.generate.outputs import generations_path
from mft_hpc.rundir import atomic_write_json, mark_done


@dataclass(frozen=True)
class Train:
    """Training of member ``config.train.seed``: sleeps ``sleep_s[seed]`` s; raises for ``fail_seeds``."""

    config: object
    member_dir: str
    sleep_s: dict = field(default_factory=dict)
    fail_seeds: tuple[int, ...] = ()

    def __call__(self) -> str:
        seed = self.config.train.seed
        time.sleep(self.sleep_s.get(seed, 0))
        if seed in self.fail_seeds:
            raise RuntimeError(f"training of seed {seed} failed on purpose")
        merged = Path(self.member_dir) / "train" / "merged"
        merged.mkdir(parents=True, exist_ok=True)
        mark_done(merged)
        return str(merged)


@dataclass(frozen=True)
class Generate:
    """Every (task, shard) of the element: the whole task's generations file (shards are not used here)."""

    model_dir: str
    units: tuple
    out_dir: str
    config: object
    model_name: str
    trust_remote_code: bool = False

    def __call__(self) -> list[dict]:
        for task, _shard in self.units:
            path = generations_path(self.out_dir, task, self.model_name)
            atomic_write_json(path, [["pass"]])
            mark_done(path)
        return [{"task": task} for task, _ in self.units]


@dataclass(frozen=True)
class Evaluate:
    """pass@1 of a member: its seed / 100 (read from the member directory's config), so ranks are known."""

    generations_dir: str
    model_name: str
    tasks: tuple
    benchmarks_dir: str
    out_dir: str
    config: object
    limit: int | None = None
    generate: object = None

    def __call__(self) -> dict:
        import yaml

        model = self.model_name
        member_dir = Path(self.out_dir).parent
        seed = yaml.safe_load((member_dir / "config.yaml").read_text())["train"]["seed"]
        scores = {}
        for task in self.tasks:
            path = Path(self.out_dir) / f"metrics_{model}" / f"metrics_{task}_{model}.json"
            atomic_write_json(path, {task: {"pass@1": seed / 100}})
            mark_done(path)
            scores[task] = seed / 100
        return scores
