"""A fake two-member run directory in mid-flight: state store, training metrics, generations, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mft_hpc.rundir.state import COMPLETED, FAILED, RUNNING, ElementSpec, StateChange, StateStore
from mft_hpc.submission.competition import BASELINE_PASS1
from mft_hpc.tasks.names import PROBLEM_COUNTS, TASK_NAMES

FAST, SLOW = "lr0.0001", "lr0.0002"


def write_metrics(run: Path, member: str, scores: dict[str, float]) -> None:
    model = f"demo-{member}"
    folder = run / "members" / member / "evaluate" / f"metrics_{model}"
    folder.mkdir(parents=True, exist_ok=True)
    for task, value in scores.items():
        (folder / f"metrics_{task}_{model}.json").write_text(
            json.dumps({task: {"pass@1": value}, "config": {"tasks": task, "n_samples": 1}}, indent=2))


def write_generation(run: Path, member: str, task: str) -> None:
    model = f"demo-{member}"
    folder = run / "members" / member / "generate" / f"generations_{model}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"generations_{task}_{model}.json").write_text(json.dumps([["x"]] * PROBLEM_COUNTS[task]))


def write_train_metrics(run: Path, member: str, steps: int) -> None:
    path = run / "members" / member / "train" / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    # as mft_hpc.train writes them: train rows (no total: that is the config's max_steps) and eval rows
    rows = []
    for s in range(1, steps + 1):
        per_task = {"code": 2.0 - 0.1 * s, "chat": 1.0 - 0.05 * s}
        rows.append({"kind": "train", "step": s, "loss": sum(per_task.values()) / 2, "loss_per_task": per_task,
                     "lr": 2e-4, "tokens_per_s": 1500.0 + s, "time": 1000.0 + 10.0 * s})
        if s % 2 == 0:
            rows.append({"kind": "eval", "step": s, "valid_loss": 9.9, "time": 1000.0 + 10.0 * s + 5})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9')  # torn last line


def build_run(root: Path, fast_bonus: float = 0.05, slow_bonus: float = 0.02, total_steps: int = 8) -> Path:
    run = root / "runs" / "demo"
    run.mkdir(parents=True)
    config = {"run": {"name": "demo"}, "generate": {"limit": None}, "train": {"max_steps": total_steps},
              "sweep": {"train.learning_rate": [0.0001, 0.0002]}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    # FAST: everything finished and scored; SLOW: mid-generation, one task failed.
    write_train_metrics(run, FAST, steps=total_steps)
    write_train_metrics(run, SLOW, steps=total_steps // 2)
    for task in TASK_NAMES:
        write_generation(run, FAST, task)
    write_metrics(run, FAST, {t: min(1.0, BASELINE_PASS1[t] + fast_bonus) for t in TASK_NAMES})
    for task in TASK_NAMES[:5]:
        write_generation(run, SLOW, task)
    progress = run / "members" / SLOW / "generate" / "progress"
    progress.mkdir(parents=True)
    for shard, done in ((0, 100), (1, 20)):  # as mft_hpc.generate.progress writes them, two shards of 250
        (progress / f"mbpp.shard-{shard:03d}.json").write_text(json.dumps(
            {"task": "mbpp", "shard": shard, "state": "running", "done": done, "total": 250, "tok_per_s": 12.5}))
    write_metrics(run, SLOW, {t: min(1.0, BASELINE_PASS1[t] + slow_bonus) for t in TASK_NAMES[:3]})

    with StateStore(run / "state.sqlite") as store:
        specs = [ElementSpec("train", m, log_path=str(run / "logs" / f"train-{m}.out")) for m in (FAST, SLOW)]
        specs += [ElementSpec(stage, m, task=t, log_path=str(run / "logs" / f"{stage}-{m}-{t}.out"))
                  for stage in ("generate", "evaluate") for m in (FAST, SLOW) for t in TASK_NAMES]
        ids = store.add_elements(specs)
        for index, element_id in enumerate(ids):
            store.record_attempt(element_id, f"100_{index}", at=50.0)
        done = [StateChange(i, COMPLETED, at=60.0) for i, s in zip(ids, specs)
                if s.member == FAST or s.stage == "train"
                or (s.stage == "generate" and s.task in TASK_NAMES[:5]) or (s.stage == "evaluate" and s.task in TASK_NAMES[:3])]
        store.update_states(done)
        slow_gen = {s.task: i for i, s in zip(ids, specs) if s.stage == "generate" and s.member == SLOW}
        store.update_states([
            StateChange(slow_gen["mbpp"], RUNNING, at=61.0),
            StateChange(slow_gen["humanevalfixtests-go"], RUNNING, at=61.0),
            StateChange(slow_gen[TASK_NAMES[5]], FAILED, at=62.0,
                        last_error="Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory"),
        ])
    (run / "logs").mkdir()
    (run / "logs" / f"generate-{SLOW}-{TASK_NAMES[5]}.out").write_text("".join(f"line {i}\n" for i in range(100)))
    return run
