"""Peak memory of `mft-hpc data render` on hostile data: one 50 MB line among ordinary ones.

    .venv/bin/python bench/render_memory.py [--line-mb 50] [--seq-length 512]

Each render runs as its own `mft-hpc data render` process; its peak RSS comes from wait4(). The
baseline, measured in the same run, is the same command on the same file without the long line.
Goal: under 500 MB with the long line (issue 13 measured 7.6 GB before rendering was bounded).
Tokenizers: Qwen-1's BPE (tiktoken, /work/shared/fixtures/qwen1-tiny) and a HF BPE (the tiny
Qwen2 built by mft_hpc.model.tiny). This process imports nothing heavy: a child's peak RSS
includes what it was forked from.
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
QWEN1 = Path(os.environ.get("MFT_HPC_QWEN1_TINY", REPO.parent / "shared" / "fixtures" / "qwen1-tiny"))
GOAL_MB = 500


def write_data(path: Path, line_mb: int | None, n_ordinary: int = 200) -> None:
    with open(path, "w") as handle:
        for i in range(n_ordinary):
            handle.write(json.dumps({"chat_rounds": [{"role": "human", "content": f"Write a function adding {i}."},
                                                     {"role": "bot", "content": f"def f(x):\n    return x + {i}\n"}]})
                         + "\n")
            if line_mb and i == n_ordinary // 2:
                # prose-like text: words and spaces, so a BPE finds many merges (no degenerate single run)
                words = ("lorem ipsum dolor sit amet consectetur adipiscing elit " * (line_mb * 20000))[: line_mb << 20]
                handle.write(json.dumps({"chat_rounds": [{"role": "human", "content": words},
                                                         {"role": "bot", "content": "ok"}]}) + "\n")


def render_peak_mb(tokenizer: Path, data: Path, out: Path, seq_length: int) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of one `mft-hpc data render` process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "2"}
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "mft_hpc", "data", "render", "--tokenizer", str(tokenizer),
                                "--in", str(data), "--out", str(out), "--seq-length", str(seq_length)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.stderr.write(process.stderr.read().decode(errors="replace"))
    return usage.ru_maxrss / 1024, elapsed, process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-mb", type=int, default=50)
    parser.add_argument("--seq-length", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="render-memory-") as scratch:
        scratch = Path(scratch)
        # built in a child: this process stays small, since a child's peak RSS counts what it forked from
        subprocess.run([sys.executable, "-c", "import sys; from mft_hpc.model.tiny import build_tiny_qwen2; "
                        "build_tiny_qwen2(sys.argv[1])", str(scratch / "tiny")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tokenizers = {"qwen1-tiktoken": QWEN1, "tiny-hf-bpe": scratch / "tiny"}
        hostile, ordinary = scratch / "hostile.jsonl", scratch / "ordinary.jsonl"
        write_data(hostile, args.line_mb)
        write_data(ordinary, None)
        print(f"data: {hostile.stat().st_size / 2**20:.1f} MB with one {args.line_mb} MB line; "
              f"baseline {ordinary.stat().st_size / 1024:.0f} KB; --seq-length {args.seq_length}")
        worst = 0.0
        for name, tokenizer in tokenizers.items():
            if not tokenizer.exists():
                print(f"{name}: {tokenizer} not found, skipped")
                continue
            base_mb, base_s, base_rc = render_peak_mb(tokenizer, ordinary, scratch / "o.jsonl", args.seq_length)
            peak_mb, peak_s, rc = render_peak_mb(tokenizer, hostile, scratch / "h.jsonl", args.seq_length)
            worst = max(worst, peak_mb)
            print(f"{name:>15}: peak RSS {peak_mb:7.1f} MB ({peak_s:5.1f} s, exit {rc}) vs baseline "
                  f"{base_mb:7.1f} MB ({base_s:5.1f} s, exit {base_rc}): ratio {peak_mb / base_mb:.2f}; "
                  f"goal < {GOAL_MB} MB: {'met' if peak_mb < GOAL_MB else 'NOT met'}")
    return 0 if worst < GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
