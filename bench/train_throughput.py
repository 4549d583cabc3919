"""Training throughput: the seed's way against our packed path, same model and data mix, one process.

    python bench/train_throughput.py            # GPU: Qwen-1.8B shape (random weights), LoRA r 96 all-linear,
                                                # micro-batch 4, seq 4096, bf16 under DeepSpeed ZeRO-2
    python bench/train_throughput.py --smoke    # CPU: tiny model, fp32, proves the script works (CI)

Modes (both: DeepSpeed engine with the production config, LoRA adapters cast by the engine, samples with
log-normal lengths, median ~450 tokens, the last 40% of each sample supervised):
  seed    MFTCoder's recipe: every sample padded to seq_length (one per row), the all-ones mask, full
          [B, T, V] logits in the model dtype and its case3 loss over every position x loss_mask,
          gradient checkpointing on (its Qwen-1.8B config)
  packed  ours: best-fit-decreasing rows of seq_length, per-sample attention (torch_varlen on GPU),
          the LM head and CE on supervised positions only (Liger fused linear-CE on CUDA), Liger
          RMSNorm/SwiGLU/RoPE, TF32, gradient checkpointing decided by the measured estimate (auto)
Useful tokens are real (non-pad) tokens. MFU = useful model FLOPs (mft_hpc.train.flops: 6 x trainable +
4 x frozen per token, the head on supervised tokens, causal attention inside samples) / peak, the peak
being --peak-tflops or the GPU's bf16 dense peak. Prints both modes, the ratio packed/seed and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU (CI)")
    parser.add_argument("--steps", type=int, default=None, help="timed optimizer steps per mode")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per mode first")
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--seq-length", type=int, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None, help="MFU denominator; default: the GPU's "
                                                                          "bf16 dense peak")
    parser.add_argument("--modes", default="seed,packed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args(argv)


def model_config(smoke: bool):
    from transformers import Qwen2Config

    if smoke:
        return Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                           tie_word_embeddings=False)
    # Qwen-1.8B: hidden 2048, MLP 5504, 24 layers, 16 heads (no GQA), vocab 151936, untied head, qkv bias
    return Qwen2Config(vocab_size=151936, hidden_size=2048, intermediate_size=5504, num_hidden_layers=24,
                       num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=8192,
                       tie_word_embeddings=False, rms_norm_eps=1e-6, rope_theta=10000.0)


def run_config(smoke: bool, mode: str, micro_batch: int, seq_length: int):
    """The mft_hpc config each mode trains with (DeepSpeed config, kernels, checkpointing)."""
    from mft_hpc.config.schema import Config

    train = {"peft": "lora", "lora_rank": 8 if smoke else 96, "lora_alpha": 16 if smoke else 32,
             "lora_dropout": 0.05, "target_modules": "all-linear", "micro_batch_size": micro_batch,
             "zero_stage": 2, "bf16": not smoke,
             "gradient_checkpointing": True if mode == "seed" else "auto",
             "liger": False if mode == "seed" else None,
             # packed: the GPU default, named so that --smoke runs the same kernel (per-sample SDPA on CPU)
             "attn_implementation": None if mode == "seed" else "torch_varlen"}
    return Config.model_validate({"run": {"name": f"bench-{mode}"}, "model": {"path": "random-init"},
                                  "data": {"seq_length": seq_length, "mode": "pack" if mode == "packed" else "padding"},
                                  "train": train})


def build_engine(config, model_cfg, device: str):
    """Random-weight model → (Liger) → LoRA → DeepSpeed engine, as mft_hpc's training does it."""
    import deepspeed
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2ForCausalLM

    from mft_hpc.train.deepspeed_config import build_deepspeed_config
    from mft_hpc.train.kernels import apply_liger, attn_implementation, enable_tf32

    train = config.train
    impl = attn_implementation(config, device == "cuda") or "sdpa"
    model_cfg._attn_implementation = impl
    torch.manual_seed(0)
    dtype = torch.bfloat16 if train.bf16 else torch.float32
    with torch.device(device):
        model = Qwen2ForCausalLM._from_config(model_cfg, dtype=dtype)
    model.config.use_cache = False
    kernels = {"attn_implementation": model.config._attn_implementation, "tf32": enable_tf32(config),
               "liger": apply_liger(config, model)}
    if train.gradient_checkpointing is True:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=train.lora_rank, lora_alpha=train.lora_alpha,
                                             lora_dropout=train.lora_dropout, target_modules="all-linear"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, betas=(0.9, 0.95),
                                  weight_decay=0.1)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer,
                                      config=build_deepspeed_config(train, world_size=1, bf16=train.bf16))
    return engine, kernels


