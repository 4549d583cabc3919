"""Memory of `mft-hpc model import` on a Qwen-1.8B-shaped checkpoint: streaming, not loading.

    .venv/bin/python bench/qwen1_import_memory.py [--dir DIR] [--keep]

Synthesises a random checkpoint with Qwen-1.8B's published shape and layout (24 layers, hidden 2048,
16 heads, intermediate_size 11008, vocab 151936, bf16, two shards + index, the real qwen.tiktoken),
tensor by tensor, then runs `mft-hpc model import` on it in a child process and reports its peak RSS
(VmHWM: ru_maxrss would include the forking parent's RSS)
against a baseline measured in the same run: the same command on a tiny Qwen-1 with the same
tokenizer (interpreter, libraries and the fast-tokenizer build: the constant). Goal:
peak - baseline < 1.5 x the largest tensor (wte / lm_head, 622 MB in bf16).
Needs ~7.5 GB of disk under DIR (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

QWEN1_8B = {
    "architectures": ["QWenLMHeadModel"], "model_type": "qwen", "tokenizer_class": "QWenTokenizer",
    "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig", "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
    "vocab_size": 151936, "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16, "kv_channels": 128,
    "intermediate_size": 11008, "layer_norm_epsilon": 1e-6, "rotary_emb_base": 10000, "rotary_pct": 1.0,
    "seq_length": 8192, "max_position_embeddings": 8192, "use_dynamic_ntk": True, "use_logn_attn": True,
    "use_flash_attn": "auto", "no_bias": True, "emb_dropout_prob": 0.0, "attn_dropout_prob": 0.0,
    "initializer_range": 0.02, "scale_attn_weights": True, "tie_word_embeddings": False,
    "bf16": False, "fp16": False, "fp32": False, "torch_dtype": "bfloat16",
}
WEIGHTS_ONLY_RSS = (  # the streaming part alone: inspect, then (unless argv[3] == "0") write the weights
    "import sys\n"
    "from pathlib import Path\n"
    "from mft_hpc.model.qwen1_import import _native_plan, _write_weights, inspect_qwen1\n"
    "source = inspect_qwen1(sys.argv[1])\n"
    "if sys.argv[3] == 'calibrate':  # what holding one largest tensor would cost, to show the method sees it\n"
    "    held = bytearray(source.tensors['transformer.wte.weight'].nbytes)\n"
    "    held[::4096] = b'x' * len(held[::4096])\n"
    "if sys.argv[3] == '1':\n"
    "    Path(sys.argv[2]).mkdir()\n"
    "    _write_weights(_native_plan(source), Path(sys.argv[2]), 2 << 30)\n"
    "print('PEAK_KB', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
)
PEAK_RSS = (
    "import sys\n"
    "from mft_hpc.cli.main import main\n"
    "code = main(['model', 'import', sys.argv[1], sys.argv[2]])\n"
    "print('PEAK_KB', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    "sys.exit(code)\n"
)


def synthesise(out: Path) -> int:
    """Write the checkpoint one tensor (and at most 64 MB of rows) at a time; returns the largest tensor's bytes."""
    import torch

    from mft_hpc.model.qwen1 import read_qwen1_config
    from mft_hpc.model.safetensors_stream import ShardWriter
    from mft_hpc.model.tiny import qwen1_tiktoken_file

    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(QWEN1_8B, indent=2))
    shutil.copyfile(qwen1_tiktoken_file(), out / "qwen.tiktoken")
    _, shape = read_qwen1_config(out)
    tensors = list(shape.expected_tensors().items())
    half = len(tensors) // 2
    shards = {"model-00001-of-00002.safetensors": tensors[:half], "model-00002-of-00002.safetensors": tensors[half:]}
    generator = torch.Generator().manual_seed(0)

    def rows(shape_):
        cols = math.prod(shape_[1:]) if len(shape_) > 1 else 1
        per_chunk = max(1, (32 << 20) // max(cols, 1))
        total = shape_[0] if len(shape_) > 1 else 1
        for start in range(0, total, per_chunk):
            n = min(per_chunk, total - start)
            size = (n, cols) if len(shape_) > 1 else (shape_[0],)
            yield (torch.randn(size, generator=generator) * 0.02).to(torch.bfloat16).view(torch.uint8).numpy()

    for file_name, items in shards.items():
        writer = ShardWriter(out / file_name, [(name, "BF16", shp) for name, shp in items])
        for name, shp in items:
            writer.write_chunks(name, rows(shp))
        writer.close()
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {name: f for f, items in shards.items() for name, _ in items}}))
    return max(math.prod(shp) for _, shp in tensors) * 2


