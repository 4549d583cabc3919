"""Grader-style baseline for bench/eval_throughput.py: the reference harness's execution model.

Same protocol as mft_hpc/evaluate/worker.py (manifest on stdin, ``<nonce> <json>`` lines out),
but executed the way the grader does it: one fresh process per program (Python: a new
interpreter importing numpy each time), 4 workers (Java and Rust: 1), Go with `go test` on a cold
build cache, Rust through cargo (`cargo check` + `cargo test` per program in one shared project).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

PY_RUNNER = r"""
import contextlib, io, signal, sys
import numpy
src = sys.stdin.read()
class Timeout(Exception): pass
def alarm(s, f): raise Timeout()
signal.signal(signal.SIGALRM, alarm)
signal.setitimer(signal.ITIMER_REAL, float(sys.argv[1]))
try:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(src, {})
    print("passed")
except Timeout:
    print("timed out")
except BaseException as e:
    print("failed: %s" % e)
"""
CARGO_TOML = """[package]
name = "rust"
version = "0.1.0"
edition = "2021"
[dependencies]
rand = { path = "/opt/mft-hpc/rand_compat" }
regex = "1"
md5 = "0.7.0"
"""


def run(argv, cwd, timeout, env):
    try:
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), False
    except subprocess.TimeoutExpired:
        return -9, "", "", True


class Grader:
    def __init__(self, manifest, scratch):
        self.nonce, self.jobs, self.scratch = manifest["nonce"], manifest["jobs"], scratch
        self.lock, self.java_lock, self.rust_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self.gocache = os.path.join(scratch, "gocache-cold")
        self.rust_dir = os.path.join(scratch, "rust")
        os.makedirs(os.path.join(self.rust_dir, "src", "bin"), exist_ok=True)
        os.makedirs(os.path.join(self.rust_dir, ".cargo"), exist_ok=True)
        shutil.copy("/opt/mft-hpc/rust/.cargo/config.toml", os.path.join(self.rust_dir, ".cargo", "config.toml"))
        with open(os.path.join(self.rust_dir, "Cargo.toml"), "w") as f:
            f.write(CARGO_TOML)

    def env(self, cwd):
        return {"PATH": "/usr/bin:/bin", "HOME": cwd, "LANG": "C.UTF-8"}

    def one(self, job):
        cwd = os.path.join(self.scratch, f"g{job['id']}")
        os.makedirs(cwd)
        lang, src, t = job["lang"], job["source"], job["timeout"]
        env = self.env(cwd)
        verdict = "fail"
        if lang in ("python", "mbpp"):
            p = subprocess.Popen(["python3", "-c", PY_RUNNER, str(t)], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                out, _ = p.communicate(src.encode(), timeout=t + 1)
                status = out.decode().strip()
            except subprocess.TimeoutExpired:
                p.kill(); p.wait(); status = "timed out"
            verdict = "pass" if status == "passed" else "timeout" if status == "timed out" else "fail"
        elif lang == "js":
            open(os.path.join(cwd, "test.js"), "w").write(src)
            rc, out, err, to = run(["node", "test.js"], cwd, t, env)
            verdict = "timeout" if to else "pass" if not out and not err else "fail"
        elif lang == "cpp":
            open(os.path.join(cwd, "test.cpp"), "w").write(src)
            rc, _, _, to = run(["g++", "-std=c++11", "test.cpp", "-lcrypto", "-lssl"], cwd, 60, env)
            if to or rc:
                verdict = "timeout" if to else "compile_error"
            else:
                rc, _, _, to = run(["./a.out"], cwd, 60, env)
                verdict = "timeout" if to else "pass" if rc == 0 else "fail"
        elif lang == "java":
            open(os.path.join(cwd, "Main.java"), "w").write(src)
            with self.java_lock:
                rc, _, _, to = run(["javac", "Main.java"], cwd, 60, env)
                if to or rc:
                    verdict = "timeout" if to else "compile_error"
                else:
                    rc, _, _, to = run(["java", "-cp", ".", "Main"], cwd, t, env)
                    verdict = "timeout" if to else "pass" if rc == 0 else "fail"
        elif lang == "go":
            open(os.path.join(cwd, "main_test.go"), "w").write(src)
            env.update(GO111MODULE="off", GOPATH="/usr/share/gocode", GOCACHE=self.gocache, GOFLAGS="")
            rc, out, err, to = run(["go", "test", f"-timeout={int(t)}s", "main_test.go"], cwd, t, env)
            verdict = "timeout" if to else "pass" if rc == 0 else ("compile_error" if "[build failed]" in out + err
                                                                      or "[setup failed]" in out + err else "fail")
        elif lang == "rust":
            with self.rust_lock:
                open(os.path.join(self.rust_dir, "src", "bin", "test.rs"), "w").write(src)
                env.update(CARGO_HOME=os.path.join(self.rust_dir, ".cargo-home"))
                rc, _, _, to = run(["cargo", "check", "--offline", "--bin", "test"], self.rust_dir, 300, env)
                if to or rc:
                    verdict = "timeout" if to else "compile_error"
                else:
                    rc, out, err, to = run(["cargo", "test", "--offline", "--bin", "test"], self.rust_dir, t, env)
                    verdict = "timeout" if to else "pass" if rc == 0 else ("compile_error" if "could not compile" in err
                                                                              else "fail")
        shutil.rmtree(cwd, ignore_errors=True)
        return verdict

    def run_one(self, job):
        start = time.monotonic()
        try:
            verdict = self.one(job)
        except Exception:
            verdict = "error"
        with self.lock:
            print(self.nonce, json.dumps({"id": job["id"], "verdict": verdict, "reason": "",
                                          "seconds": round(time.monotonic() - start, 3)}), flush=True)

    def run(self):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.run_one, self.jobs))


if __name__ == "__main__":
    scratch = sys.argv[sys.argv.index("--scratch") + 1]
    if "--probe" in sys.argv:
        sys.exit(0)
    Grader(json.load(sys.stdin), scratch).run()