def make_samples(n: int, seq_length: int, median: int, vocab: int, seed: int):
    """Random token samples with log-normal lengths (sigma 0.8); the last 40% of each is supervised."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(median), 0.8, n).astype(int), 16, seq_length)
    samples = []
    for length in lengths:
        tokens = rng.integers(3, vocab, length)
        mask = np.zeros(length, dtype=np.int64)
        mask[int(length * 0.6):] = 1
        samples.append((tokens, mask))
    return samples


def collate(rows: list[list[int]], samples, width: int, packed: bool) -> dict:
    """Rows of sample indices → the batch keys mft_hpc's collate produces (pack: segment_ids too)."""
    import torch

    out = {key: np.zeros((len(rows), width), dtype=np.int64) for key in
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
        out["position_ids"][b, cursor:] = np.arange(cursor, width) if not packed else np.arange(width - cursor)
        out["segment_ids"][b, cursor:] = len(row)
    batch = {key: torch.from_numpy(value) for key, value in out.items()}
    batch["task_ids"] = torch.zeros(len(rows), dtype=torch.long)
    if not packed:
        del batch["segment_ids"]
    return batch


def micro_batches(mode: str, samples, seq_length: int, micro_batch: int):
    from mft_hpc.data.packing import best_fit_decreasing

    if mode == "seed":
        rows = [[i] for i in range(len(samples))]
    else:
        rows = [row.tolist() for row in best_fit_decreasing(np.array([len(t) for t, _ in samples]), seq_length)]
    for start in range(0, len(rows) - micro_batch + 1, micro_batch):
        yield collate(rows[start:start + micro_batch], samples, seq_length, packed=(mode == "packed"))


def seed_loss(engine, batch: dict, device: str):
    """MFTCoder's loss_func_mft, case3: full logits in the model dtype, CE at every position x loss_mask,
    token mean per task, mean over the tasks present."""
    import torch
    import torch.nn.functional as F

    ids = batch["input_ids"].to(device)
    logits = engine(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=batch["position_ids"].to(device),
                    use_cache=False).logits
    mask = batch["loss_mask"][:, 1:].to(device)
    losses = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                             reduction="none").view(mask.shape) * mask
    tasks = batch["task_ids"].to(device)
    present = tasks.unique()
    return torch.stack([losses[tasks == t].sum() / mask[tasks == t].sum() for t in present]).mean()


def packed_loss(engine, batch: dict, fused: bool):
    from mft_hpc.data import model_inputs
    from mft_hpc.train.loss import combine_tasks, supervised_token_losses, task_sums
    from mft_hpc.train.unwrap import hf_model

    inputs = model_inputs(batch, hf_model(engine))
    losses, rows = supervised_token_losses(engine, inputs, batch["input_ids"], batch["loss_mask"], fused=fused)
    return combine_tasks(*task_sums(losses, rows, batch["task_ids"].to(losses.device), 1))


