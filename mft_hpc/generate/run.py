"""One array element: generate a task (or a shard of it), resumably, then write the harness files.

Layout under ``out_dir`` (a member's generate/ stage directory):
    raw/raw_{task}.jsonl [.shard-NNN]       raw completions, appended per problem (+ .done when complete)
    progress/{task}[.shard-NNN].json        dashboard progress
    generations_{model}/generations_{task}_{model}.json (+ .done)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mft_hpc.generate.outputs import generations_path, harness_strings, valid_model_name, write_generations
from mft_hpc.generate.progress import Progress, progress_path
from mft_hpc.generate.rawfile import RAW_KEYS, RawWriter, raw_path, read_raw
from mft_hpc.generate.shards import n_shards, shard_indices
from mft_hpc.rundir import atomic_write_text, is_done, mark_done
from mft_hpc.tasks import load_problems
from mft_hpc.tasks.prompts import model_input
from mft_hpc.tasks.registry import check_task

log = logging.getLogger("mft_hpc.generate")


def task_problems(gen_cfg, task: str) -> list[dict]:
    return load_problems(gen_cfg.benchmarks, task)[: gen_cfg.limit]


def _backend(name: str):
    if name == "vllm":
        from mft_hpc.generate import vllm_backend

        return vllm_backend.generate
    from mft_hpc.generate import hf_backend

    return hf_backend.generate


def run_task(model_dir: str | Path, task: str, out_dir: str | Path, gen_cfg, shard: int | None = None,
             model_name: str | None = None, trust_remote_code: bool = False) -> dict:
    """Generate ``task`` (or one shard) into ``out_dir``; a rerun only generates what is missing."""
    check_task(task)
    model = valid_model_name(model_name or gen_cfg.model_name)
    final = generations_path(out_dir, task, model)
    if is_done(final):
        log.info("%s: already done (%s)", task, final)
        return {"task": task, "shard": shard, "state": "skipped", "generated": 0}
    docs = task_problems(gen_cfg, task)
    indices = shard_indices(len(docs), gen_cfg.shard_size, shard)
    raw = raw_path(out_dir, task, shard)
    generated = 0
    if not is_done(raw):
        generated = _generate_missing(model_dir, task, docs, indices, raw, out_dir, gen_cfg, shard, trust_remote_code)
    state = "finalized" if finalize_task(out_dir, task, gen_cfg, model) else "waiting for other shards"
    return {"task": task, "shard": shard, "state": state, "generated": generated}


def _generate_missing(model_dir, task, docs, indices, raw, out_dir, gen_cfg, shard, trust_remote_code) -> int:
    """Generate the problems not yet in the raw file; returns how many were generated."""
    prompt = gen_cfg.prompt_settings(task)
    with RawWriter(raw) as writer:
        todo = {i: model_input(task, docs[i], **prompt) for i in indices if i not in writer.records}
        progress = Progress(progress_path(out_dir, task, shard), task, shard, len(indices), len(indices) - len(todo))
        log.info("%s%s: %d problems, %d already in %s, generating %d with backend %s", task,
                 "" if shard is None else f" shard {shard}", len(indices), len(indices) - len(todo), raw, len(todo),
                 gen_cfg.backend)

        def keep(record: dict) -> None:
            writer.append(record)
            progress.add(record["n_tokens"])

        if todo:
            _backend(gen_cfg.backend)(model_dir, task, todo, gen_cfg, keep, trust_remote_code)
        missing = [i for i in indices if i not in writer.records]
    if missing:
        raise RuntimeError(f"{task}: backend returned no completion for problems {missing[:10]}")
    mark_done(raw, {"problems": len(indices), "prompt": prompt})  # how the inputs were built
    progress.write("done")
    return len(todo)


def finalize_task(out_dir: str | Path, task: str, gen_cfg, model: str) -> bool:
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
