"""Java: compiled by one warm javac shared by the batch (JavacServer.java), run with a bounded heap."""

from __future__ import annotations

import contextlib
import os
import shutil
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
# the server's classes as a jar and an archive of every class it loads to compile a program
# (class-data sharing, dumped at image build): its start plus a first compile costs 0.69 CPU s
# instead of 1.03, paid once per batch. The JVM only archives classes from jars, not folders.
SERVER_JAR, SERVER_ARCHIVE = "javac-server.jar", "javac-server.jsa"    # in the prebuilt folder
# the JVM logs warnings (an archive it cannot use, then runs without it) to stdout: the protocol's channel
SERVER_LOG_FLAGS = ["-Xlog:disable", "-Xlog:all=warning:stderr"]


def server_command(classpath: str, threads: int, archive: str | None = None) -> list[str]:
    """The warm javac server's command line; ``archive``: its class archive, if there is one."""
    return ["java", *SERVER_FLAGS, *SERVER_LOG_FLAGS, *([f"-XX:SharedArchiveFile={archive}"] if archive else []),
            "-cp", classpath, "JavacServer", str(threads)]
# what the archive is dumped from: a program shaped like the tasks' (java.util, streams, lambdas, generics)
ARCHIVE_SAMPLE = """import java.util.*;
import java.lang.*;
import java.util.stream.*;
import java.security.*;
import java.math.BigInteger;

class Solution {
    public List<Integer> twice(List<Integer> xs) {
        return xs.stream().map(x -> x * 2).collect(Collectors.toList());
    }
    public String md5(String text) throws NoSuchAlgorithmException {
        byte[] digest = MessageDigest.getInstance("MD5").digest(text.getBytes());
        return String.format("%032x", new BigInteger(1, digest));
    }
}

public class Main {
    public static void main(String[] args) throws Exception {
        Solution s = new Solution();
        Map<String, Integer> counts = new HashMap<>();
        counts.put(s.md5("a"), 1);
        List<Boolean> correct = Arrays.asList(s.twice(Arrays.asList(1, 2)).equals(Arrays.asList(2, 4)), counts.size() == 1);
        if (correct.contains(false)) {
            throw new AssertionError();
        }
    }
}
"""


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
        classes, archive = os.path.join(PREBUILT_DIR, "javac-server"), None
        jar = os.path.join(PREBUILT_DIR, SERVER_JAR)
        if os.path.isfile(jar) and os.path.isfile(os.path.join(PREBUILT_DIR, SERVER_ARCHIVE)):
            classes, archive = jar, os.path.join(PREBUILT_DIR, SERVER_ARCHIVE)
        elif not os.path.isfile(os.path.join(classes, "JavacServer.class")):
            classes = os.path.join(self.scratch, "javac-server")
            if not self.compile_classes(classes, self.SOURCE):
                self.broken = True
                return
        self.proc = subprocess.Popen(server_command(classes, self.threads, archive),
                                     cwd=self.scratch, env=base_env(self.scratch),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, encoding="utf-8", bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()

    @staticmethod
    def compile_classes(classes: str, source: str) -> bool:
        os.makedirs(classes, exist_ok=True)
        step = run_step(["javac", *JAVAC_FLAGS, "-d", classes, source], classes, 120.0, base_env(classes),
                        address_space=False)
        return step.rc == 0

    @classmethod
    def prebuild(cls, folder: str) -> bool:
        """At image build: folder/javac-server (the classes), its jar and the jar's class archive."""
        classes = os.path.join(folder, "javac-server")
        if not cls.compile_classes(classes, cls.SOURCE):
            return False
        jar, archive = os.path.join(folder, SERVER_JAR), os.path.join(folder, SERVER_ARCHIVE)
        sample = os.path.join(folder, "archive-sample")
        os.makedirs(sample, exist_ok=True)
        with open(os.path.join(sample, "Main.java"), "w", encoding="utf-8") as handle:
            handle.write(ARCHIVE_SAMPLE)
        try:
            if subprocess.run(["jar", "cf", jar, "-C", classes, "JavacServer.class"], cwd=folder).returncode != 0:
                return False
            dump = server_command(jar, 1)   # the flags the archive is used with
            dump.insert(1, f"-XX:ArchiveClassesAtExit={archive}")
            server = subprocess.run(dump, input=f"0\t{sample}\n", cwd=folder, text=True, stdout=subprocess.PIPE,
                                    timeout=600)
        finally:
            shutil.rmtree(sample, ignore_errors=True)
        return server.returncode == 0 and server.stdout.startswith("0\t0\t") and os.path.isfile(archive)

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