def run_mode(mode: str, args, model_cfg, samples, seq_length: int, device: str, peak: float | None) -> dict:
    import torch

    from mft_hpc.train.checkpointing import decide_checkpointing
    from mft_hpc.train.flops import ModelFlops, batch_sample_lengths, causal_pairs, mfu

    config = run_config(args.smoke, mode, args.micro_batch, seq_length)
    engine, kernels = build_engine(config, model_cfg, device)
    kernels["gradient_checkpointing"] = decide_checkpointing(config, engine, world_size=1)
    flops_of = ModelFlops.of(engine)
    batches = micro_batches(mode, samples, seq_length, args.micro_batch)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step(batch) -> float:
        loss = seed_loss(engine, batch, device) if mode == "seed" else packed_loss(engine, batch, config.train.liger
                                                                                   is not False)
        engine.backward(loss)
        engine.step()
        return float(loss.detach())

    for _ in range(args.warmup):
        step(next(batches))
    sync()
    useful = supervised = slots = pairs = steps = 0
    losses = []
    started = time.perf_counter()
    for batch in batches:
        if steps == args.steps:
            break
        losses.append(step(batch))
        useful += int(batch["attention_mask"].sum())
        supervised += int(batch["loss_mask"][:, 1:].sum())
        slots += batch["input_ids"].numel()
        pairs += causal_pairs(batch_sample_lengths(batch))
        steps += 1
    sync()
    seconds = time.perf_counter() - started
    flops = flops_of.step_flops(useful, supervised, pairs)
    result = {"mode": mode, "steps": steps, "useful_tokens": useful, "fill": useful / max(slots, 1),
              "seconds": seconds, "useful_tokens_per_s": useful / seconds, "mfu": mfu(flops, seconds, peak),
              "model_tflops_per_s": flops / seconds / 1e12, "loss_first_last": [losses[0], losses[-1]],
              "finite": all(math.isfinite(value) for value in losses), "kernels": kernels,
              "params": {"trainable": flops_of.trainable, "frozen": flops_of.frozen, "head": flops_of.head},
              "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}
    del engine
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def _init_process_group(device: str) -> None:
    import deepspeed

    from mft_hpc.train.distributed import export_rendezvous

    export_rendezvous()
    if device == "cpu":  # gloo on CPU; the shm op would be JIT-compiled for nothing
        import deepspeed.ops

        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    deepspeed.init_distributed(dist_backend="nccl" if device == "cuda" else "gloo", verbose=False)


def main(argv=None) -> int:
    import torch

    from mft_hpc.train.flops import peak_flops

    args = parse_args(argv)
    if args.smoke:
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        print("no GPU: the full benchmark needs one (use --smoke on CPU)")
        return 2
    device = "cpu" if args.smoke else "cuda"
    seq_length = args.seq_length or (256 if args.smoke else 4096)
    median = 40 if args.smoke else 450
    args.steps = args.steps or (3 if args.smoke else 12)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 3)
    model_cfg = model_config(args.smoke)
    # enough samples for warm-up + timed steps of the seed mode (4 samples a step); packing reuses them all
    n_samples = max(args.micro_batch * (args.steps + args.warmup) * 10, 64)
    samples = make_samples(n_samples, seq_length, median, model_cfg.vocab_size, args.seed)
    peak = peak_flops(args.peak_tflops)
    _init_process_group(device)
    results = {}
    for mode in args.modes.split(","):
        results[mode] = result = run_mode(mode, args, model_cfg, samples, seq_length, device, peak)
        mfu_text = f"{result['mfu']:.3f}" if result["mfu"] is not None else "n/a"
        print(f"{mode:7s} useful tokens/s {result['useful_tokens_per_s']:12.1f}  fill {result['fill']:.3f}  "
              f"steps {result['steps']:3d}  MFU {mfu_text}  model TFLOP/s {result['model_tflops_per_s']:.2f}", flush=True)
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "peak_tflops": peak / 1e12 if peak else None, "seq_length": seq_length,
               "micro_batch": args.micro_batch, "modes": results}
    if "seed" in results and "packed" in results:
        summary["ratio_packed_over_seed"] = (results["packed"]["useful_tokens_per_s"]
                                             / results["seed"]["useful_tokens_per_s"])
        print(f"ratio packed/seed (useful tokens/s) = {summary['ratio_packed_over_seed']:.2f}")
    print(json.dumps({"train_throughput": summary}, default=str))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
