"""One program step under limits (a subprocess in its own session), and how its outcome reads as a verdict."""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import subprocess

OUTPUT_LIMIT = 128 * 2**20      # RLIMIT_FSIZE: a flooding program is stopped by SIGXFSZ
ADDRESS_SPACE = 4 * 2**30       # RLIMIT_AS where the runtime tolerates it (not for JVM / V8)
REASON_CHARS = 600


def first_lines(text: str, limit: int = REASON_CHARS) -> str:
    """The first lines of stderr, starting at the first one that says "error" (compilers put
    "In file included from ..." context first)."""
    lines = [l for l in text.strip().splitlines() if l.strip()]
    start = next((i for i, l in enumerate(lines) if "error" in l.lower()), 0)
    return "\n".join(lines[start:start + 6])[:limit]


def read_head(path: str, limit: int = 64 * 1024) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


class Step:
    """Outcome of one subprocess step."""

    def __init__(self, rc, timed_out, signal_no, stdout_size, stderr_text, stdout_text=""):
        self.rc, self.timed_out, self.signal_no = rc, timed_out, signal_no
        self.stdout_size, self.stderr_text, self.stdout_text = stdout_size, stderr_text, stdout_text


def limits_preexec(address_space: bool, cpu_seconds: float, nproc: int | None):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
        cpu = int(cpu_seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        if address_space:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    return apply


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
    """Block until ``proc`` exits or ``timeout`` passes; True when it exited. Does not reap it.

    A pidfd becomes readable the moment the process exits; Popen.wait(timeout) instead polls with
    sleeps of up to 50 ms, an overshoot per step that would hold a compile slot idle.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):    # no pidfd (Python < 3.9, kernel < 5.3, a seccomp filter)
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0.0, timeout) * 1000))   # retried with the rest of the time on EINTR
    finally:
        os.close(pidfd)


def run_step(argv, cwd, timeout, env, *, address_space=True, nproc=None) -> Step:
    out_path, err_path = os.path.join(cwd, ".stdout"), os.path.join(cwd, ".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                close_fds=True, preexec_fn=limits_preexec(address_space, 2 * timeout + 5, nproc))
    timed_out = not wait_exit(proc, timeout)
    kill_group(proc.pid)   # also reaps background children left in the program's process group
    proc.wait()
    rc = proc.returncode
    return Step(rc, timed_out, -rc if rc < 0 else 0, os.path.getsize(out_path),
                read_head(err_path), read_head(out_path))


def classify(step: Step, compile_step: bool = False):
    """(verdict, reason) of a failed step; None when the step succeeded."""
    text = step.stderr_text or step.stdout_text
    if step.timed_out:
        return "timeout", "timed out" + (" while compiling" if compile_step else "")
    if step.signal_no == signal.SIGXCPU:
        return "timeout", "CPU time limit exceeded"
    if step.signal_no == signal.SIGXFSZ:
        return "fail", "output limit exceeded"
    if step.rc != 0 and compile_step:
        return "compile_error", first_lines(text) or f"exit status {step.rc}"
    if any(m in text for m in ("std::bad_alloc", "OutOfMemoryError", "MemoryError", "memory allocation of",
                               "heap out of memory", "out of memory", "Cannot allocate memory")):
        return "oom", first_lines(text) or "out of memory"
    if step.signal_no == signal.SIGKILL:
        return "oom", "killed (memory limit)"
    if step.rc != 0:
        return "fail", first_lines(text) or f"exit status {step.rc}"
    return None


def base_env(workdir: str) -> dict:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
