"""Where evaluation's CPU seconds go, per language: container start, each compile and run step.

    .venv/bin/python bench/eval_profile.py [--tasks T ...] [--limit N] [--workers N]

Runs the canonical programs of each task through the image's own worker (its Batch, unchanged),
inside the evaluation container, with one instrumented function: every subprocess step is reaped
with wait4(2), which gives that step's own CPU seconds (user + sys of it and the processes it
waited for). Steps are grouped by command (g++, rustc, go test -c, a group build, javac, java, the
test binary, node ...); "worker/other" is the rest of the container's CPU (the worker itself,
the warm javac server, Python programs forked by the worker); "container start" is an empty
`apptainer exec` measured the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mft_hpc.evaluate.assemble import CPP_IMPORTS  # noqa: E402
from mft_hpc.evaluate.canonical import canonical_generation  # noqa: E402
from mft_hpc.evaluate.image import default_image  # noqa: E402
from mft_hpc.evaluate.languages import program_job  # noqa: E402
from mft_hpc.evaluate.runtime import make_runtime, scratch_root  # noqa: E402
from mft_hpc.tasks.names import TASK_NAMES  # noqa: E402
from mft_hpc.tasks.registry import load_problems  # noqa: E402

# runs inside the container: the image's worker, with run_step reaping through wait4
INSIDE = r'''
import io, json, os, sys, threading
sys.path.insert(0, "/opt/mft-hpc")
from worker import steps as worker_steps
from worker.batch import Batch

steps, lock = [], threading.Lock()
original_popen = worker_steps.subprocess.Popen

class Timed(original_popen):
    def _try_wait(self, wait_flags):
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid == self.pid:
            label = os.path.basename(self.args[0]) + (" " + self.args[1] if len(self.args) > 1 else "")
            if "-exec" in self.args:
                label = "go test (group build)"
            with lock:
                steps.append((label, usage.ru_utime + usage.ru_stime))
        return pid, status

worker_steps.subprocess.Popen = Timed
manifest = json.load(open("/prof/manifest.json"))
before = os.times()
batch = Batch(manifest, "/scratch", io.StringIO())
batch.run()
after = os.times()
total = (after.children_user - before.children_user) + (after.children_system - before.children_system)
own = (after.user - before.user) + (after.system - before.system)
json.dump({"steps": steps, "children_cpu": total, "worker_cpu": own}, open("/prof/out.json", "w"))
'''


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def container(runtime, prof: Path, argv: list[str]) -> float:
    """CPU seconds of one container run (everything it and its children used)."""
    scratch = prof / "scratch"
    runtime.prepare_scratch(scratch)
    cmd = runtime.argv(scratch, 2, [])
    image_at = cmd.index(str(runtime.image))
    cmd = cmd[:image_at] + ["--bind", f"{prof}:/prof:rw"] + [str(runtime.image)] + argv
    before = children_cpu()
    subprocess.run(cmd, check=True)
    return children_cpu() - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default=str(REPO.parent / "shared" / "benchmarks"))
    parser.add_argument("--image", default=str(default_image()))
    parser.add_argument("--tasks", nargs="+", default=[t for t in TASK_NAMES if "synthesize" in t])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    runtime = make_runtime("apptainer", args.image)
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="mft-hpc-prof.", dir=scratch_root()) as tmp:
        prof = Path(tmp)
        os.chmod(prof, 0o777)
        start_cpu = min(container(runtime, prof, ["true"]) for _ in range(3))
        print(f"container start (empty apptainer exec, min of 3): {start_cpu:.3f} CPU s")
        print(f"{'task':<28}{'n':>4}{'wall s':>8}{'cpu/prog':>10}   steps: CPU s per program")
        for task in args.tasks:
            problems = load_problems(args.benchmarks, task)[: args.limit]
            jobs = [program_job(task, i, doc, canonical_generation(task, doc), i) for i, doc in enumerate(problems)]
            manifest = {"nonce": "p", "workers": args.workers, "cpp_prelude": "\n".join(CPP_IMPORTS),
                        "toolchain": runtime.toolchain(),
                        "jobs": [{k: j[k] for k in ("id", "lang", "source", "timeout", "compile_timeout")} for j in jobs]}
            (prof / "manifest.json").write_text(json.dumps(manifest))
            (prof / "inside.py").write_text(INSIDE)
            wall = time.monotonic()
            cpu = container(runtime, prof, ["python3", "-I", "/prof/inside.py"])
            wall = time.monotonic() - wall
            out = json.loads((prof / "out.json").read_text())
            by_label = defaultdict(float)
            for label, seconds in out["steps"]:
                by_label[label] += seconds
            other = cpu - sum(by_label.values())
            parts = sorted(by_label.items(), key=lambda kv: -kv[1]) + [("worker/other", other)]
            text = ", ".join(f"{label} {seconds / len(jobs):.3f}" for label, seconds in parts if seconds > 0.001)
            print(f"{task:<28}{len(jobs):>4}{wall:8.1f}{cpu / len(jobs):10.3f}   {text}", flush=True)
            largest = sorted(out["steps"], key=lambda step: -step[1])[:5]
            print(f"{'':<28}largest steps: " + ", ".join(f"{label} {seconds:.2f}" for label, seconds in largest))
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
