"""Evaluate one or more tasks of a generations folder: assemble, run sandboxed, write metrics.

Outputs under ``out_dir`` (the grader's layout plus per-program results):
    metrics_{model}/metrics_{task}_{model}.json   {"<task>": {"pass@1": x}, "config": {...}}
    metrics_{model}/results_{task}_{model}.jsonl  one line per problem: index, verdict, reason, seconds,
                                                  cached (the verdict came from the verdict cache), flaky
    metrics_{model}/summary_{model}.json          pass@1 and verdict counts per task
A task whose metrics file has a ``.done`` marker certifying these generations (same file content,
same limit) is skipped on reruns; one certifying other generations is re-scored, saying so.
Verdicts go through the verdict cache (cache.py): ``evaluate.cache_dir``, default
``out_dir/verdict-cache`` (the controller points every member of a run at the run's own);
``evaluate.cache: false`` judges every program again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

from mft_hpc.config.sections.evaluate import EvaluateSection
from mft_hpc.errors import UserError
from mft_hpc.evaluate.cache import VerdictCache
from mft_hpc.evaluate.generations import generations_path, load_generations
from mft_hpc.evaluate.judge import judge
from mft_hpc.evaluate.languages import program_job
from mft_hpc.evaluate.runtime import Runtime
from mft_hpc.evaluate.sandbox import runtime_from_config
from mft_hpc.rundir import atomic_open, atomic_write_json, done_info, done_problem, has_marker, is_done, mark_done
from mft_hpc.tasks.registry import check_task, load_problems

log = logging.getLogger(__name__)

VERDICTS = ("pass", "fail", "compile_error", "timeout", "oom", "error")
CACHE_DIR_NAME = "verdict-cache"


def metrics_dir(out_dir: str | Path, model: str) -> Path:
    return Path(out_dir) / f"metrics_{model}"


def metrics_path(out_dir: str | Path, task: str, model: str) -> Path:
    return metrics_dir(out_dir, model) / f"metrics_{task}_{model}.json"


def results_path(out_dir: str | Path, task: str, model: str) -> Path:
    return metrics_dir(out_dir, model) / f"results_{task}_{model}.jsonl"


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def cache_from_config(eval_cfg: EvaluateSection, out_dir) -> VerdictCache:
    return VerdictCache(eval_cfg.cache_dir or Path(out_dir) / CACHE_DIR_NAME)


def prepare_jobs(generations_dir, model, tasks, benchmarks_dir, limit: int | None = None) -> list[dict]:
    """Every program of every task, validated before anything runs.

    ``limit``: the run generated only the first ``limit`` problems of each task (a partial run);
    the files must then hold exactly that many, and pass@1 is over those problems only.
    """
    jobs = []
    for task in tasks:
        check_task(task)
        problems = load_problems(benchmarks_dir, task)
        if limit is not None:
            problems = problems[:limit]
        gens = load_generations(generations_path(generations_dir, task, model), len(problems))
        for index, (doc, gen) in enumerate(zip(problems, gens)):
            jobs.append(program_job(task, index, doc, gen, len(jobs)))
    return jobs


def check_out_dir(out_dir) -> None:
    """``out_dir`` (and its metrics folder) must be folders or creatable: checked before scoring anything."""
    for path in (Path(out_dir), *Path(out_dir).parents):
        if path.exists() and not path.is_dir():
            raise UserError(f"{out_dir}: {path} exists and is not a directory (evaluation writes a folder there)")


def scored_problem(out_dir, task: str, model: str, generations_dir, limit: int | None) -> str | None:
    """Why the task's finished metrics (if any) cannot be reused for these generations; None: reusable."""
    path = metrics_path(out_dir, task, model)
    problem = done_problem(path, {"generations": generations_path(generations_dir, task, model)})
    if problem is None and done_info(path).get("limit", limit) != limit:
        problem = f"scored with limit {done_info(path).get('limit')}, now {limit}"
    return problem


