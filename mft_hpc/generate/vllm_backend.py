"""Greedy generation with vLLM (optional extra ``mft-hpc[vllm]``): same prompts, same stopping.

vLLM stops on the stop strings and eos ids itself; the harness's brace/indent rule cannot be
expressed there, so each output is cut afterwards at the first token where the harness would have
stopped. Greedy decoding makes that cut exact: tokens before it do not depend on tokens after it.
"""

from __future__ import annotations

from typing import Callable

from mft_hpc.errors import UserError
from mft_hpc.generate.settings import decode_settings
from mft_hpc.generate.stopping import StopTracker, scan_for_stop


def _import_vllm():
    try:
        import vllm
    except ImportError:
        raise UserError("generate.backend: vllm is not installed (pip install 'mft-hpc[vllm]'), "
                        "or use backend 'hf'") from None
    return vllm


def generate(model_dir, task: str, prompts: dict[int, str], gen_cfg, on_result: Callable[[dict], None],
             trust_remote_code: bool = False) -> None:
    vllm = _import_vllm()
    from transformers import AutoTokenizer, GenerationConfig

    from mft_hpc.tasks.stops import stop_words

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    try:
        checkpoint_config = GenerationConfig.from_pretrained(model_dir)
    except OSError:
        checkpoint_config = GenerationConfig()
    settings = decode_settings(checkpoint_config, tokenizer, gen_cfg)
    stops = stop_words(task, gen_cfg.eos)
    llm = vllm.LLM(model=str(model_dir), dtype=gen_cfg.dtype, trust_remote_code=trust_remote_code,
                   max_model_len=settings.max_length, generation_config="vllm")  # ignore the checkpoint's
    indices, requests, params = [], [], []
    for index, text in prompts.items():
        ids = tokenizer(text, add_special_tokens=True)["input_ids"][-settings.max_length:]
        budget = settings.budget(len(ids))
        if budget == 0:
            on_result({"task": task, "index": index, "completion": "", "finish_reason": "length", "n_tokens": 0})
            continue
        indices.append(index)
        requests.append({"prompt_token_ids": ids})
        params.append(vllm.SamplingParams(temperature=0.0, n=1, max_tokens=budget, stop=list(stops),
                                          include_stop_str_in_output=True, stop_token_ids=sorted(settings.eos_ids),
                                          skip_special_tokens=False, detokenize=True))
    for index, output in zip(indices, llm.generate(requests, params)):
        tokens = list(output.outputs[0].token_ids)
        tracker = StopTracker(task, tokenizer, stops, settings.eos_ids, settings.budget(len(output.prompt_token_ids)))
        kept, reason = scan_for_stop(tracker, tokens)
        completion = tokenizer.decode(tokens[:kept], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        on_result({"task": task, "index": index, "completion": completion, "finish_reason": reason, "n_tokens": kept})
