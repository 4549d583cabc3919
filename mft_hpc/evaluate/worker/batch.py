"""A batch: every program of the manifest, judged by its language's Runner on a pool of threads."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .runners import RUNNERS
from .toolchain import Toolchain


class Batch:
    def __init__(self, manifest: dict, scratch: str, out):
        self.manifest = manifest
        self.nonce = manifest["nonce"]
        self.jobs = manifest["jobs"]
        self.workers = max(1, int(manifest.get("workers", 1)))
        self.tool = Toolchain({**manifest.get("toolchain", {}), "cores": self.workers})
        self.scratch = scratch
        self.out = out
        self.lock = threading.Lock()
        made: dict[type, object] = {}   # one runner per language module (python and mbpp share one)
        self.runners = {lang: made.setdefault(RUNNERS[lang], RUNNERS[lang](self))
                        for lang in dict.fromkeys(job["lang"] for job in self.jobs) if lang in RUNNERS}

    def emit(self, record: dict) -> None:
        with self.lock:
            self.out.write(f"{self.nonce} {json.dumps(record)}\n")
            self.out.flush()

    def run_one(self, job: dict, workdir: str | None = None, built: bool = False, spent: float = 0.0) -> None:
        """Run one program. A program of a group arrives with its workdir made (built: its binary is
        there) and its share of the group's build time in ``spent``."""
        if workdir is None:
            self.emit({"id": job["id"], "event": "start"})
        start = time.monotonic() - spent
        try:
            if workdir is None:
                workdir = os.path.join(self.scratch, f"p{job['id']}")
                os.makedirs(workdir)
            runner = self.runners[job["lang"]]
            verdict, reason = runner.run_built(job, workdir) if built else runner.run(job, workdir)
        except Exception as err:  # a worker-side problem must never look like a program's pass
            verdict, reason = "error", f"evaluator error: {type(err).__name__}: {err}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.emit({"id": job["id"], "verdict": verdict, "reason": reason,
                   "seconds": round(time.monotonic() - start, 3)})

    def tasks(self) -> list[tuple]:
        """(function, argument) per unit of work, in input order; the programs of a language that builds
        in groups (Go, groupable Rust) in groups of at most its ``group_size``, as few groups as fill
        every core the same number of times (each group build pays the toolchain's fixed cost once;
        a group build of Go keeps ``group_cores`` = 2 cores busy by itself)."""
        heads: dict[int, tuple] = {}
        for lang, runner in self.runners.items():
            if runner.group_size <= 1:
                continue
            members = [job for job in self.jobs if job["lang"] == lang and runner.fits_group(job)]
            at_once = max(1, self.workers // runner.group_cores)                  # group builds filling the cores
            rounds = -(-len(members) // (at_once * runner.group_size))            # group builds per core
            size = -(-len(members) // (at_once * rounds)) if members else 1
            if size >= runner.group_min:   # smaller groups are run alone
                heads.update({members[i]["id"]: (runner.run_group, members[i:i + size])
                              for i in range(0, len(members), size) if len(members[i:i + size]) >= runner.group_min})
        grouped = {job["id"] for _, group in heads.values() for job in group}
        units = []
        for job in self.jobs:
            if job["id"] in heads:
                units.append(heads[job["id"]])
            elif job["id"] not in grouped:
                units.append((self.run_one, job))
        return units

    def run(self) -> None:
        # compiled languages first in input order; the pool keeps every core busy
        try:
            # twice the cores: short runs (Python, JS, test binaries) overlap their start-up latency;
            # compiles stay limited to one per core by tool.compile_slots
            with ThreadPoolExecutor(max_workers=2 * self.workers) as pool:
                for future in [pool.submit(function, unit) for function, unit in self.tasks()]:
                    future.result()
        finally:
            for runner in dict.fromkeys(self.runners.values()):
                runner.close()
