"""Greedy generation with transformers: length-sorted batches, left padding, per-sequence stops.

``exact`` mode is the same loop with batch size 1 (no padding at all), as the harness runs.
Each finished problem is handed to ``on_result`` at once so the caller can persist it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from mft_hpc.generate.settings import DecodeSettings, decode_settings
from mft_hpc.generate.stopping import StopTracker, scan_for_stop

log = logging.getLogger("mft_hpc.generate")
CONTINUOUS_CHUNK_BATCHES = 8  # prompts per continuous-batching call = batch_size * this


def load_model(model_dir: str | Path, dtype: str, trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = getattr(torch, dtype)
    if (Path(model_dir) / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM  # a LoRA adapter: merge it as the harness does

        model = AutoPeftModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype,
                                                         trust_remote_code=trust_remote_code).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code, truncation_side="left")
    return model.to(device).eval(), tokenizer


class _Criterion(StoppingCriteria):
    """One verdict per row: finished rows are padded while the others go on."""

    def __init__(self, trackers: list[StopTracker], start: int):
        self.trackers, self.start = trackers, start

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        rows = input_ids[:, self.start:].tolist()
        return torch.tensor([tracker.update(row) is not None for tracker, row in zip(self.trackers, rows)],
                            device=input_ids.device, dtype=torch.bool)


def _generate_batch(model, tokenizer, task, stops, settings: DecodeSettings, batch: list[tuple[int, list[int]]]):
    import torch

    width = max(len(ids) for _, ids in batch)
    input_ids = torch.full((len(batch), width), settings.pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (_, ids) in enumerate(batch):  # left padding: every row's last prompt token at the same column
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        attention[row, width - len(ids):] = 1
    trackers = [StopTracker(task, tokenizer, stops, settings.eos_ids, settings.budget(len(ids))) for _, ids in batch]
    config = GenerationConfig(do_sample=False, num_beams=1, num_return_sequences=1,
                              max_new_tokens=max(t.budget for t in trackers), eos_token_id=sorted(settings.eos_ids),
                              pad_token_id=settings.pad_id)
    with torch.no_grad():
        output = model.generate(input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
                                generation_config=config,
                                stopping_criteria=StoppingCriteriaList([_Criterion(trackers, width)]))
    generated = output[:, width:].tolist()
    results = []
    for (index, _), tracker, tokens in zip(batch, trackers, generated):
        kept = tokens[: tracker.stopped_at if tracker.stopped_at is not None else len(tokens)]
        results.append((index, kept, tracker.reason or "length"))
    return results


def generate(model_dir, task: str, prompts: dict[int, str], gen_cfg, on_result: Callable[[dict], None],
             trust_remote_code: bool = False) -> None:
    """Generate every prompt (index -> model input text); call ``on_result`` per finished problem."""
    model, tokenizer = load_model(model_dir, gen_cfg.dtype, trust_remote_code)
    generate_with(model, tokenizer, task, prompts, gen_cfg, on_result)


def generate_with(model, tokenizer, task: str, prompts: dict[int, str], gen_cfg, on_result: Callable[[dict], None]) -> None:
    """As ``generate`` with a model and tokenizer already loaded (benchmarks, tests)."""
    settings = decode_settings(model.generation_config, tokenizer, gen_cfg)
    checkpoint_config = model.generation_config
    # generate() fills unset values from model.generation_config: give it one with nothing to leak
    model.generation_config = GenerationConfig()
    try:
        _generate_all(model, tokenizer, task, prompts, gen_cfg, settings, on_result)
    finally:
        model.generation_config = checkpoint_config


def _generate_all(model, tokenizer, task, prompts, gen_cfg, settings, on_result) -> None:
    from mft_hpc.tasks.stops import stop_words

    stops = stop_words(task, gen_cfg.eos)
    batch_size = 1 if gen_cfg.backend == "exact" else gen_cfg.batch_size
    encoded = {}
    for index, text in prompts.items():
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        encoded[index] = ids[-settings.max_length:]  # the harness truncates on the left
    # longest first: similar lengths share a batch (little padding) and memory peaks early
    order = sorted(encoded, key=lambda i: (-len(encoded[i]), i))
    if gen_cfg.continuous_batching and gen_cfg.backend == "hf" and hasattr(model, "generate_batch"):
        _generate_continuous(model, tokenizer, task, stops, settings, [(i, encoded[i]) for i in order],
                             gen_cfg.batch_size * CONTINUOUS_CHUNK_BATCHES, on_result)
        return
    for start in range(0, len(order), batch_size):
        batch = [(i, encoded[i]) for i in order[start:start + batch_size]]
        runnable = [(i, ids) for i, ids in batch if settings.budget(len(ids)) > 0]
        for i, ids in batch:
            if settings.budget(len(ids)) == 0:
                on_result(_record(task, i, [], "length", tokenizer))
        if runnable:
            for index, tokens, reason in _generate_batch(model, tokenizer, task, stops, settings, runnable):
                on_result(_record(task, index, tokens, reason, tokenizer))


def _generate_continuous(model, tokenizer, task, stops, settings: DecodeSettings, items: list[tuple[int, list[int]]],
                         chunk: int, on_result: Callable[[dict], None]) -> None:
    """transformers' continuous batching (paged attention). It knows eos and a token cap only, so each
    output is cut afterwards where the harness would have stopped: exact under greedy decoding.
    Chunks of prompts keep results (and resume points) coming while the whole task runs."""
    for start in range(0, len(items), chunk):
        part = [(i, ids) for i, ids in items[start:start + chunk]]
        for i, ids in part:
            if settings.budget(len(ids)) == 0:
                on_result(_record(task, i, [], "length", tokenizer))
        part = [(i, ids) for i, ids in part if settings.budget(len(ids)) > 0]
        if not part:
            continue
        config = GenerationConfig(do_sample=False, num_beams=1, num_return_sequences=1,
                                  max_new_tokens=max(settings.budget(len(ids)) for _, ids in part),
                                  eos_token_id=sorted(settings.eos_ids), pad_token_id=settings.pad_id)
        outputs = model.generate_batch(inputs=[ids for _, ids in part], generation_config=config, progress_bar=False,
                                       warmup=False)
        by_prompt = {tuple(out.prompt_ids): list(out.generated_tokens) for out in outputs.values()}
        for index, ids in part:
            tracker = StopTracker(task, tokenizer, stops, settings.eos_ids, settings.budget(len(ids)))
            tokens = by_prompt[tuple(ids)]
            kept, reason = scan_for_stop(tracker, tokens)
            on_result(_record(task, index, tokens[:kept], reason, tokenizer))


def _record(task: str, index: int, tokens: list[int], reason: str, tokenizer) -> dict:
    completion = tokenizer.decode(tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return {"task": task, "index": index, "completion": completion, "finish_reason": reason, "n_tokens": len(tokens)}
