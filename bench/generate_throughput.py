"""Generation throughput: the seed's way (HF generate, batch 1, harness stopping) vs our backends.

A randomly initialised Qwen-1.8B-shaped model (no weights to download) and real suite prompts,
tokenized with the real Qwen BPE (qwen.tiktoken shipped in the dashscope package). Every way uses
MBPP's stop-word rule (random text would trip the HumanEvalPack indent rule at once) and the same
cap of new tokens, so all ways generate about the same tokens; tok/s counts the tokens generated.

    python bench/generate_throughput.py              # GPU: 1.8B shape, bf16
    python bench/generate_throughput.py --smoke      # CPU import/logic check with a tiny shape
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN_SPECIALS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
QWEN_1_8B = dict(hidden_size=2048, intermediate_size=5504, num_hidden_layers=24, num_attention_heads=16,
                 num_key_value_heads=16, vocab_size=151936, max_position_embeddings=8192)
SMOKE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=151936, max_position_embeddings=8192)
BENCH_TASK = "mbpp"  # the stopping rule used by every way (stop words only)


def qwen_tokenizer():
    import dashscope
    from tokenizers import normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = Path(dashscope.__file__).parent / "resources" / "qwen.tiktoken"
    tok = TikTokenConverter(vocab_file=str(vocab), pattern=QWEN_PATTERN, extra_special_tokens=QWEN_SPECIALS).converted()
    tok.normalizer = normalizers.NFC()  # Qwen's tokenizer NFC-normalizes its input
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def random_model(shape: dict, device: str, dtype):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(**shape, tie_word_embeddings=False, eos_token_id=None, bos_token_id=None, pad_token_id=151643)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = None  # no native eos: every way runs to the token cap or a stop word
    return model.eval()


def suite_prompts(benchmarks: str, count: int) -> list[str]:
    from mft_hpc.tasks import TASK_NAMES, load_problems
    from mft_hpc.tasks.prompts import model_input

    everything = [model_input(task, doc) for task in TASK_NAMES for doc in load_problems(benchmarks, task)]
    step = max(1, len(everything) // count)
    return everything[::step][:count]


def seed_way(model, tokenizer, prompts: list[str], new_tokens: int) -> int:
    """The harness: one prompt at a time, decode all generated tokens after every step."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from mft_hpc.tasks.stops import stop_words

    stops = stop_words(BENCH_TASK)

    class EndOfFunction(StoppingCriteria):
        def __init__(self, start):
            self.start = start

        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, self.start:])
            return all(any(s in text for s in stops) for text in texts)

    generated = 0
    for text in prompts:
        ids = torch.tensor([tokenizer(text)["input_ids"]], device=model.device)
        with torch.no_grad():
            out = model.generate(input_ids=ids, do_sample=False, num_beams=1, max_new_tokens=new_tokens,
                                 pad_token_id=151643, stopping_criteria=StoppingCriteriaList([EndOfFunction(ids.shape[1])]))
        generated += out.shape[1] - ids.shape[1]
    return generated


def our_hf(model, tokenizer, prompts: list[str], new_tokens: int, batch_size: int, dtype: str,
           continuous: bool = False) -> int:
    from mft_hpc.config.sections.generate import GenerateSection
    from mft_hpc.generate.hf_backend import generate_with

    records: list[dict] = []
    cfg = GenerateSection(batch_size=batch_size, max_new_tokens=new_tokens, dtype=dtype, continuous_batching=continuous)
    generate_with(model, tokenizer, BENCH_TASK, dict(enumerate(prompts)), cfg, records.append)
    return sum(r["n_tokens"] for r in records)


def our_vllm(model, tokenizer, prompts: list[str], new_tokens: int, dtype: str) -> tuple[int, float] | None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return None
    from mft_hpc.config.sections.generate import GenerateSection
    from mft_hpc.generate.vllm_backend import generate

    records: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        cfg = GenerateSection(backend="vllm", max_new_tokens=new_tokens, dtype=dtype)
        start = time.perf_counter()
        generate(folder, BENCH_TASK, dict(enumerate(prompts)), cfg, records.append)
        return sum(r["n_tokens"] for r in records), time.perf_counter() - start


def timed(fn, sync):
    sync()
    start = time.perf_counter()
    tokens = fn()
    sync()
    return tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shape on CPU, few prompts: checks the script runs")
    parser.add_argument("--benchmarks", default=os.environ.get("MFT_HPC_BENCHMARKS", "../shared/benchmarks"))
    parser.add_argument("--prompts", type=int, default=None, help="number of suite prompts (default 128; smoke 4)")
    parser.add_argument("--new-tokens", type=int, default=None, help="cap of new tokens (default 256; smoke 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="our hf backend's batch (default 32; smoke 2)")
    args = parser.parse_args()

    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    gpu = torch.cuda.is_available() and not args.smoke
    device, dtype_name = ("cuda", "bfloat16") if gpu else ("cpu", "float32")
    count = args.prompts or (128 if not args.smoke else 4)
    new_tokens = args.new_tokens or (256 if not args.smoke else 8)
    batch_size = args.batch_size or (32 if not args.smoke else 2)
    sync = torch.cuda.synchronize if gpu else (lambda: None)

    tokenizer = qwen_tokenizer()
    model = random_model(SMOKE if args.smoke else QWEN_1_8B, device, getattr(torch, dtype_name))
    prompts = suite_prompts(args.benchmarks, count)
    lengths = sorted(len(tokenizer(p)["input_ids"]) for p in prompts)
    print(f"device={device} dtype={dtype_name} prompts={len(prompts)} prompt tokens min/median/max="
          f"{lengths[0]}/{lengths[len(lengths) // 2]}/{lengths[-1]} new_tokens<={new_tokens} batch={batch_size}")

    seed_way(model, tokenizer, prompts[:1], 2)  # warm-up (CUDA context, kernels)
    seed_tokens, seed_s = timed(lambda: seed_way(model, tokenizer, prompts, new_tokens), sync)
    ours_tokens, ours_s = timed(lambda: our_hf(model, tokenizer, prompts, new_tokens, batch_size, dtype_name), sync)
    seed_rate, ours_rate = seed_tokens / seed_s, ours_tokens / ours_s
    print(f"seed (HF generate, batch 1): {seed_tokens} tokens in {seed_s:.2f} s = {seed_rate:.1f} tok/s")
    print(f"ours (hf backend, batch {batch_size}): {ours_tokens} tokens in {ours_s:.2f} s = {ours_rate:.1f} tok/s")
    print(f"ratio hf/seed: {ours_rate / seed_rate:.2f}x")
    if hasattr(model, "generate_batch"):
        cb_tokens, cb_s = timed(lambda: our_hf(model, tokenizer, prompts, new_tokens, batch_size, dtype_name, True), sync)
        print(f"ours (hf continuous batching): {cb_tokens} tokens in {cb_s:.2f} s = {cb_tokens / cb_s:.1f} tok/s")
        print(f"ratio hf-continuous/seed: {cb_tokens / cb_s / seed_rate:.2f}x")
    vllm_result = our_vllm(model, tokenizer, prompts, new_tokens, dtype_name) if gpu else None
    if vllm_result:
        tokens, seconds = vllm_result
        print(f"ours (vllm backend, incl. engine start): {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tok/s")
        print(f"ratio vllm/seed: {tokens / seconds / seed_rate:.2f}x")
    else:
        print("vllm: not installed or no GPU (skipped)")


if __name__ == "__main__":
    main()
