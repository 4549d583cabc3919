"""Run jobs through one sandboxed worker per batch; survive programs that kill the worker.

One container start per batch. Results stream back as ``<nonce> <json>`` lines; lines without
the batch's nonce are ignored. When the worker dies before finishing (a program killed it, or
the sandbox's memory/pids limit took it down), the programs that were in flight are re-run one
per container — a program that kills its own singleton sandbox gets verdict ``error`` — and the
programs not yet started go to a fresh batch.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable

from mft_hpc.errors import UserError
from mft_hpc.evaluate.assemble import CPP_IMPORTS
from mft_hpc.evaluate.runtime import Runtime, scratch_root

KILLED_SANDBOX = "the program brought down its sandbox (killed the evaluation worker)"
# signs that a program was starved by a neighbour rather than wrong on its own (lower case: Go and
# Rust print "resource temporarily unavailable", C libraries "Resource temporarily unavailable";
# a Go compiler or test binary that cannot start a thread dies with "fatal error: newosproc", a JVM
# with "Cannot create VM thread. Out of system resources.")
RESOURCE_MARKERS = ("resource temporarily unavailable", "unexpectedly panicked", "failed to spawn", "newosproc",
                    "cannot allocate memory", "unable to create native thread", "pthread_create", "eagain",
                    "out of memory", "outofmemoryerror", "bad_alloc", "memory allocation of",
                    "killed (memory limit)", "memoryerror", "cannot create vm thread", "out of system resources")
# a worker that prints nothing for this long is hung (every job has a bounded timeout)
SILENCE_LIMIT_S = 900


class SandboxFailure(UserError):
    """The sandbox failed without running any program: an environment problem, not a verdict."""


def _run_worker(runtime: Runtime, jobs: list[dict], workers: int,
                on_result: Callable[[dict], None]) -> tuple[set[int], set[int], int, str]:
    """One worker process; returns (started ids, finished ids, exit code, stderr tail)."""
    nonce = secrets.token_hex(16)
    manifest = {"nonce": nonce, "workers": workers, "toolchain": runtime.toolchain(),
                "cpp_prelude": "\n".join(CPP_IMPORTS),
                "jobs": [{k: job[k] for k in ("id", "lang", "source", "timeout", "compile_timeout")} for job in jobs]}
    started, finished = set(), set()
    with tempfile.TemporaryDirectory(prefix="mft-hpc-eval.", dir=scratch_root()) as tmp:
        scratch = Path(tmp) / "scratch"
        runtime.prepare_scratch(scratch)
        proc = subprocess.Popen(runtime.argv(scratch, workers, []), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, **runtime.popen_kwargs())
        stderr_chunks: list[bytes] = []
        drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()[-20000:]), daemon=True)
        drain.start()
        try:
            proc.stdin.write(json.dumps(manifest).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        watchdog = threading.Timer(SILENCE_LIMIT_S, lambda: _stop(proc))
        watchdog.start()
        try:
            for raw in proc.stdout:
                watchdog.cancel()
                watchdog = threading.Timer(SILENCE_LIMIT_S, lambda: _stop(proc))
                watchdog.start()
                tag, _, payload = raw.decode("utf-8", "replace").partition(" ")
                if tag != nonce:
                    continue
                record = json.loads(payload)
                if record.get("event") == "start":
                    started.add(record["id"])
                elif record["id"] not in finished:
                    finished.add(record["id"])
                    on_result(record)
        finally:
            watchdog.cancel()
            _stop(proc)
            drain.join(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)
    return started, finished, proc.returncode, b"".join(stderr_chunks).decode("utf-8", "replace")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM first (apptainer tears down cleanly), then SIGKILL the whole group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_jobs(runtime: Runtime, jobs: list[dict], workers: int, on_result: Callable[[dict], None]) -> None:
    """Run every job; ``on_result`` gets exactly one record per job id.

    Programs of a batch share the sandbox's pids and memory limits, so a fork or memory bomb can
    starve a neighbour (a compiler that cannot start a thread, a program that cannot fork). A
    non-pass whose reason shows resource exhaustion is therefore re-run alone before it counts.
    """
    by_id = {job["id"]: job for job in jobs}
    recheck: list[dict] = []

    def deliver(record: dict) -> None:
        if len(jobs) > 1 and record["verdict"] != "pass" and _starved(record.get("reason", "")):
            recheck.append(by_id[record["id"]])
        else:
            on_result(record)

    _run_all(runtime, jobs, workers, deliver)
    for job in recheck:
        _run_all(runtime, [job], 1, on_result)


def _starved(reason: str) -> bool:
    reason = reason.lower()
    return any(marker in reason for marker in RESOURCE_MARKERS)


def _run_all(runtime: Runtime, jobs: list[dict], workers: int, on_result: Callable[[dict], None]) -> None:
    pending = list(jobs)
    while pending:
        started, finished, rc, stderr = _run_worker(runtime, pending, workers, on_result)
        if len(finished) == len(pending):
            return
        if not started:
            tail = "\n".join(stderr.strip().splitlines()[-5:]) or f"exit status {rc}"
            raise SandboxFailure(f"runtime {runtime.name}: the evaluation worker ran no program: {tail}")
        suspects = [job for job in pending if job["id"] in started and job["id"] not in finished]
        for job in suspects:
            if len(pending) == 1:   # already alone in its sandbox: it is the culprit
                on_result({"id": job["id"], "verdict": "error", "reason": KILLED_SANDBOX, "seconds": 0.0})
            else:
                _run_all(runtime, [job], 1, on_result)
        pending = [job for job in pending if job["id"] not in started]
