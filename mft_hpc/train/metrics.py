"""Training observability: metrics.jsonl (read by the dashboard), TensorBoard scalars, memory
(MFU: ``flops.py``).

Only the main process writes. On resume, rows after the resumed step are dropped so the file is
the curve of one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import resource
from pathlib import Path

from mft_hpc.rundir import atomic_write_text


def memory_gib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def _finite(value):
    """JSON-safe: NaN/inf become null (also inside dicts and lists)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    def __init__(self, directory: str | os.PathLike, enabled: bool):
        self.path = Path(directory) / "metrics.jsonl"
        self.enabled = enabled
        self.writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(str(Path(directory) / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not self.path.exists():
            return
        rows = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(row + "\n" for row in rows))

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        clean = _finite(row)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(clean) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, dict):
                    for task, task_value in value.items():
                        if isinstance(task_value, float) and math.isfinite(task_value):
                            self.writer.add_scalar(f"{key}/{task}", task_value, row["step"])
                elif isinstance(value, (int, float)) and key != "step" and math.isfinite(value):
                    self.writer.add_scalar(key, value, row["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_loss_curve(metrics_path: str | os.PathLike, out_png: str | os.PathLike) -> Path | None:
    """Train loss and per-task validation loss against step, as a PNG (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train" and r.get("loss") is not None]
    evals = [r for r in rows if r.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train loss")
    for task in sorted({t for r in evals for t in r.get("valid_loss_per_task", {})}):
        points = [(r["step"], r["valid_loss_per_task"][task]) for r in evals
                  if r["valid_loss_per_task"].get(task) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=f"valid {task}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    out = Path(out_png)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out)
    return out
