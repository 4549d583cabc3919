"""The worker's command line: a batch from the manifest on stdin, or --probe, or --prebuild."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys

from .batch import Batch
from .cpp import compile_pch
from .go import prebuild_go
from .java import JavacServer
from .sources import WORKER_DIR, source_files
from .toolchain import Toolchain

PR_SET_DUMPABLE = 4
FINGERPRINT_TOOLS = ("python3", "g++", "javac", "java", "go", "rustc", "node", "ld.gold")


def fingerprint() -> str:
    """What in this sandbox, besides a program, decides its verdict: the worker's own files, and
    each toolchain binary and prebuilt-crate set by path, size and mtime (a package upgrade or a
    rebuilt crate changes them). The host keys cached verdicts with it; stat only, no process runs."""
    import hashlib   # here, not at the top: loading OpenSSL is a sixth of a batch's start-up, and only the probe hashes

    digest = hashlib.sha256(sys.version.encode())
    for name in source_files():
        with open(os.path.join(WORKER_DIR, name), "rb") as handle:
            digest.update(name.encode() + b"\0" + handle.read())
    tool = Toolchain({})
    paths = [shutil.which(name) for name in FINGERPRINT_TOOLS]
    deps = tool.rust_deps
    paths += [os.path.join(deps, name) for name in sorted(os.listdir(deps))] if os.path.isdir(deps) else []
    for path in paths + [tool.rust_externs]:
        if path and os.path.exists(path):
            real = os.path.realpath(path)
            stat = os.stat(real)
            digest.update(f"{real}:{stat.st_size}:{int(stat.st_mtime)}\n".encode())
    return digest.hexdigest()


def probe() -> dict:
    """Facts about the sandbox the host checks before trusting it with programs."""
    with open("/proc/net/dev") as handle:
        interfaces = sorted(line.split(":")[0].strip() for line in handle.readlines()[2:])
    writable_root = True
    try:
        with open("/.mft-hpc-probe", "w"):
            pass
        os.unlink("/.mft-hpc-probe")
    except OSError:
        writable_root = False
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    return {"uid": os.getuid(), "interfaces": interfaces, "writable_root": writable_root,
            "cap_eff": status.get("CapEff", "").strip(), "no_new_privs": status.get("NoNewPrivs", "").strip(),
            "python": sys.version.split()[0], "fingerprint": fingerprint()}


def prebuild(folder: str) -> int:
    """At image build: the PCH of folder/prelude.h, the javac server (classes, jar, class archive) and the Go parts
    (gotests, go test's vet checks, a Go cache with their facts; see PREBUILT_DIR)."""
    ok = compile_pch(os.path.join(folder, "prelude.h"))
    ok = JavacServer.prebuild(folder) and ok
    ok = prebuild_go(folder) and ok
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    if "--probe" in argv:
        print(json.dumps(probe()))
        return 0
    if "--prebuild" in argv:
        return prebuild(argv[argv.index("--prebuild") + 1])
    scratch = argv[argv.index("--scratch") + 1] if "--scratch" in argv else os.getcwd()
    manifest = json.load(sys.stdin)
    sys.stdin.close()
    with contextlib.suppress(OSError, AttributeError):
        # non-dumpable: programs (same uid) cannot open /proc/<worker>/fd or ptrace the worker
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if any(job["lang"] in ("python", "mbpp") for job in manifest["jobs"]):
        # pre-imported as in the grader (its parent process had numpy loaded), before any guard
        for name in ("numpy", "math", "re", "copy", "datetime", "itertools", "collections", "heapq",
                     "statistics", "functools", "hashlib", "string", "typing"):
            __import__(name)
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)   # nothing but result lines reaches the host's pipe
    Batch(manifest, scratch, out).run()
    return 0
