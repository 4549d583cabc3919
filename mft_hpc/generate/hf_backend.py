"""Greedy generation with transformers: length-sorted batches, left padding, per-sequence stops.

``exact`` mode is the same loop with batch size 1 (no padding at all), as the harness runs; with
``continuous_batching`` transformers' paged-attention manager serves every task's requests at once.
Each finished problem is handed to its task's ``on_result`` at once so the caller can persist it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.generate.engine import GenerationFailed, Work, record
from mft_hpc.generate.settings import DecodeSettings, decode_settings
from mft_hpc.generate.stopping import StopTracker

log = logging.getLogger(__name__)
CPU_BATCH_TOKENS = 512  # continuous batching on CPU: tokens per forward pass (prefill chunks + decodes)
CPU_MAX_REQUESTS = 32   # ... and requests whose whole length the paged cache holds at once


def load_model(model_dir: str | Path, dtype: str, trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    options = {"dtype": getattr(torch, dtype), "trust_remote_code": trust_remote_code, **_fastest_attention(device)}
    if (Path(model_dir) / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM  # a LoRA adapter: merge it as the harness does

        model = AutoPeftModelForCausalLM.from_pretrained(model_dir, **options).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **options)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code, truncation_side="left")
    return model.to(device).eval(), tokenizer


def _fastest_attention(device: str) -> dict:
    """Flash attention where installed on a GPU (continuous batching then also gets CUDA graphs and
    async batching, which transformers turns off with SDPA); otherwise the model's default (SDPA)."""
    from transformers.utils import is_flash_attn_2_available

    if device == "cuda" and is_flash_attn_2_available():
        return {"attn_implementation": "flash_attention_2"}
    return {}


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


class HFEngine:
    """The model loaded once; ``generate`` serves any number of tasks with it."""

    def __init__(self, model_dir, gen_cfg: GenerateSection, trust_remote_code: bool = False):
        self.gen_cfg = gen_cfg
        self.model, self.tokenizer = load_model(model_dir, gen_cfg.dtype, trust_remote_code)

    def generate(self, works: list[Work]) -> None:
        generate_works(self.model, self.tokenizer, works, self.gen_cfg)

    def close(self) -> None:
        self.model = None


def generate_with(model, tokenizer, task: str, prompts: dict[int, str], gen_cfg: GenerateSection,
                  on_result: Callable[[dict], None]) -> None:
    """One task with a model and tokenizer already loaded (benchmarks, tests)."""
    generate_works(model, tokenizer, [Work(task, prompts, on_result)], gen_cfg)


def generate_works(model, tokenizer, works: list[Work], gen_cfg: GenerateSection) -> None:
    """Every task's prompts; each finished problem goes to its task's ``on_result``."""
    settings = decode_settings(model.generation_config, tokenizer, gen_cfg)
    checkpoint_config = model.generation_config
    # generate() fills unset values from model.generation_config: give it one with nothing to leak
    model.generation_config = GenerationConfig()
    try:
        continuous = gen_cfg.continuous_batching and gen_cfg.backend == "hf"
        if continuous and not hasattr(model, "init_continuous_batching"):
            log.warning("continuous_batching: %s has no continuous batching in this transformers; static batches",
                        type(model).__name__)
            continuous = False
        if continuous:
            _generate_continuous(model, tokenizer, works, settings, gen_cfg)
        else:
            for work in works:
                _generate_static(model, tokenizer, work, gen_cfg, settings)
    finally:
        model.generation_config = checkpoint_config


def encode_prompts(tokenizer, prompts: dict[int, str], settings: DecodeSettings) -> dict[int, list[int]]:
    """Token ids per problem, truncated on the left as the harness does."""
    return {index: tokenizer(text, add_special_tokens=True)["input_ids"][-settings.max_length:]
            for index, text in prompts.items()}


def _generate_static(model, tokenizer, work: Work, gen_cfg: GenerateSection, settings: DecodeSettings) -> None:
    from mft_hpc.tasks.stops import stop_words

    task = work.task
    stops = stop_words(task, gen_cfg.eos)
    batch_size = 1 if gen_cfg.backend == "exact" else gen_cfg.batch_size
    encoded = encode_prompts(tokenizer, work.prompts, settings)
    # longest first: similar lengths share a batch (little padding) and memory peaks early
    order = sorted(encoded, key=lambda i: (-len(encoded[i]), i))
    for start in range(0, len(order), batch_size):
        batch = [(i, encoded[i]) for i in order[start:start + batch_size]]
        runnable = [(i, ids) for i, ids in batch if settings.budget(len(ids)) > 0]
        for i, ids in batch:
            if settings.budget(len(ids)) == 0:
                work.on_result(record(task, i, [], "length", tokenizer))
        if runnable:
            for index, tokens, reason in _generate_batch(model, tokenizer, task, stops, settings, runnable):
                work.on_result(record(task, index, tokens, reason, tokenizer))


