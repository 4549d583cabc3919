"""Is a local-executor job still running? A pid alone is not an identity (pids are reused), so an
element records the host and the process start time (``/proc/<pid>/stat`` field 22, clock ticks
since boot) when it is submitted; the process is that job only while both still match. A local job that
raised says why in one line (``exception_line``)."""

from __future__ import annotations

import socket
from pathlib import Path

from mft_hpc.rundir.state import Element, LocalProcess, last_line


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # the command name (field 2) is parenthesised and may hold spaces: split after its last ')'
    return text[text.rindex(")") + 2:].split()


def local_process(pid: int | str) -> LocalProcess | None:
    """This host's identity of process ``pid``; None when it does not exist (or is not a pid)."""
    try:
        fields = _stat_fields(int(pid))
    except ValueError:
        return None
    if fields is None:
        return None
    return LocalProcess(host=socket.gethostname(), start=int(fields[19]))


def process_gone(element: Element) -> bool | None:
    """True when the element's recorded process no longer runs; None when this host cannot tell
    (nothing recorded, or the job ran on another host)."""
    if element.process_start is None or not element.slurm_job_id or element.process_host != socket.gethostname():
        return None
    try:
        fields = _stat_fields(int(element.slurm_job_id))
    except ValueError:
        return None
    if fields is None or fields[0] in ("Z", "X"):  # gone, or a zombie nobody reaps
        return True
    return int(fields[19]) != element.process_start


def exception_line(exc: Exception) -> str:
    """The line that says what went wrong: submitit wraps a job's traceback between dashed lines and
    ends with where the logs are, so the last line of its message is a path."""
    lines = str(exc).splitlines()
    fences = [i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"-"}]
    if len(fences) >= 2:
        return last_line("\n".join(lines[fences[0] + 1:fences[1]])) or type(exc).__name__
    return last_line(str(exc)) or type(exc).__name__
