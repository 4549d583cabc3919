"""Go: the grader's `go test main_test.go`, built against a warm cache, up to GO_GROUP programs per `go test`."""

from __future__ import annotations

import os
import shutil
import time

from .runner import Runner, run_compiled
from .steps import base_env, classify, read_head, run_step


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


GO_TEST_TIMED_OUT = "panic: test timed out after"


def as_timeout(verdict: tuple[str, str], workdir: str) -> tuple[str, str]:
    """A test binary stopped by its own -test.timeout alarm timed out: the alarm and our limit are the
    same length and race (ours usually wins; under load the alarm can), the verdict must not depend on it."""
    if verdict[0] == "fail" and any(GO_TEST_TIMED_OUT in read_head(os.path.join(workdir, name))
                                    for name in (".stderr", ".stdout")):
        return "timeout", "timed out"
    return verdict


def run_go(job, workdir, tool, gocache):
    # the grader's `go test main_test.go`, split in build (`go test -c`: the same vet checks) and run
    env = go_env(workdir, tool, gocache)
    compile_argv = ["go", "test", "-c", GO_LDFLAGS, "-o", "t.test", "main_test.go"]
    return as_timeout(run_compiled(job, workdir, tool, "main_test.go", compile_argv, go_test_argv(job), env,
                                   compile_env=go_compile_env(env)), workdir)


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


class GoRunner(Runner):
    group_size = GO_GROUP

    def __init__(self, batch):
        super().__init__(batch)
        self.gocache = os.path.join(batch.scratch, "gocache")
        if not os.path.isdir(self.gocache):
            shutil.copytree(self.tool.gocache_seed, self.gocache, symlinks=True)

    def run(self, job, workdir):
        return run_go(job, workdir, self.tool, self.gocache)

    def run_built(self, job, workdir):
        step = run_step(go_test_argv(job), workdir, job["timeout"], go_env(workdir, self.tool, self.gocache),
                        nproc=self.tool.nproc)
        return as_timeout(classify(step) or ("pass", ""), workdir)

    def run_group(self, jobs: list[dict]) -> None:
        """Build a group of Go programs with one `go test`, then run each (see build_go_group)."""
        batch = self.batch
        group_dir = os.path.join(batch.scratch, f"g{jobs[0]['id']}")
        start = time.monotonic()
        workdirs = {}
        try:
            os.makedirs(group_dir)
            for job in jobs:
                batch.emit({"id": job["id"], "event": "start"})
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
                batch.run_one(job)
                continue
            batch.run_one(job, workdir, os.path.isfile(os.path.join(workdir, "t.test")), spent)
        shutil.rmtree(group_dir, ignore_errors=True)
