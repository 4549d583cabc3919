"""Hostile programs in every language end with a non-pass verdict, leave the host unchanged, and
the evaluator goes on with the next program (the real container, real limits)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from mft_hpc.evaluate.runtime import NOBODY, SANDBOX_UID
from .conftest import judge_cold_then_warm
from .hostile import ATTACKS, SOURCES

pytestmark = [pytest.mark.container, pytest.mark.slow]

SHORT_TIMEOUT = 4.0   # the grader's limits are 3-60 s; the mechanism is the same, the test is faster


def _listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
    threading.Thread(target=serve, daemon=True).start()
    return server, accepted


def _sandbox_processes(uid: int) -> list[str]:
    """Processes of the payload's host uid, after giving a sandbox's teardown a few seconds."""
    for _ in range(20):
        out = subprocess.run(["ps", "-o", "pid=,comm=", "-u", str(uid)], capture_output=True, text=True)
        if not out.stdout.split():
            break
        time.sleep(0.5)
    return out.stdout.split()


def test_hostile_programs(sandbox_runtime, tmp_path):
    server, accepted = _listener()
    port = server.getsockname()[1]
    host_file = tmp_path / "pwned"
    secret = Path.home() / f".mft-hpc-secret-{uuid.uuid4().hex}"
    secret.write_text("secret")
    try:
        jobs, names = [], []
        for lang, make in SOURCES.items():
            attacks = ATTACKS if lang != "mbpp" else ("infinite_loop", "kill_parent")
            sources = make(port, str(host_file), str(secret))
            for attack in attacks:
                jobs.append({"id": len(jobs), "lang": lang, "source": sources[attack], "timeout": SHORT_TIMEOUT,
                             "compile_timeout": 120.0, "task": "hostile", "index": len(jobs)})
                names.append((lang, attack))
        # a well-behaved program after them: the evaluator must go on and still pass it
        jobs.append({"id": len(jobs), "lang": "python", "source": "assert 1 + 1 == 2\n", "timeout": 10.0,
                     "compile_timeout": 0.0, "task": "hostile", "index": len(jobs)})
        names.append(("python", "benign"))
        # through the verdict cache: judged once (each attack twice in the batch, deduplicated), then
        # reused with identical verdicts without any sandbox
        results = judge_cold_then_warm(sandbox_runtime, jobs, tmp_path / "cache")
    finally:
        secret.unlink()
        server.close()
    verdicts = {names[i]: (r["verdict"], r["reason"][:120]) for i, r in results.items()}
    assert len(results) == len(jobs)
    assert verdicts.pop(("python", "benign"))[0] == "pass"
    for name, verdict in sorted(verdicts.items()):
        print(name, verdict)
    passed = {name: v for name, v in verdicts.items() if v[0] == "pass"}
    assert passed == {}
    # every attack compiled and ran: a non-pass from a typo in the attack would prove nothing
    assert {name: v for name, v in verdicts.items() if v[0] == "compile_error"} == {}
    assert all(verdicts[(lang, "infinite_loop")][0] == "timeout" for lang in SOURCES)
    assert accepted == []                       # no connection reached the host's port
    assert not host_file.exists()
    assert not any(Path("/etc").glob("pwned*"))
    # no fork-bomb survivor on the host (the host uid the payload ran as)
    if os.geteuid() == 0:
        assert _sandbox_processes(SANDBOX_UID if sandbox_runtime.name == "apptainer" else NOBODY) == []
    # the kill-the-parent programs were isolated and reported as such, not silently dropped
    assert all(verdicts[(lang, "kill_parent")][0] in ("error", "fail") for lang in SOURCES)
