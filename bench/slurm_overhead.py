"""Overhead of the Slurm layer on the DAG of a 4-member sweep (every job a no-op).

    4 training jobs -> 4 x 13 generation elements (afterok on their member's training)
                    -> 4 x 13 evaluation elements (aftercorr on generation)

Prints the time to queue everything (goal <= 2 s), the sbatch/squeue/sacct calls made while the
run was watched, the status calls per refresh for 1 job vs all 108 (goal: the same, i.e. a ratio
of 1.0 — per-job polling would need 108), and the makespan against the sum of element run times.
Needs the test cluster (tests/cluster/up.sh). Usage: python bench/slurm_overhead.py [--members 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.slurm import StatusPoller, Submitter, after_corr, after_ok
from mft_hpc.slurm.dependency import FINISHED_STATES

TASKS = 13


def noop(*_args):
    return None


def sacct_times(ids: list[str]) -> dict[str, tuple[datetime, datetime]]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,Start,End", "-j",
                          ",".join(sorted({i.split("_")[0] for i in ids}))],
                         capture_output=True, text=True).stdout
    times = {}
    for line in out.splitlines():
        job_id, start, end = line.split("|")
        if start[:1].isdigit() and end[:1].isdigit():
            times[job_id] = (datetime.fromisoformat(start), datetime.fromisoformat(end))
    return times


def raw_sbatch_seconds(count: int, folder: Path) -> float:
    """Baseline: ``count`` bare `sbatch --hold --wrap true` calls (then cancelled)."""
    t0 = time.monotonic()
    ids = [subprocess.run(["sbatch", "--parsable", "--hold", "-o", str(folder / "raw-%j.out"), "--wrap", "true"],
                          capture_output=True, text=True, check=True).stdout.strip() for _ in range(count)]
    elapsed = time.monotonic() - t0
    subprocess.run(["scancel", *ids], check=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=4)
    args = parser.parse_args()
    if subprocess.run(["scontrol", "ping"], capture_output=True).returncode != 0:
        print("no Slurm cluster answers `scontrol ping` (tests/cluster/up.sh)", file=sys.stderr)
        return 2
    cluster = ClusterSection(executor="slurm", partition="debug", time=5)
    folder = Path(tempfile.mkdtemp(prefix="mft-slurm-bench-"))
    submitter = Submitter(cluster, folder)
    submitter.commands.max_array_size  # read the cluster config before timing, as a controller would at start

    t0 = time.monotonic()
    wall0 = datetime.now().replace(microsecond=0)
    all_jobs = []
    for _member in range(args.members):
        train = submitter.submit(noop, name="train")
        gen = submitter.map_array(noop, range(TASKS), after=[after_ok([train])], name="generate",
                                  overrides={"nodes": 1})
        ev = submitter.map_array(noop, range(TASKS), after=[after_corr(gen)], name="evaluate")
        all_jobs += [train, *gen, *ev]
    queue_s = time.monotonic() - t0
    ids = [j.job_id for j in all_jobs]
    queued_calls = dict(submitter.commands.calls)
    baseline_s = raw_sbatch_seconds(queued_calls.get("sbatch", 0), folder)

    poller = StatusPoller(submitter.commands, since=wall0)
    refreshes = 0
    per_refresh = set()
    states = {}
    while True:
        before = dict(submitter.commands.calls)
        states = poller.refresh(ids)
        refreshes += 1
        per_refresh.add(sum(submitter.commands.calls[c] - before.get(c, 0) for c in ("squeue", "sacct")))
        if all(s in FINISHED_STATES for s in states.values()):
            break
        time.sleep(poller.next_delay_s)
    watched_s = time.monotonic() - t0

    one = StatusPoller()
    one.refresh(ids[:1])
    many = StatusPoller()
    many.refresh(ids)
    calls_one = sum(one.commands.calls.values())
    calls_many = sum(many.commands.calls.values())

    deadline = time.monotonic() + 60
    times = sacct_times(ids)
    while len(times) < len(ids) and time.monotonic() < deadline:  # accounting lags
        time.sleep(1)
        times = sacct_times(ids)
    busy = sum((end - start).total_seconds() for start, end in times.values())
    makespan = (max(e for _, e in times.values()) - wall0).total_seconds() if times else float("nan")

    failed = sorted({s for s in states.values()} - {"COMPLETED"})
    m = args.members
    print(f"jobs: {len(ids)} ({m} train + {m}x{TASKS} generate + {m}x{TASKS} evaluate)"
          f"{'; NOT COMPLETED: ' + ', '.join(failed) if failed else ''}")
    print(f"time to queue all: {queue_s:.3f} s  (goal <= 2 s: ratio {queue_s / 2.0:.2f}); the same number of bare"
          f" sbatch calls: {baseline_s:.3f} s (ratio {queue_s / baseline_s:.2f})")
    print(f"calls while queueing: sbatch={queued_calls.get('sbatch', 0)} squeue={queued_calls.get('squeue', 0)}"
          f" sacct={queued_calls.get('sacct', 0)} scontrol={queued_calls.get('scontrol', 0)}")
    total = submitter.commands.calls
    print(f"calls until all finished ({watched_s:.1f} s, {refreshes} refreshes): sbatch={total['sbatch']}"
          f" squeue={total['squeue']} sacct={total['sacct']}; status calls per refresh: {sorted(per_refresh)}")
    print(f"status calls for one refresh: 1 job -> {calls_one}, {len(ids)} jobs -> {calls_many}"
          f"  (ratio {calls_many / calls_one:.2f}; per-job polling would make {len(ids)})")
    print(f"makespan {makespan:.1f} s vs sum of element run times {busy:.1f} s"
          f" (ratio {makespan / busy if busy else float('nan'):.2f};"
          f" {len(times)}/{len(ids)} elements timed by sacct, 1 s resolution)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
