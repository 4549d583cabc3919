"""One array element: generate its tasks (or shards) with one engine, resumably, then write the harness files.

Layout under ``out_dir`` (a member's generate/ stage directory):
    raw/raw_{task}.jsonl [.shard-NNN]       raw completions, appended per problem (+ .done when complete)
    progress/{task}[.shard-NNN].json        dashboard progress
    generations_{model}/generations_{task}_{model}.json (+ .done)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.generate.engine import GenerationFailed, Work
from mft_hpc.generate.outputs import generations_path, harness_strings, valid_model_name, write_generations
from mft_hpc.generate.progress import Progress, progress_path
from mft_hpc.generate.rawfile import RAW_KEYS, RawWriter, raw_path, read_raw
from mft_hpc.generate.shards import n_shards, shard_indices
from mft_hpc.rundir import atomic_write_text, is_done, mark_done
from mft_hpc.tasks import load_problems
from mft_hpc.tasks.prompts import model_input
from mft_hpc.tasks.registry import check_task

log = logging.getLogger(__name__)


def task_problems(gen_cfg: GenerateSection, task: str) -> list[dict]:
    return load_problems(gen_cfg.benchmarks, task)[: gen_cfg.limit]


def open_engine(model_dir, gen_cfg: GenerateSection, trust_remote_code: bool = False):
    """The backend's engine with the model loaded (``generate(works)``, ``close()``): one per element."""
    if gen_cfg.backend == "vllm":
        from mft_hpc.generate.vllm_backend import VllmEngine

        engine = VllmEngine(model_dir, gen_cfg, trust_remote_code)
    else:
        from mft_hpc.generate.hf_backend import HFEngine

        engine = HFEngine(model_dir, gen_cfg, trust_remote_code)
    log.info("engine started: backend %s, model %s", gen_cfg.backend, model_dir)
    return engine


def run_task(model_dir: str | Path, task: str, out_dir: str | Path, gen_cfg: GenerateSection, shard: int | None = None,
             model_name: str | None = None, trust_remote_code: bool = False) -> dict:
    """Generate ``task`` (or one shard) into ``out_dir``; a rerun only generates what is missing."""
    return run_tasks(model_dir, [(task, shard)], out_dir, gen_cfg, model_name, trust_remote_code)[0]


@dataclass
class _Unit:
    """One task or shard of an element, while its problems are being generated."""

    task: str
    shard: int | None
    indices: range
    raw: Path
    writer: RawWriter
    progress: Progress
    todo: dict[int, str]


def run_tasks(model_dir: str | Path, units: list[tuple[str, int | None]], out_dir: str | Path, gen_cfg: GenerateSection,
              model_name: str | None = None, trust_remote_code: bool = False) -> list[dict]:
    """One array element: every (task, shard) of ``units`` with one model/engine load (none when all is
    done). Each task keeps its own raw file, progress and resume point; a task whose problems all
    finished is written out even when another task of the element failed (then raised at the end)."""
    model = valid_model_name(model_name or gen_cfg.model_name)
    for task, _ in units:
        check_task(task)
    results: dict[tuple[str, int | None], dict] = {}
    open_units: list[_Unit] = []
    try:
        for task, shard in units:
            final = generations_path(out_dir, task, model)
            if is_done(final):
                log.info("%s: already done (%s)", task, final)
                results[(task, shard)] = {"task": task, "shard": shard, "state": "skipped", "generated": 0}
            elif not is_done(raw_path(out_dir, task, shard)):
                open_units.append(_open_unit(task, shard, out_dir, gen_cfg))
        failure = _generate(model_dir, open_units, gen_cfg, trust_remote_code)
    finally:
        for unit in open_units:
            unit.writer.close()
    errors = [str(failure)] if failure else []
    generated = {(u.task, u.shard): len(u.todo) for u in open_units}
    for unit in open_units:
        missing = [i for i in unit.indices if i not in unit.writer.records]
        if missing:
            if not failure:
                errors.append(f"{unit.task}: backend returned no completion for problems {missing[:10]}")
            unit.progress.write("failed")
            continue
        mark_done(unit.raw, {"problems": len(unit.indices), "prompt": gen_cfg.prompt_settings(unit.task)})
        unit.progress.write("done")
    for task, shard in units:
        if (task, shard) in results or not is_done(raw_path(out_dir, task, shard)):
            continue
        state = "finalized" if finalize_task(out_dir, task, gen_cfg, model) else "waiting for other shards"
        results[(task, shard)] = {"task": task, "shard": shard, "state": state,
                                  "generated": generated.get((task, shard), 0)}
    if errors:
        raise RuntimeError("; ".join(errors))
    return [results[unit] for unit in units]


