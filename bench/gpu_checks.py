"""Correctness checks that need the real GPU kernels, run by bench/gpu_check.sh (CPU: --smoke).

    python bench/gpu_checks.py [--smoke] [--only isolation,qlora,zero2] [--json out.json]

- isolation: a packed micro-batch of 4 rows through every attention kernel available here (sdpa, eager,
  torch_varlen, flex_attention, flash_attention_2 when flash-attn is installed) gives every sample the
  logits of that sample alone, and trains (finite loss and gradients); per-kernel forward+backward time.
- qlora: mft-hpc training (train_member, DeepSpeed ZeRO-2, pack mode) of a tiny model with a 4-bit base.
- zero2: the same training in 2 processes (DeepSpeed ZeRO-2; NCCL on a GPU, gloo on CPU), both ranks on
  the one GPU when there is only one (NCCL may refuse that: the error is reported, not hidden).
Each check reports pass/fail/skip with its details; one JSON object is printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_throughput's data helpers
REPO = Path(__file__).resolve().parents[1]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _kernels_here(device: str) -> list[str]:
    kernels = ["sdpa", "eager", "torch_varlen"]
    if device == "cuda":
        kernels.append("flex_attention")  # CPU flex has no backward (torch 2.13)
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            pass
        else:
            kernels.append("flash_attention_2")
    return kernels


def check_isolation(smoke: bool) -> dict:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from train_throughput import make_samples, micro_batches

    from mft_hpc.data import model_inputs
    from mft_hpc.train.loss import supervised_token_losses
    from mft_hpc.train.varlen_kernel import _torch_varlen_attn, register_torch_varlen

    device = _device()
    register_torch_varlen()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    seq = 128 if smoke else 1024
    config = Qwen2Config(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM._from_config(config, dtype=dtype).train()
    samples = make_samples(200, seq, seq // 8, config.vocab_size, seed=1)
    batch = next(micro_batches("packed", samples, seq, 4))
    tolerance = 3e-2 if dtype == torch.bfloat16 else 1e-4
    model.set_attn_implementation("sdpa")
    segments, real = batch["segment_ids"], batch["attention_mask"].bool()
    with torch.no_grad():  # each sample alone, plain causal sdpa
        alone = {}
        for b in range(segments.shape[0]):
            for seg in segments[b][real[b]].unique().tolist():
                where = (segments[b] == seg) & real[b]
                alone[(b, seg)] = (where, model(input_ids=batch["input_ids"][b][where][None].to(device),
                                                use_cache=False).logits[0].float())
    results = {}
    for impl in _kernels_here(device):
        model.set_attn_implementation(impl)
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        inputs = model_inputs(batch, model)
        logits = model(**inputs).logits
        losses, _ = supervised_token_losses(model, inputs, batch["input_ids"], batch["loss_mask"], fused=False)
        (losses.mean() + logits.float().mean() * 0).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        worst = max(float((logits[b][where].detach().float() - ref).abs().max()) for (b, _), (where, ref) in alone.items())
        grads_finite = all(bool(p.grad.isfinite().all()) for p in model.parameters() if p.grad is not None)
        results[impl] = {"max_abs_diff_vs_alone": worst, "samples": len(alone), "grads_finite": grads_finite,
                         "forward_backward_s": round(seconds, 4), "ok": worst <= tolerance and grads_finite}
    results["torch_varlen"]["kernel"] = ("torch.nn.attention.varlen" if device == "cuda" and dtype != torch.float32
                                         and _torch_varlen_attn() is not None else "per-sample sdpa")
    missing = sorted({"flex_attention", "flash_attention_2"} - set(results))
    status = "pass" if all(r["ok"] for r in results.values()) else "fail"
    return {"status": status, "device": device, "dtype": str(dtype), "rows": 4, "seq_length": seq,
            "tolerance": tolerance, "kernels": results, "not_run": missing}


def _write_tasks(root: Path) -> list[str]:
    paths = []
    for task in ("synth", "repair"):
        lines = [json.dumps({"chat_rounds": [{"role": "human", "content": f"Write f{i} for {task}."},
                                             {"role": "bot", "content": f"def f{i}(x):\n    return x + {i}\n"}]})
                 for i in range(16)]
        (root / task).mkdir(parents=True, exist_ok=True)
        (root / task / "data.jsonl").write_text("\n".join(lines) + "\n")
        paths.append(str(root / task))
    return paths


def _member_config(root: Path, **train):
    from mft_hpc.config.schema import Config
    from mft_hpc.model.tiny import build_tiny_qwen2

    model = root / "tiny-model"
    if not model.exists():
        build_tiny_qwen2(model)
    defaults = dict(peft="lora", lora_rank=8, lora_alpha=16, learning_rate=5e-3, min_lr=5e-4, warmup_steps=1,
                    max_steps=4, micro_batch_size=2, eval_steps=4, save_steps=4, log_steps=1, zero_stage=2,
                    merge_dtype="fp32", seed=7)
    defaults.update(train)
    return Config.model_validate({"run": {"name": "gpu-check"}, "model": {"path": str(model)},
                                  "data": {"paths": _write_tasks(root / "data"), "seq_length": 256, "mode": "pack",
                                           "valid_ratio": 0.2, "seed": 3},
                                  "train": defaults})


def _train_summary(member: Path, ranks: int) -> dict:
    rows = [json.loads(line) for line in (member / "train" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if row["kind"] == "train"]
    infos = [json.loads((member / "train" / "ranks" / f"rank_{r}.json").read_text()) for r in range(ranks)]
    return {"losses": losses, "ranks": [{key: info.get(key) for key in
                                         ("world_size", "backend", "zero_stage", "engine", "quantized_layers",
                                          "adapter_dtype", "kernels")} for info in infos]}


def check_qlora(smoke: bool) -> dict:
    from mft_hpc.train import train_member

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = _member_config(root, peft="qlora", quantization="4bit")
        train_member(config, root / "member")
        summary = _train_summary(root / "member", 1)
    rank = summary["ranks"][0]
    ok = rank["quantized_layers"] == 14 and len(summary["losses"]) == 4 and all(
        loss is not None and 0 < loss < 20 for loss in summary["losses"])
    return {"status": "pass" if ok else "fail", "device": _device(), **summary}


def check_zero2(smoke: bool) -> dict:
    import torch

    gpus = torch.cuda.device_count()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = _member_config(root)
        (root / "config.json").write_text(config.model_dump_json())
        port = str(29400 + os.getpid() % 500)
        workers = []
        for rank in (0, 1):
            env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank % max(gpus, 1)), "WORLD_SIZE": "2",
                   "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
            workers.append(subprocess.Popen([sys.executable, __file__, "zero2-worker", str(root)], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = []
        for worker in workers:
            try:
                outputs.append(worker.communicate(timeout=240)[0])
            except subprocess.TimeoutExpired:
                worker.kill()
                outputs.append(worker.communicate()[0] + "\n(timed out)")
        codes = [worker.returncode for worker in workers]
        if codes != [0, 0] and gpus == 1 and any("Duplicate GPU" in out for out in outputs):
            return {"status": "skip", "device": _device(), "gpus": gpus, "exit_codes": codes,
                    "reason": "NCCL refuses two ranks on one GPU (needs 2 GPUs)",
                    "error_tail": [out[-600:] for out in outputs]}
        if codes != [0, 0]:
            return {"status": "fail", "device": _device(), "gpus": gpus, "exit_codes": codes,
                    "error_tail": [out[-1500:] for out in outputs]}
        summary = _train_summary(root / "member", 2)
    ok = all(rank["world_size"] == 2 and rank["zero_stage"] == 2 for rank in summary["ranks"])
    return {"status": "pass" if ok else "fail", "device": _device(), "gpus": gpus,
            "processes_per_gpu": 2 if gpus == 1 else 1, **summary}


def _zero2_worker(root: str) -> int:
    from mft_hpc.config.schema import Config
    from mft_hpc.train import train_member

    config = Config.model_validate_json(Path(root, "config.json").read_text())
    train_member(config, Path(root) / "member")
    return 0


CHECKS = {"isolation": check_isolation, "qlora": check_qlora, "zero2": check_zero2}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "zero2-worker":
        return _zero2_worker(argv[1])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU dry run of the same checks")
    parser.add_argument("--only", default=",".join(CHECKS))
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.smoke and _device() != "cuda":
        print("no GPU: run with --smoke on CPU")
        return 2
    if args.smoke:
        import torch

        torch.set_num_threads(1)
    results = {}
    for name in args.only.split(","):
        started = time.perf_counter()
        try:
            results[name] = CHECKS[name](args.smoke)
        except Exception as exc:  # one failing check must not hide the others
            results[name] = {"status": "fail", "error": f"{type(exc).__name__}: {exc}",
                             "traceback_tail": traceback.format_exc()[-2000:]}
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {results[name]['status']} ({results[name]['seconds']} s)", flush=True)
    print(json.dumps({"gpu_checks": results}, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0 if all(r["status"] != "fail" for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