def peak_rss_of_import(src: Path, dst: Path, script: str = PEAK_RSS, *extra: str) -> tuple[int, float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script, str(src), str(dst), *extra], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"import of {src} failed:\n{result.stderr}")
    kb = int(next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("PEAK_KB")))
    return kb * 1024, time.monotonic() - started


def check_native(dst: Path) -> None:
    """The output has exactly Qwen2ForCausalLM's parameter names and shapes (checked on the meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from mft_hpc.model.safetensors_stream import read_header

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(dst))
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    written = {}
    for path in sorted(dst.glob("*.safetensors")):
        written.update({name: span.shape for name, span in read_header(path).items()})
    assert written == expected, sorted(set(written) ^ set(expected))[:5]
    assert all(span.dtype == "BF16" for path in dst.glob("*.safetensors") for span in read_header(path).values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="scratch directory (needs ~7.5 GB)")
    parser.add_argument("--keep", action="store_true", help="keep the synthesised checkpoint and its import")
    args = parser.parse_args()
    from mft_hpc.model.tiny import build_tiny_qwen1

    scratch = Path(tempfile.mkdtemp(prefix="qwen1-import-bench-", dir=args.dir))
    try:
        started = time.monotonic()
        largest = synthesise(scratch / "qwen1-1_8b-shaped")
        source_bytes = sum(p.stat().st_size for p in (scratch / "qwen1-1_8b-shaped").glob("*.safetensors"))
        print(f"synthesised a Qwen-1.8B-shaped bf16 checkpoint: {source_bytes / 1e9:.2f} GB in two shards "
              f"({time.monotonic() - started:.0f} s); largest tensor {largest / 1e6:.0f} MB")
        tiny = build_tiny_qwen1(scratch / "qwen1-tiny", vocab_size=1024)
        baseline, baseline_s = peak_rss_of_import(tiny, scratch / "tiny-native")
        peak, seconds = peak_rss_of_import(scratch / "qwen1-1_8b-shaped", scratch / "native")
        check_native(scratch / "native")
        inspect_only, _ = peak_rss_of_import(scratch / "qwen1-1_8b-shaped", scratch / "unused", WEIGHTS_ONLY_RSS, "0")
        weights, weights_s = peak_rss_of_import(scratch / "qwen1-1_8b-shaped", scratch / "weights", WEIGHTS_ONLY_RSS, "1")
        holding, _ = peak_rss_of_import(scratch / "qwen1-1_8b-shaped", scratch / "unused", WEIGHTS_ONLY_RSS, "calibrate")
        excess = peak - baseline
        print(f"baseline (tiny Qwen-1, same tokenizer): peak RSS {baseline / 1e6:.0f} MB ({baseline_s:.0f} s)")
        print(f"Qwen-1.8B-shaped import:                peak RSS {peak / 1e6:.0f} MB ({seconds:.0f} s, "
              f"{source_bytes / seconds / 1e6:.0f} MB/s)")
        print(f"weights alone (streaming copy):          peak RSS {weights / 1e6:.0f} MB ({weights_s:.0f} s) vs "
              f"{inspect_only / 1e6:.0f} MB validating only: +{(weights - inspect_only) / 1e6:.0f} MB = "
              f"{(weights - inspect_only) / largest:.3f} x the largest tensor")
        print(f"calibration: validating + holding one largest tensor: peak RSS {holding / 1e6:.0f} MB "
              f"(+{(holding - inspect_only) / largest:.2f} x the largest tensor)")
        print(f"peak - baseline = {excess / 1e6:.0f} MB = {excess / largest:.3f} x the largest tensor "
              f"(goal < 1.5); peak = {peak / largest:.2f} x largest tensor total; output matches Qwen2ForCausalLM")
        return 0 if max(excess, weights - inspect_only) < 1.5 * largest else 1
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