def _open_unit(task: str, shard: int | None, out_dir, gen_cfg: GenerateSection) -> _Unit:
    """The unit's raw file opened for appending and the problems not yet in it (how inputs are built)."""
    docs = task_problems(gen_cfg, task)
    indices = shard_indices(len(docs), gen_cfg.shard_size, shard)
    prompt = gen_cfg.prompt_settings(task)
    raw = raw_path(out_dir, task, shard)
    writer = RawWriter(raw)
    todo = {i: model_input(task, docs[i], **prompt) for i in indices if i not in writer.records}
    progress = Progress(progress_path(out_dir, task, shard), task, shard, len(indices), len(indices) - len(todo))
    log.info("%s%s: %d problems, %d already in %s, generating %d with backend %s", task,
             "" if shard is None else f" shard {shard}", len(indices), len(indices) - len(todo), raw, len(todo),
             gen_cfg.backend)
    return _Unit(task, shard, indices, raw, writer, progress, todo)


def _generate(model_dir, units: list[_Unit], gen_cfg: GenerateSection,
              trust_remote_code: bool) -> GenerationFailed | None:
    """Every unit's missing problems through one engine; returns the per-problem failures, if any."""
    works = [Work(u.task, u.todo, _keeper(u)) for u in units if u.todo]
    if not works:
        return None
    engine = open_engine(model_dir, gen_cfg, trust_remote_code)
    try:
        engine.generate(works)
    except GenerationFailed as failure:
        return failure
    finally:
        engine.close()
    return None


def _keeper(unit: _Unit):
    def keep(record: dict) -> None:
        unit.writer.append(record)
        unit.progress.add(record["n_tokens"])

    return keep


def finalize_task(out_dir: str | Path, task: str, gen_cfg: GenerateSection, model: str) -> bool:
    """Write the generations file from the whole-task raw file or, once all are done, the shards' raw
    files (merged into the whole-task one); False while shards are missing.

    Idempotent and atomic: two shards finishing at once both write the same bytes.
    """
    docs = task_problems(gen_cfg, task)
    prompt = gen_cfg.prompt_settings(task)
    merged = raw_path(out_dir, task)
    if is_done(merged):  # an unsharded element (shard=None) covers the whole task whatever shard_size says
        records = read_raw(merged)
    else:
        count = n_shards(len(docs), gen_cfg.shard_size)
        parts = [raw_path(out_dir, task, k) for k in range(count)]
        if count == 1 or not all(is_done(part) for part in parts):
            return False
        records = {}
        for part in parts:
            records.update(read_raw(part))
        atomic_write_text(merged, "".join(json.dumps({k: records[i][k] for k in RAW_KEYS}) + "\n" for i in sorted(records)))
        mark_done(merged, {"problems": len(records), "shards": count, "prompt": prompt})
    strings = harness_strings(task, docs, records, str(merged), eos=gen_cfg.eos, **prompt)
    write_generations(generations_path(out_dir, task, model), strings,
                      {"problems": len(strings), "new_tokens": sum(r["n_tokens"] for r in records.values()),
                       "prompt": prompt})
    return True
