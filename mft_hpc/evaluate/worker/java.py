"""Java: compiled by one warm javac shared by the batch (JavacServer.java), run with a bounded heap."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading

from .runner import Runner
from .steps import Step, base_env, classify, run_step
from .toolchain import PREBUILT_DIR


JAVA_FLAGS = ["-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xmx2g"]  # bounded heap: a memory bomb ends in OutOfMemoryError
# the JVM under javac, lone or as the server: C1 only. A batch's few hundred compiles never pay back
# C2's warm-up: half the server's CPU at 8 programs and at 164 (the compiled classes are the same)
COMPILER_JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData"]
JAVAC_FLAGS = [f"-J{flag}" for flag in COMPILER_JVM_FLAGS]
SERVER_FLAGS = [*COMPILER_JVM_FLAGS, "-Xmx1g"]


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
        self.proc = subprocess.Popen(["java", *SERVER_FLAGS, "-cp", classes, "JavacServer", str(self.threads)],
                                     cwd=classes, env=base_env(classes),
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


class JavaRunner(Runner):
    def __init__(self, batch):
        super().__init__(batch)
        self.javac = JavacServer(batch.scratch, batch.workers)

    def run(self, job, workdir):
        return run_java(job, workdir, self.tool, self.javac)

    def close(self):
        self.javac.close()
