"""Controller cost against sweep size: sweeps of N no-op members (train.seed over N values, 13 tasks).

Per N: seconds to plan (dry run, in process: config load, checks, DAG, state store, scripts), and on
the test cluster (tests/cluster/up.sh) a real submission, held (`--hold`: no element ever runs;
cancelled afterwards): seconds to queue, sbatch calls, seconds per status refresh (refresh_run:
state store + one squeue/sacct), dashboard build + render time (read_run + render_plain). Then the
growth exponent fitted between the two largest N (t ~ N^k). Targets at N = 1,000 (27,001 elements):
plan <= 10 s, queue <= 30 s with <= 30 sbatch calls, refresh <= 1 s, dashboard <= 0.5 s, k <= 1.15.
Prints the machine's load average: the figures are wall-clock times on a shared machine.

    python bench/controller_scale.py [--members 10,100,1000] [--dry-run-only]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # jobs/ (the compute-node entry points) next to mft_hpc


def noop() -> None:
    """What every element of the benchmark's members runs (they are submitted held and never run anyway)."""
    return None


def noop_element(**_fields):
    """Every stage's element maker: whatever the element's fields, the no-op."""
    return noop


def tiny_model(folder: Path) -> Path:
    from mft_hpc.model.tiny import build_tiny_qwen2

    return build_tiny_qwen2(folder / "tiny-qwen2")


def write_config(folder: Path, n: int, model: Path, hold: bool) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "d.jsonl").write_text(
        '{"chat_rounds": [{"role": "human", "content": "a"}, {"role": "bot", "content": "b"}]}\n')
    (folder / "benchmarks").mkdir(exist_ok=True)
    cluster = {"executor": "slurm", "partition": "debug", "time": 5}
    if hold:
        cluster["extra"] = {"hold": True}
    config = {"run": {"name": f"scale{n}", "root": str(folder / "runs")}, "cluster": cluster,
              "model": {"path": str(model)}, "data": {"paths": [str(folder / "data")]},
              "generate": {"benchmarks": str(folder / "benchmarks")}, "evaluate": {"enabled": True},
              "submission": {"enabled": False}, "sweep": {"train.seed": list(range(n))}}
    path = folder / f"scale{n}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def exponent(sizes: list[int], seconds: list[float]) -> float | None:
    if len(sizes) < 2 or seconds[-2] <= 0:
        return None
    return math.log(seconds[-1] / seconds[-2]) / math.log(sizes[-1] / sizes[-2])


def measure(n: int, folder: Path, model: Path, real: bool) -> dict:
    from mft_hpc.config import load_config
    from mft_hpc.controller.operations import cancel, refresh_run, start_run
    from mft_hpc.controller.submit import StageElements
    from mft_hpc.dashboard import read_run, render_plain
    from mft_hpc.slurm import StatusPoller

    row: dict = {"members": n}
    functions = StageElements(noop_element, noop_element, noop_element, noop_element)
    dry = write_config(folder / f"dry{n}", n, model, hold=False)
    row["plan_s"], outcome = timed(lambda: start_run(load_config(dry), dry_run=True, functions=functions))
    row["elements"], row["planned_sbatch"] = len(outcome.submitted), outcome.sbatch_calls
    if not real:
        return row
    config = write_config(folder / f"real{n}", n, model, hold=True)
    row["queue_s"], outcome = timed(lambda: start_run(load_config(config), functions=functions))
    row["sbatch"] = outcome.sbatch_calls
    root = folder / f"real{n}" / "runs" / f"scale{n}"
    try:
        poller = StatusPoller()
        refreshes = [timed(lambda: refresh_run(root, poller))[0] for _ in range(3)]
        row["refresh_s"] = min(refreshes)
        row["first_refresh_s"] = refreshes[0]
        renders = [timed(lambda: render_plain(read_run(root)))[0] for _ in range(3)]
        row["dashboard_s"] = min(renders)
    finally:
        cancel(root)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="10,100,1000")
    parser.add_argument("--dry-run-only", action="store_true", help="plan only (no cluster needed)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.members.split(",")]
    real = not args.dry_run_only
    if real and subprocess.run(["scontrol", "ping"], capture_output=True).returncode != 0:
        print("no Slurm cluster answers `scontrol ping` (tests/cluster/up.sh); use --dry-run-only", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="mft-controller-scale-"))
    model = tiny_model(folder)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    rows = []
    for n in sizes:
        rows.append(measure(n, folder, model, real))
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{'members':>8} {'elements':>9} {'plan s':>8} {'queue s':>8} {'sbatch':>7} {'refresh s':>10} "
          f"{'dashboard s':>12}")
    for row in rows:
        def cell(key, width):
            value = row.get(key)
            return f"{value:>{width}.3f}" if isinstance(value, float) else f"{'-' if value is None else value:>{width}}"
        print(f"{row['members']:>8} {row['elements']:>9} {cell('plan_s', 8)} {cell('queue_s', 8)} "
              f"{cell('sbatch', 7)} {cell('refresh_s', 10)} {cell('dashboard_s', 12)}")
    for key in ("plan_s", "queue_s", "refresh_s", "dashboard_s"):
        if all(key in row for row in rows):
            k = exponent(sizes, [row[key] for row in rows])
            if k is not None:
                print(f"growth exponent of {key} from {sizes[-2]} to {sizes[-1]} members: {k:.2f}")
    largest = rows[-1]
    checks = [("plan_s", 10.0), ("queue_s", 30.0), ("sbatch", 30), ("refresh_s", 1.0), ("dashboard_s", 0.5)]
    print("targets at the largest N: " + ", ".join(
        f"{key} {largest[key]:.3g} <= {limit}: {'ok' if largest[key] <= limit else 'MISSED'}"
        for key, limit in checks if key in largest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
