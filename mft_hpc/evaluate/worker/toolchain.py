"""Where the sandbox keeps its toolchains' prebuilt parts, and how many compiles may run at once."""

from __future__ import annotations

import os
import shutil
import threading

# built into the image by `--prebuild` (containers/worker.def): the C++ prelude's PCH and
# the javac server's classes, so a batch does not start with a serial compile of either
PREBUILT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prebuilt")
LAYER_GOCACHE = "/opt/mft-hpc/gocache"   # the toolchain layer's warm Go cache; prebuild adds vet facts to a copy
GOPATH = "/usr/share/gocode"


class Toolchain:
    """Where the image keeps its pre-built Rust crates and its warm Go cache."""

    def __init__(self, spec: dict):
        self.rust_deps = spec.get("rust_deps", "/opt/mft-hpc/rust/target/debug/deps")
        self.rust_externs = spec.get("rust_externs", "/opt/mft-hpc/rust/externs.json")
        prebuilt_gocache = os.path.join(PREBUILT_DIR, "gocache")
        self.gocache_seed = spec.get("gocache") or (prebuilt_gocache if os.path.isdir(prebuilt_gocache) else LAYER_GOCACHE)
        self.gopath = spec.get("gopath", GOPATH)
        self.nproc = spec.get("nproc")  # RLIMIT_NPROC, only where the runtime has no pids cgroup
        # gold links in a fraction of bfd's time (C++ ~3x, Rust ~2x); the linked program is the same
        self.gold = shutil.which("ld.gold") is not None
        # compile steps are CPU-bound: at most one per core; runs (often waiting on start-up) may overlap
        self.compile_slots = threading.BoundedSemaphore(int(spec.get("cores", 1)))
