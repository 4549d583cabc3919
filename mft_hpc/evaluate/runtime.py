"""Sandbox runtimes behind one interface: apptainer/singularity, bwrap, host (unsafe).

A runtime turns "start the worker on this scratch dir" into an argv. The sandboxed runtimes run
the worker folder the image holds (IMAGE_WORKER_DIR, put there by containers/worker.def) as
``python3 -I <folder>``; only the host runtime runs the package's own copy. It is probed once (the worker's ``--probe`` run inside the
sandbox); a missing isolation feature raises UserError — there is never a silent downgrade to
weaker isolation. A probe that passed is remembered per image file (probe_cache_dir()), keyed by
everything its answer depends on, so later evaluations with the same image, runtime binary, command
line and limits start no sandbox just to probe it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mft_hpc.errors import UserError
from mft_hpc.evaluate.cache import image_identity
from mft_hpc.rundir import atomic_write_json

log = logging.getLogger(__name__)

WORKER_DIR = Path(__file__).resolve().parent / "worker"   # the package's worker folder: host runtime, image builds
IMAGE_WORKER_DIR = "/opt/mft-hpc/worker"             # the worker inside the image (layer 2)
BOUND_WORKER_DIR = "/worker"                         # where an explicit worker_dir is bound instead
SANDBOX_UID = 1001                                   # payload uid when apptainer runs as root
NOBODY = 65534                                       # host uid bwrap runs as when started by root
MEMORY_PER_WORKER_MB = 3072
PIDS_PER_WORKER = 256
CONTAINER_PATH = "/usr/local/bin:/usr/bin:/bin"


PROBE_CACHE_ENV = "MFT_HPC_PROBE_CACHE"
PROBE_FACTS = ("uid", "interfaces", "writable_root", "cap_eff", "no_new_privs", "python", "fingerprint")


def probe_cache_dir() -> Path:
    """Where passed probes are remembered: $MFT_HPC_PROBE_CACHE, else the user's cache directory."""
    if os.environ.get(PROBE_CACHE_ENV):
        return Path(os.environ[PROBE_CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mft-hpc" / "probes"


def _file_state(path: str | Path) -> str:
    real = Path(path).resolve()
    stat = real.stat()
    return f"{real}:{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"


def scratch_base() -> Path:
    """Where batches get their private scratch dirs (tmpfs when available); not created here."""
    return Path(os.environ.get("MFT_HPC_SCRATCH", "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()))


def scratch_root() -> Path:
    """scratch_base(), created if missing."""
    root = scratch_base()
    root.mkdir(parents=True, exist_ok=True)
    return root


def find_apptainer(name: str) -> str:
    candidates = [os.environ.get("APPTAINER", ""), shutil.which(name) or "", f"/opt/apptainer/bin/{name}"]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise UserError(f"runtime {name}: no {name} binary found (PATH, $APPTAINER, /opt/apptainer/bin); "
                    "install it with containers/install_apptainer.sh or choose --runtime bwrap")


def cgroup_limits_usable() -> bool:
    """Root on a cgroup v1 host (memory + pids controllers) or a v2 unified host."""
    if os.geteuid() != 0:
        return False
    v1 = Path("/sys/fs/cgroup/memory").is_dir() and Path("/sys/fs/cgroup/pids").is_dir()
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").is_file()
    return v1 or v2


@dataclass
class Runtime:
    """Base: ``argv(scratch, workers)`` starts the worker; ``probe()`` checks the isolation."""

    name: str
    image: str | None = None
    facts: dict | None = field(default=None, repr=False)
    # None: the image's own worker. A directory: bound read-only at /worker and run from there
    # instead (only for explicit callers such as bench/eval_throughput.py's grader-style baseline,
    # which names its script in worker_script; None runs the folder itself).
    worker_dir: Path | None = None
    worker_script: str | None = None

    isolated = True

    def argv(self, scratch: Path, workers: int, worker_args: list[str]) -> list[str]:
        raise NotImplementedError

    def worker_binds(self) -> list[tuple[str, str]]:
        """(host dir, sandbox dir) to bind read-only for the worker: none for the image's own."""
        return [(str(self.worker_dir), BOUND_WORKER_DIR)] if self.worker_dir is not None else []

    def worker_command(self, worker_args: list[str]) -> list[str]:
        """The worker's command line inside the sandbox."""
        folder = IMAGE_WORKER_DIR if self.worker_dir is None else BOUND_WORKER_DIR
        return ["python3", "-I", self._entry(folder), "--scratch", "/scratch", *worker_args]

    def _entry(self, folder: str | Path) -> str:
        """What python runs: the worker folder, or the script named in ``worker_script`` inside it."""
        return f"{folder}/{self.worker_script}" if self.worker_script else str(folder)

    def prepare_scratch(self, scratch: Path) -> None:
        scratch.mkdir(parents=True, exist_ok=True)

    def popen_kwargs(self) -> dict:
        return {}

    def toolchain(self) -> dict:
        return {}

    def limits(self) -> dict:
        """The sandbox-wide limits a verdict can depend on (part of the verdict cache key)."""
        return {"root": os.geteuid() == 0, "toolchain": self.toolchain()}

    def probe_key(self) -> str | None:
        """What the probe's answer depends on, hashed: the command line that starts the sandbox (runtime
        binary, image path, uid, memory and pids limits, binds), the binary's and the image file's
        identity (device, inode, size, mtime; for the image also its first and last MiB), the
        limits, this uid and the kernel. None where that cannot be pinned down, so the probe runs
        every time: an image directory (any file in it may change in place), a bound worker folder,
        no image."""
        if self.worker_dir is not None or not self.image or not Path(self.image).is_file():
            return None
        argv = self.argv(Path("/scratch"), 1, ["--probe"])
        parts = {"runtime": self.name, "argv": argv, "binary": _file_state(argv[0]),
                 "popen": sorted((k, repr(v)) for k, v in self.popen_kwargs().items()),
                 "image": [_file_state(self.image), image_identity(self.image)], "limits": self.limits(),
                 "euid": os.geteuid(), "kernel": os.uname().release}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def probe(self) -> dict:
        """Run the worker's probe once; raise UserError when an isolation feature is missing.

        A probe that passed is remembered under probe_key() and reused (its facts are checked again).
        """
        if self.facts is not None:
            return self.facts
        key = self.probe_key()
        record = probe_cache_dir() / f"{key}.json" if key else None
        facts = self._remembered(record, key) if record else None
        fresh = facts is None
        if fresh:
            facts = self._run_probe()
        self._check_isolation(facts)
        if record is not None and fresh:
            try:
                atomic_write_json(record, {"key": key, "facts": facts})
            except OSError as err:   # an unwritable cache only costs the next evaluation a probe
                log.debug("probe of %s not remembered: %s", self.image, err)
        self.facts = facts
        return facts

    @staticmethod
    def _remembered(record: Path, key: str) -> dict | None:
        """The facts of a remembered probe; None when there is none, and (warning) when it is unreadable."""
        try:
            data = json.loads(record.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            log.warning("%s: unreadable remembered probe (%s); probing the sandbox again", record, err)
            return None
        facts = data.get("facts") if isinstance(data, dict) else None
        if not isinstance(facts, dict) or data.get("key") != key or any(name not in facts for name in PROBE_FACTS):
            log.warning("%s: not a probe record for this sandbox; probing the sandbox again", record)
            return None
        return facts

    def _run_probe(self) -> dict:
        with tempfile.TemporaryDirectory(prefix="mft-hpc-probe.", dir=scratch_root()) as tmp:
            scratch = Path(tmp) / "scratch"
            self.prepare_scratch(scratch)
            proc = subprocess.run(self.argv(scratch, 1, ["--probe"]), capture_output=True, text=True,
                                  timeout=120, **self.popen_kwargs())
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            if self.worker_dir is None and IMAGE_WORKER_DIR in last:
                raise UserError(f"runtime {self.name}: image {self.image} has no evaluation worker at "
                                f"{IMAGE_WORKER_DIR} (not built by this mft-hpc, or before the worker folder went "
                                "into the image); build one with `mft-hpc container build` "
                                "(--sandbox for bwrap) and use the path it prints")
            raise UserError(f"runtime {self.name}: the sandbox does not start ({self.image}): {last}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def _check_isolation(self, facts: dict) -> None:
        if self.isolated:
            problems = []
            if facts["interfaces"] != ["lo"]:
                problems.append(f"network not isolated (interfaces {facts['interfaces']})")
            if facts["uid"] == 0 and facts["cap_eff"].strip("0"):
                problems.append("payload runs with capabilities")
            if facts["writable_root"]:
                problems.append("image root is writable")
            if problems:
                raise UserError(f"runtime {self.name}: missing isolation: {'; '.join(problems)}")


@dataclass
class ApptainerRuntime(Runtime):
    """`apptainer exec --containall --no-home --net --network none`, image read-only, private scratch.

    As root: payload dropped to uid SANDBOX_UID without privileges, cgroup memory and pids limits.
    As a user: user namespace; rlimits inside (the worker sets RLIMIT_AS/NPROC per program).
    """

    binary: str = ""

    def __post_init__(self):
        self.binary = self.binary or find_apptainer(self.name)
        if not self.image or not Path(self.image).exists():
            raise UserError(f"runtime {self.name}: image {self.image} not found; build it with `mft-hpc container build`")

    def argv(self, scratch, workers, worker_args):
        cmd = [self.binary, "-q", "exec", "--containall", "--cleanenv", "--no-home", "--no-mount", "bind-paths",
               "--net", "--network", "none", "--uts", "--hostname", "sandbox",
               "--pwd", "/scratch", "--bind", f"{scratch}:/scratch:rw",
               *(a for host, inside in self.worker_binds() for a in ("--bind", f"{host}:{inside}:ro")),
               "--env", f"PATH={CONTAINER_PATH}"]
        if os.geteuid() == 0:
            cmd += ["--security", f"uid:{SANDBOX_UID},gid:{SANDBOX_UID}", "--no-privs"]
            if cgroup_limits_usable():
                cmd += ["--memory", f"{MEMORY_PER_WORKER_MB * workers + 1024}M",
                        "--pids-limit", str(PIDS_PER_WORKER * workers + 64)]
        return cmd + [str(self.image), *self.worker_command(worker_args)]

    def prepare_scratch(self, scratch):
        scratch.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(scratch, SANDBOX_UID, SANDBOX_UID)

    def limits(self):
        cgroups = os.geteuid() == 0 and cgroup_limits_usable()
        return {**super().limits(), "memory_mb_per_worker": MEMORY_PER_WORKER_MB if cgroups else None,
                "pids_per_worker": PIDS_PER_WORKER if cgroups else None}

    def toolchain(self):
        if os.geteuid() == 0 and not cgroup_limits_usable():
            return {"nproc": PIDS_PER_WORKER}
        return {}


@dataclass
class BwrapRuntime(Runtime):
    """bubblewrap over the image's root filesystem (a directory): same policy as apptainer.

    Namespaces: user (uid 65534, no capabilities), pid, net (only lo), ipc, uts, cgroup; image
    root read-only, private /tmp, scratch bound read-write. Limits: rlimits set by the worker
    (RLIMIT_NPROC counts every process of the host uid bwrap runs as: nobody when started by root).
    """

    binary: str = ""

    def __post_init__(self):
        self.binary = self.binary or shutil.which("bwrap") or ""
        if not self.binary:
            raise UserError("runtime bwrap: bwrap not found (apt-get install bubblewrap)")
        if not self.image or not Path(self.image).is_dir():
            raise UserError(f"runtime bwrap: needs an unpacked image directory, got {self.image} "
                            "(`mft-hpc container build --sandbox`)")

    def argv(self, scratch, workers, worker_args):
        return [self.binary, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
                "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--hostname", "sandbox",
                "--ro-bind", str(self.image), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--bind", str(scratch), "/scratch",
                *(a for host, inside in self.worker_binds() for a in ("--ro-bind", host, inside)),
                "--chdir", "/scratch", "--clearenv", "--setenv", "PATH", CONTAINER_PATH,
                "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", "/scratch",
                *self.worker_command(worker_args)]

    def prepare_scratch(self, scratch):
        scratch.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(scratch.parent, 0o711)   # a private temp dir: nobody may traverse, not list
            os.chown(scratch, NOBODY, NOBODY)

    def popen_kwargs(self):
        # as root, bwrap runs as nobody: the sandbox uid then maps to a real unprivileged uid, for
        # which RLIMIT_NPROC is enforced (root's processes are exempt, so a fork bomb would be free)
        if os.geteuid() == 0:
            return {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        return {}

    def toolchain(self):
        return {"nproc": PIDS_PER_WORKER * 4}


@dataclass
class HostRuntime(Runtime):
    """No isolation at all: only with an explicit --unsafe-host."""

    isolated = False

    def argv(self, scratch, workers, worker_args):
        return [sys.executable, "-I", self._entry(self.worker_dir or WORKER_DIR), "--scratch", str(scratch),
                *worker_args]

    def toolchain(self):
        # the host's own toolchains: prebuilt Rust crates and a Go cache only where configured
        names = {"rust_deps": "MFT_HPC_RUST_DEPS", "rust_externs": "MFT_HPC_RUST_EXTERNS", "gocache": "MFT_HPC_GOCACHE"}
        return {key: os.environ[env] for key, env in names.items() if os.environ.get(env)}


def make_runtime(name: str, image: str | None, unsafe_host: bool = False) -> Runtime:
    if name in ("apptainer", "singularity"):
        return ApptainerRuntime(name=name, image=image)
    if name == "bwrap":
        return BwrapRuntime(name=name, image=image)
    if name == "host":
        if not unsafe_host:
            raise UserError("runtime host runs generated code WITHOUT any isolation; "
                            "pass --unsafe-host (evaluate.unsafe_host: true) to allow it")
        log.warning("runtime host: generated programs run on this machine without a sandbox")
        return HostRuntime(name=name, image=None)
    raise UserError(f"unknown runtime {name!r}; expected apptainer, singularity, bwrap or host")
