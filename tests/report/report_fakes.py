"""Synthetic run directories for the report tests and bench: every file in its stage's real format.

The run record (config.yaml, run.json, members/<m>/config.yaml) and the state store are written by
the controller's own functions; training metrics rows carry the keys ``mft_hpc.train.loop`` logs;
per-problem results and metrics files are those ``mft_hpc.evaluate`` writes; then the real
collect step (``mft_hpc.elements.CollectElement``) makes the leaderboard, the zips and the report.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

from mft_hpc.config import load_config
from mft_hpc.controller.dag import all_keys, element_specs
from mft_hpc.rundir import RunDir, atomic_write_json, mark_done
from mft_hpc.rundir.state import StateChange, StateStore
from mft_hpc.runplan.key import COLLECT_KEY
from mft_hpc.runplan.plan import build_plan
from mft_hpc.runplan.runfile import write_run
from mft_hpc.submission.competition import BASELINE_PASS1
from mft_hpc.tasks.names import PROBLEM_COUNTS, TASK_NAMES

TRAIN_TASKS = ("code-synthesis", "code-repair")
REASONS = {
    "fail": ["AssertionError", "NameError: name 'helper_{n}' is not defined",
             "TypeError: unsupported operand type(s) for +: 'int' and 'str'"],
    "compile_error": ["prog.cpp:{n}:5: error: 'vec{n}' was not declared in this scope",
                      "error[E0425]: cannot find value `x{n}` in this scope",
                      "Main.java:{n}: error: cannot find symbol"],
    "timeout": ["timed out"],
    "oom": ["killed (memory limit)"],
    "error": ["evaluator error: OSError: [Errno 24] Too many open files"],
}


def write_config(root: Path, name: str, members: int, limit: int | None, benchmarks: Path, model: Path,
                 steps: int, executor: str = "local") -> Path:
    config = {
        "run": {"name": name, "root": str(root)},
        "cluster": {"executor": executor, "cpus_per_task": 2, "partition": "debug" if executor == "slurm" else None},
        "data": {"paths": [str(root / "data")]},
        "model": {"path": str(model)},
        "train": {"max_steps": steps, "eval_steps": max(1, steps // 10)},
        "generate": {"benchmarks": str(benchmarks), "limit": limit},
        "submission": {"allow_partial": True},
    }
    if members > 1:
        config["sweep"] = {"train.learning_rate": [round(1e-4 * (i + 1), 6) for i in range(members)]}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train_rows(steps: int, eval_every: int, coba: bool, rng: random.Random) -> list[dict]:
    """What mft_hpc.train.loop logs: a start row, a train row per step, an eval row every ``eval_every``."""
    rows = [{"kind": "start", "step": 0, "world_size": 1, "time": 1000.0}]
    best, best_loss = None, None
    for step in range(1, steps + 1):
        per_task = {task: 2.5 * (0.5 + 0.5 / (1 + step / 40)) + 0.2 * i + rng.uniform(-0.05, 0.05)
                    for i, task in enumerate(TRAIN_TASKS)}
        rows.append({"kind": "train", "step": step, "epoch": step // 100, "loss": sum(per_task.values()) / 2,
                     "loss_per_task": per_task, "lr": 2e-4 * min(1.0, step / 10), "tokens": 4096,
                     "tokens_per_s": 2000.0 + rng.uniform(-50, 50), "supervised_tokens_per_s": 900.0 + rng.uniform(-30, 30),
                     "mfu": None, "memory_gib": 1.5, "skipped_nonfinite": 0, "time": 1000.0 + 2.0 * step,
                     "tokens_seen": 4096 * step})
        if step % eval_every == 0 or step == steps:
            valid = {task: loss + 0.1 + 0.002 * max(0, step - steps * 0.7) for task, loss in per_task.items()}
            overall = sum(valid.values()) / len(valid)
            if best_loss is None or overall < best_loss:
                best, best_loss = step, overall
            rows.append({"kind": "eval", "step": step, "valid_loss": overall, "valid_loss_per_task": valid,
                         "best_step": best, "task_weights": [1.2, 0.8] if coba else None})
    return rows


def write_training(run: RunDir, member: str, steps: int, coba: bool, rng: random.Random) -> dict:
    rows = train_rows(steps, max(1, steps // 10), coba, rng)
    path = run.member(member).train_metrics
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    best = [r for r in rows if r["kind"] == "eval"][-1]["best_step"]
    result = {"from_step": best, "last_step": steps, "best_step": best,
              "best_valid_loss": min(r["valid_loss"] for r in rows if r["kind"] == "eval"),
              "stopped_early": False, "skipped_nonfinite": 0}
    atomic_write_json(run.member(member).train_result, result)
    return result


def write_task_results(member_plan, task: str, pass_at_1: float, limit: int | None, rng: random.Random) -> float:
    """Generations + per-problem results + metrics file for one task, as generation/evaluation write them."""
    from mft_hpc.evaluate.evaluate import metrics_path, results_path
    from mft_hpc.generate.outputs import generations_path

    n = PROBLEM_COUNTS[task] if limit is None else min(limit, PROBLEM_COUNTS[task])
    model = member_plan.model_name
    gen_path = generations_path(member_plan.generate_dir, task, model)
    gen_path.parent.mkdir(parents=True, exist_ok=True)
    gen_path.write_text(json.dumps([[f"# {task} {i}\n"] for i in range(n)]))
    mark_done(gen_path)
    passed = set(rng.sample(range(n), round(pass_at_1 * n)))
    weights = {"fail": 6, "compile_error": 3 if "python" not in task and task != "mbpp" else 0,
               "timeout": 1, "oom": 0.3, "error": 0.1}
    verdicts = [v for v, w in weights.items() if w]
    rows = []
    for index in range(n):
        if index in passed:
            rows.append({"index": index, "verdict": "pass", "reason": "", "seconds": 0.1})
            continue
        verdict = rng.choices(verdicts, [weights[v] for v in verdicts])[0]
        reason = rng.choice(REASONS[verdict]).format(n=rng.randint(1, 60))
        rows.append({"index": index, "verdict": verdict, "reason": reason, "seconds": 0.3})
    out = member_plan.evaluate_dir
    results_path(out, task, model).parent.mkdir(parents=True, exist_ok=True)
    results_path(out, task, model).write_text("".join(json.dumps(r) + "\n" for r in rows))
    score = len(passed) / n
    atomic_write_json(metrics_path(out, task, model), {task: {"pass@1": score}, "config": {"tasks": task}}, indent=2)
    mark_done(metrics_path(out, task, model), {"passed": len(passed), "total": n})
    return score


def record_local_jobs(plan, store: StateStore, start: float, rng: random.Random) -> None:
    """One job per stage and member, run one after another (as the local executor does)."""
    ids = {(e.stage, e.member, e.task, e.element): e.id for e in store.elements()}
    clock, job = start, 4000
    for member in plan.members:
        for stage in ("train", "generate", "evaluate"):
            keys = [k for k in all_keys(plan) if k.stage == stage and k.member == member.name]
            job += 1
            seconds = {"train": 600, "generate": 300, "evaluate": 120}[stage] * rng.uniform(0.8, 1.2)
            for key in keys:
                store.record_attempt(ids[key.store_key()], str(job), at=clock)
            store.update_states([StateChange(ids[k.store_key()], "completed", at=clock + seconds) for k in keys])
            clock += seconds
    store.record_attempt(ids[COLLECT_KEY.store_key()], str(job + 1), at=clock)
    store.update_states([StateChange(ids[COLLECT_KEY.store_key()], "completed", at=clock + 5)])


def build_synthetic_run(root: Path, name: str, members: int, limit: int | None, benchmarks: Path, model: Path,
                        steps: int = 60, seed: int = 0, coba: bool = False) -> Path:
    """A finished run (training, generation, evaluation, local job records), then the real collect."""
    from mft_hpc.elements import CollectElement

    rng = random.Random(seed)
    (root / "data").mkdir(parents=True, exist_ok=True)
    loaded = load_config(write_config(root, name, members, limit, benchmarks, model, steps), check_paths=False)
    plan = build_plan(RunDir.create(root / name), loaded.members, loaded.is_sweep)
    write_run(plan, loaded.config, loaded.is_sweep)
    for index, member in enumerate(plan.members):
        write_training(plan.run, member.name, steps, coba, rng)
        bonus = 0.01 * index - 0.03
        for task in TASK_NAMES:
            write_task_results(member, task, max(0.0, min(1.0, BASELINE_PASS1[task] + bonus + rng.uniform(0, 0.04))),
                               limit, rng)
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        record_local_jobs(plan, store, start=1.7e9, rng=rng)
    CollectElement(str(plan.run.root))()
    return plan.run.root


OOM_ERROR = "Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory"


def break_run(run: Path) -> dict[str, str]:
    """Make a finished 3-member run bad in the ways a real one goes bad; returns what was done to whom.

    first member: one corrupt metrics file and a torn metrics.jsonl line in the middle;
    second: training failed (OOM) after a few steps, so nothing downstream exists;
    third: never evaluated.
    """
    import shutil

    rundir = RunDir(run)
    first, second, third = sorted(p.name for p in (run / "members").iterdir())
    corrupt = next((run / "members" / first / "evaluate").glob("metrics_*/metrics_mbpp_*.json"))
    corrupt.write_text('{"mbpp": {"pass@1": ')
    lines = rundir.member(first).train_metrics.read_text().splitlines()
    lines.insert(len(lines) // 2, '{"kind": "train", "step": 1')
    rundir.member(first).train_metrics.write_text("\n".join(lines) + "\n")
    rundir.member(second).train_metrics.write_text("".join(line + "\n" for line in
                                                    rundir.member(second).train_metrics.read_text().splitlines()[:6]))
    rundir.member(second).train_result.unlink()
    for stage in ("generate", "evaluate"):
        shutil.rmtree(rundir.member(second).stage(stage))
    shutil.rmtree(rundir.member(third).evaluate)
    with StateStore(rundir.state_db, run=run.name) as store:
        train = store.elements(stage="train", member=second)[0]
        store.update_states([StateChange(train.id, "failed", last_error=OOM_ERROR)])
    return {"corrupt_metrics": str(corrupt), "failed_training": second, "not_evaluated": third}