def _cpu_cache_config(model, queued: list[tuple[str, list[int], int]]):
    """On CPU, a paged cache just large enough for the workload. Sized to the free RAM (transformers'
    rule for GPUs), every step's attention mask spans it: 16 s instead of 0.2 s for one 18-token request."""
    if model.device.type != "cpu":
        return None
    from transformers import ContinuousBatchingConfig

    page = ContinuousBatchingConfig.page_size
    pages = sorted((-(-(len(ids) + budget) // page) for _, ids, budget in queued), reverse=True)
    return ContinuousBatchingConfig(num_blocks=sum(pages[:CPU_MAX_REQUESTS]), max_batch_tokens=CPU_BATCH_TOKENS)


@dataclass
class _Request:
    """One problem in flight in the continuous-batching manager."""

    work: Work
    index: int
    tracker: StopTracker
    seen: int = 0  # generated tokens already shown to the tracker


def _generate_continuous(model, tokenizer, works: list[Work], settings: DecodeSettings,
                         gen_cfg: GenerateSection) -> None:
    """transformers' continuous batching (paged attention), every task's requests in one manager.

    Outputs are streamed: the harness's stop rule is checked on every new token and the request is
    cancelled the moment it fires, so no decode step is spent past the harness's stop. A request
    that fails (or never returns) is reported in GenerationFailed; the others are delivered.
    """
    from transformers.generation.continuous_batching.requests import RequestStatus
    from transformers.generation.continuous_batching.utils import WorkloadHints

    from mft_hpc.tasks.stops import stop_words

    eos = sorted(settings.eos_ids)
    requests: dict[str, _Request] = {}
    queued: list[tuple[str, list[int], int]] = []
    for work in works:
        stops = stop_words(work.task, gen_cfg.eos)
        for index, ids in encode_prompts(tokenizer, work.prompts, settings).items():
            budget = settings.budget(len(ids))
            if budget == 0:
                work.on_result(record(work.task, index, [], "length", tokenizer))
                continue
            request_id = f"{work.task}/{index}"
            requests[request_id] = _Request(work, index, StopTracker(work.task, tokenizer, stops, settings.eos_ids,
                                                                     budget))
            queued.append((request_id, ids, budget))
    if not queued:
        return
    config = GenerationConfig(do_sample=False, num_beams=1, num_return_sequences=1,
                              max_new_tokens=max(budget for _, _, budget in queued), eos_token_id=eos,
                              pad_token_id=settings.pad_id)
    hints = WorkloadHints(max_prompt_length=max(len(ids) for _, ids, _ in queued),
                          max_generated_length=config.max_new_tokens, num_requests=len(queued))
    # on a GPU transformers sizes the cache, the batch and CUDA graphs from free memory and these hints
    manager = model.init_continuous_batching(generation_config=config, workload_hints=hints,
                                             continuous_batching_config=_cpu_cache_config(model, queued))
    log.info("continuous batching: %d requests, attention %s", len(queued), model.config._attn_implementation)
    errors: dict[tuple[str, int], str] = {}
    cancelled = 0
    manager.start()
    try:
        for request_id, ids, budget in queued:
            manager.add_request(ids, request_id=request_id, max_new_tokens=budget, streaming=True, eos_token_id=eos)
        while requests:
            output = manager.get_result(timeout=1)
            if output is None:
                if not manager.is_running():
                    break
                continue
            request = requests.get(output.request_id)
            if request is None:
                continue  # a token streamed after this request was decided (and cancelled)
            if output.error is not None or output.status == RequestStatus.FAILED:
                errors[(request.work.task, request.index)] = output.error or "request failed"
                del requests[output.request_id]
                continue
            tokens = list(output.generated_tokens)
            reason = None
            while reason is None and request.seen < len(tokens):  # every prefix, as the harness checks every step
                request.seen += 1
                reason = request.tracker.update(tokens[:request.seen])
            if reason is None and not output.is_finished():
                continue
            if not output.is_finished():
                manager.cancel_request(output.request_id)
                cancelled += 1
            kept = request.tracker.stopped_at if reason is not None else len(tokens)
            request.work.on_result(record(request.work.task, request.index, tokens[:kept], reason or "length",
                                          tokenizer))
            del requests[output.request_id]
    finally:
        manager.stop(block=True, timeout=60)
        manager.destroy()
    fatal = manager.background_thread_status.fatal_error
    for request in requests.values():  # never answered: the generation loop ended
        errors[(request.work.task, request.index)] = f"no result ({fatal or 'generation loop ended'})"
    log.info("continuous batching: %d request(s) cancelled at the harness's stop, %d failed", cancelled, len(errors))
    if errors:
        raise GenerationFailed(errors)