def evaluate_tasks(generations_dir, model, tasks, benchmarks_dir, out_dir, eval_cfg: EvaluateSection | None = None,
                   runtime: Runtime | None = None, progress=None, limit: int | None = None,
                   notice=None) -> dict[str, float]:
    """Evaluate ``tasks`` in one sandbox batch; returns pass@1 per task (finished tasks are read back).

    ``eval_cfg``: the config's evaluate section (default: its defaults). ``notice`` (a callable taking
    one line) hears which finished tasks are re-scored and why (their generations changed since, or
    the limit differs); default: the log.
    """
    eval_cfg = eval_cfg or EvaluateSection()
    check_out_dir(out_dir)
    notice = notice or log.warning
    todo = []
    for task in tasks:
        problem = scored_problem(out_dir, task, model, generations_dir, limit)
        if problem is not None:
            if has_marker(metrics_path(out_dir, task, model)):
                notice(f"re-scoring {task}: {metrics_path(out_dir, task, model)} {problem}")
            todo.append(task)
    scores = {t: _read_score(out_dir, t, model) for t in tasks if t not in todo}
    if todo:
        jobs = prepare_jobs(generations_dir, model, todo, benchmarks_dir, limit)
        runtime = runtime or runtime_from_config(eval_cfg)
        runtime.probe()
        workers = eval_cfg.workers or default_workers()
        results: dict[int, dict] = {}

        def on_result(record):
            results[record["id"]] = record
            if progress:
                progress(len(results), len(jobs))

        cache = cache_from_config(eval_cfg, out_dir)
        start = time.monotonic()
        counts = judge(runtime, jobs, workers, on_result, cache, reuse=eval_cfg.cache)
        wall = time.monotonic() - start
        cache_info = {"dir": str(cache.root), "reuse": eval_cfg.cache, **counts}
        for task in todo:
            task_jobs = [j for j in jobs if j["task"] == task]
            scores[task] = _write_task(out_dir, model, task, task_jobs, results, runtime, workers, wall, limit,
                                       generations_dir, benchmarks_dir, cache_info)
    _write_summary(out_dir, model)
    return {t: scores[t] for t in tasks}


def evaluate_task(generations_dir, model, task, benchmarks_dir, out_dir, eval_cfg: EvaluateSection | None = None,
                  runtime: Runtime | None = None, limit: int | None = None) -> float:
    """The controller's entry point: pass@1 of one task, metrics written under out_dir."""
    return evaluate_tasks(generations_dir, model, [task], benchmarks_dir, out_dir, eval_cfg, runtime,
                          limit=limit)[task]


def _write_task(out_dir, model, task, task_jobs, results, runtime, workers, wall, limit, generations_dir,
                benchmarks_dir, cache_info) -> float:
    rows = []
    for job in task_jobs:
        record = results[job["id"]]
        verdict = record["verdict"] if record["verdict"] in VERDICTS else "error"
        rows.append({"index": job["index"], "verdict": verdict, "reason": record.get("reason", ""),
                     "seconds": record.get("seconds", 0.0), "cached": record["cached"], "flaky": record["flaky"]})
    passed = sum(row["verdict"] == "pass" for row in rows)
    score = passed / len(rows)
    with atomic_open(results_path(out_dir, task, model)) as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    config = {"tasks": task, "model": model, "n_samples": 1, "load_generations_path":
              str(generations_path(generations_dir, task, model)), "benchmarks": str(benchmarks_dir),
              "metric_output_path": str(metrics_path(out_dir, task, model)), "allow_code_execution": True,
              "runtime": runtime.name, "image": runtime.image, "workers": workers,
              "batch_wall_seconds": round(wall, 1), "limit": limit,
              "cache": {**cache_info, "cached_in_task": sum(row["cached"] for row in rows)}}
    path = metrics_path(out_dir, task, model)
    atomic_write_json(path, {task: {"pass@1": score}, "config": config}, indent=2)
    mark_done(path, {"passed": passed, "total": len(rows), "limit": limit},
              inputs={"generations": generations_path(generations_dir, task, model)})
    return score


def _read_score(out_dir, task, model) -> float:
    path = metrics_path(out_dir, task, model)
    try:
        return float(json.loads(path.read_text())[task]["pass@1"])
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise UserError(f"{path}: finished metrics file is unreadable ({err}); delete it and its .done marker") from None


def _write_summary(out_dir, model) -> None:
    folder = metrics_dir(out_dir, model)
    tasks = {}
    for path in sorted(folder.glob(f"results_*_{model}.jsonl")):
        task = path.name[len("results_"):-len(f"_{model}.jsonl")]
        if not is_done(metrics_path(out_dir, task, model)):
            continue
        verdicts = Counter(json.loads(line)["verdict"] for line in path.read_text().splitlines() if line)
        total = sum(verdicts.values())
        tasks[task] = {"pass@1": verdicts["pass"] / total if total else 0.0, "problems": total,
                       "verdicts": {v: verdicts[v] for v in VERDICTS if verdicts[v]}}
    mean = sum(t["pass@1"] for t in tasks.values()) / len(tasks) if tasks else None
    atomic_write_json(folder / f"summary_{model}.json", {"model": model, "tasks": tasks, "mean_pass@1": mean},
                      indent=2)
