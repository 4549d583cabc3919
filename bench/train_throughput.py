"""Training throughput of the three batching modes on the same data, in one run.

    python bench/train_throughput.py            # GPU: Qwen-1.8B-shaped random model, LoRA r=96 all-linear,
                                                # seq 4096, bf16, gradient checkpointing
    python bench/train_throughput.py --smoke    # CPU: tiny model, proves the script works

Modes (same samples, log-normal lengths with median ~450 tokens, same tokens per micro-batch):
  (a) padded   every sample padded to seq_length, 2 rows per micro-batch
  (b) dynamic  samples in data order, a micro-batch padded to its longest sample, <= 2*seq_length slots
  (c) packed   best-fit-decreasing rows of seq_length (no cross-sample attention), 2 rows per micro-batch
Useful tokens/s counts real (non-pad) tokens. The loss is mft_hpc's (CE on supervised positions only).
Prints each mode's useful tokens/s, MFU (6·N FLOPs per useful token) and the ratios against (a).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU")
    parser.add_argument("--samples", type=int, default=None, help="samples per mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args(argv)


def make_model(smoke: bool):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if smoke:
        config = Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
        dtype, rank = torch.float32, 8
    else:  # Qwen-1.8B shape (hidden 2048, 24 layers, FFN 5504, 16 heads, vocab 151936)
        config = Qwen2Config(vocab_size=151936, hidden_size=2048, intermediate_size=5504, num_hidden_layers=24,
                             num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=8192,
                             tie_word_embeddings=False)
        dtype, rank = torch.bfloat16, 96
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    device = "cpu" if smoke else "cuda"
    model = Qwen2ForCausalLM(config).to(device=device, dtype=dtype)
    model.config.use_cache = False
    if not smoke:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=rank, lora_alpha=32, lora_dropout=0.05,
                                             target_modules="all-linear"))
    return model, sum(p.numel() for p in model.parameters()), device


def make_samples(n: int, seq_length: int, median: int, vocab: int, seed: int):
    """Random token samples with log-normal lengths; the answer (last ~40%) is supervised."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(median), 0.8, n).astype(int), 16, seq_length)
    samples = []
    for length in lengths:
        tokens = rng.integers(3, vocab, length)
        mask = np.zeros(length, dtype=np.int64)
        mask[int(length * 0.6):] = 1
        samples.append((tokens, mask))
    return samples


def collate(rows: list[list[int]], samples, width: int, packed: bool):
    import torch

    B = len(rows)
    out = {k: np.zeros((B, width), dtype=np.int64) for k in
           ("input_ids", "loss_mask", "position_ids", "attention_mask", "segment_ids")}
    for b, row in enumerate(rows):
        cursor = 0
        for segment, index in enumerate(row):
            tokens, mask = samples[index]
            end = cursor + len(tokens)
            out["input_ids"][b, cursor:end] = tokens
            out["loss_mask"][b, cursor:end] = mask
            out["position_ids"][b, cursor:end] = np.arange(len(tokens))
            out["segment_ids"][b, cursor:end] = segment
            cursor = end
        out["attention_mask"][b, :cursor] = 1
        out["position_ids"][b, cursor:] = np.arange(width - cursor)
        out["segment_ids"][b, cursor:] = len(row)
    batch = {k: torch.from_numpy(v) for k, v in out.items()}
    batch["task_ids"] = torch.zeros(B, dtype=torch.long)
    if not packed:
        del batch["segment_ids"]
    return batch


def batches(mode: str, samples, seq_length: int):
    from mft_hpc.data.packing import best_fit_decreasing

    lengths = np.array([len(t) for t, _ in samples])
    budget = 2 * seq_length
    if mode == "padded":
        for i in range(0, len(samples), 2):
            yield collate([[j] for j in range(i, min(i + 2, len(samples)))], samples, seq_length, False)
    elif mode == "dynamic":
        group: list[int] = []
        for i in range(len(samples)):
            if group and (len(group) + 1) * max(lengths[group + [i]]) > budget:
                yield collate([[j] for j in group], samples, int(max(lengths[group])), False)
                group = []
            group.append(i)
        if group:
            yield collate([[j] for j in group], samples, int(max(lengths[group])), False)
    else:
        rows = [row.tolist() for row in best_fit_decreasing(lengths, seq_length)]
        for i in range(0, len(rows), 2):
            yield collate(rows[i:i + 2], samples, seq_length, True)


def run_mode(mode, model, optimizer, samples, seq_length, device):
    import torch

    from mft_hpc.data import model_inputs
    from mft_hpc.train.loss import combine_tasks, supervised_token_losses, task_sums

    def step(batch):
        inputs = model_inputs(batch, model.get_base_model())
        losses, rows = supervised_token_losses(model, inputs, batch["input_ids"], batch["loss_mask"])
        loss = combine_tasks(*task_sums(losses, rows, batch["task_ids"].to(device), 1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    all_batches = list(batches(mode, samples, seq_length))
    step(all_batches[0])  # warm-up (kernels, allocator), not timed
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    useful = slots = 0
    for batch in all_batches[1:]:
        step(batch)
        useful += int(batch["attention_mask"].sum())
        slots += batch["input_ids"].numel()
    sync()
    seconds = time.perf_counter() - started
    return {"mode": mode, "steps": len(all_batches) - 1, "useful_tokens": useful, "fill": useful / slots,
            "seconds": seconds, "useful_tokens_per_s": useful / seconds}


def main(argv=None) -> int:
    import torch

    from mft_hpc.train.metrics import peak_flops

    args = parse_args(argv)
    torch.set_num_threads(1) if args.smoke else None
    if not args.smoke and not torch.cuda.is_available():
        print("no GPU: the full benchmark needs one (use --smoke on CPU)")
        return 2
    seq_length, median = (256, 40) if args.smoke else (4096, 450)
    model, n_params, device = make_model(args.smoke)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                                  betas=(0.9, 0.95), weight_decay=0.1)
    samples = make_samples(args.samples or (48 if args.smoke else 400), seq_length, median,
                           model.config.vocab_size, args.seed)
    peak = None if args.smoke else peak_flops()
    results = []
    for mode in ("padded", "dynamic", "packed"):
        result = run_mode(mode, model, optimizer, samples, seq_length, device)
        result["mfu"] = 6 * n_params * result["useful_tokens_per_s"] / peak if peak else None
        result["memory_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        results.append(result)
        mfu = f"{result['mfu']:.3f}" if result["mfu"] is not None else "n/a"
        print(f"{mode:8s} useful tokens/s {result['useful_tokens_per_s']:12.1f}  fill {result['fill']:.3f}  "
              f"steps {result['steps']:4d}  MFU(6N) {mfu}", flush=True)
    base = results[0]["useful_tokens_per_s"]
    for result in results[1:]:
        print(f"ratio {result['mode']}/padded = {result['useful_tokens_per_s'] / base:.2f}")
    print(f"ratio packed/dynamic = {results[2]['useful_tokens_per_s'] / results[1]['useful_tokens_per_s']:.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                       "params": n_params, "results": results}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
