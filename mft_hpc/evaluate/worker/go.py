"""Go: the grader's `go test main_test.go`, built against a warm cache; in a batch, up to GO_GROUP
programs share one test binary (a package each), the rest share one `go test` invocation."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time

from .runner import Runner, run_compiled
from .steps import base_env, classify, read_head, run_step
from .toolchain import LAYER_GOCACHE, PREBUILT_DIR, Toolchain


GO_LDFLAGS = "-ldflags=-s -w"   # drops the symbol table and DWARF only (a third of the link time)
# go test's -exec hook, run in the package dir for each test binary that built and passed vet:
# keep the binary (atomically) instead of running it; the worker runs it under its own limits
GO_KEEP_BINARY = "sh -c 'cp \"$0\" t.test.part && mv t.test.part t.test'"
GO_GROUP = 32  # programs per group build in a batch (a shared binary's fixed cost is ~1.3 CPU s)
GO_PACKAGE = "mftp{}"        # a program's package in a shared test binary
GOTESTS = os.path.join(PREBUILT_DIR, "gotests")              # gotests.go, built by prebuild_go
GO_VET_FLAGS = os.path.join(PREBUILT_DIR, "go-vet-flags")    # the checks `go test` runs, one per line


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


def shared_source(source: str, name_at: int, package: str) -> str | None:
    """The program as a package of its own: the package clause's name replaced (``name_at``: its byte
    offset, from gotests), behind a line directive that names the file and its lines as the grader's
    build does (``main_test.go:9: ...`` in a failing test's output)."""
    data = source.encode("utf-8")
    if data[name_at:name_at + 4] != b"main":
        return None
    return (b"/*line main_test.go:1:1*/" + data[:name_at] + package.encode() + data[name_at + 4:]).decode("utf-8")


def shared_main(members: dict[int, list[str]]) -> str:
    """The shared binary's own test file: each program's tests, under their own names, call its package's."""
    imports = [f'    {"_" if not tests else "p" + str(i)} "{GO_PACKAGE.format(i)}"' for i, tests in members.items()]
    wrappers = [f"func {name}(t *testing.T) {{ p{i}.{name}(t) }}" for i, tests in members.items() for name in tests]
    return "package main\n\nimport (\n    \"testing\"\n" + "\n".join(imports) + "\n)\n\n" + \
        "\n".join(wrappers) + "\n\nvar _ testing.T\n"


def run_filter(tests: list[str]) -> str:
    """The -test.run flag that selects exactly these tests (names are identifiers: nothing to escape)."""
    return f"-test.run=^({'|'.join(tests)})$" if tests else "-test.run=^$"


def link_shared(members: dict[int, list[str]], root: str, output: str, tool, env: dict, limit: float) -> bool:
    """Compile and link the shared test binary of ``members`` (their packages are under ``root``) to ``output``."""
    shared = os.path.join(root, "mftshared")
    shutil.rmtree(shared, ignore_errors=True)
    os.makedirs(shared)
    with open(os.path.join(shared, "main_test.go"), "w", encoding="utf-8") as handle:
        handle.write(shared_main(members))
    with tool.compile_slots:
        # -vet=off: the programs are vetted on their own; vetting this generated file would need
        # every program's vet facts first
        step = run_step(["go", "test", "-c", "-p=1", "-vet=off", GO_LDFLAGS, "-o", output], shared, limit, env,
                        nproc=tool.nproc)
    return step.rc == 0 and os.path.isfile(output)


def build_go_shared(jobs, group_dir, tool, gocache) -> tuple[dict[int, str], set[int]]:
    """Build one test binary holding several programs, a package each; returns ({job id: the
    -test.run flag selecting its tests in group_dir/shared.test}, {ids of the programs vet rejected}).

    A `go test -c` is ~0.55 CPU s, a third of it the link of a ~150-package binary; in a shared
    binary the programs pay one link. Only programs that mean the same as a package of a shared
    binary are taken (gotests: nothing runs before their tests start, nothing `go test` treats
    specially), renamed from package main to their own package, vetted with exactly the checks `go
    test` runs, and compiled behind wrappers with their tests' own names (a name two programs
    share leaves the second out); each runs alone with -test.run selecting exactly its tests, so a
    run executes that program's code only and prints what its own binary would.

    Vet and the build run at once (two cores for one group). A program vet rejects is left out
    (and judged alone) and the rest vetted again; a binary built with it still serves the others
    (its package has nothing that runs unless its tests are selected), one that did not build is
    built again without it. Whatever is not in the binary at the end is built as before, which
    decides its verdict exactly as before.
    """
    flags = read_head(GO_VET_FLAGS).split()
    if not flags or not os.access(GOTESTS, os.X_OK):
        return {}, set()
    files = [os.path.join(group_dir, f"p{job['id']}", "main_test.go") for job in jobs]
    step = run_step([GOTESTS, *files], group_dir, 30.0, base_env(group_dir), nproc=tool.nproc)
    facts = [json.loads(line) for line in step.stdout_text.splitlines()] if step.rc == 0 else []
    if len(facts) != len(jobs):
        return {}, set()
    root = os.path.join(group_dir, "gopath", "src")
    members: dict[int, list[str]] = {}
    for job, fact in zip(jobs, facts):
        # a test name another program took (the same problem from two sweep members): built as before
        taken = any(name in tests for tests in members.values() for name in fact["tests"])
        source = None if fact["alone"] or taken else \
            shared_source(job["source"], fact["name_at"], GO_PACKAGE.format(job["id"]))
        if source is not None:
            package_dir = os.path.join(root, GO_PACKAGE.format(job["id"]))
            os.makedirs(package_dir)
            with open(os.path.join(package_dir, "prog.go"), "w", encoding="utf-8") as handle:
                handle.write(source)
            members[job["id"]] = fact["tests"]
    if len(members) < 2:
        return {}, set()
    env = go_compile_env(go_env(group_dir, tool, gocache))
    env["GOPATH"] = f"{os.path.dirname(root)}:{tool.gopath}"
    # one program's compile limit for each step: nothing gets into the binary that would not build alone
    limit = max(job["compile_timeout"] for job in jobs)
    output = os.path.join(group_dir, "shared.test")
    built: list[bool] = []
    first = dict(members)
    builder = threading.Thread(target=lambda: built.append(link_shared(first, root, output, tool, env, limit)))
    builder.start()
    rejected: set[int] = set()
    try:
        for _ in range(3):
            with tool.compile_slots:
                step = run_step(["go", "vet", "-p=1", *flags, *[GO_PACKAGE.format(i) for i in members]], root, limit,
                                env, nproc=tool.nproc)
            if step.rc == 0:
                break
            bad = {int(m) for m in re.findall(r"^# mftp(\d+)$", step.stderr_text, re.M)} & members.keys()
            if step.timed_out or not bad:
                return {}, rejected
            rejected |= bad
            members = {i: tests for i, tests in members.items() if i not in bad}
            if len(members) < 2:
                return {}, rejected
        else:
            return {}, rejected
    finally:
        builder.join()
    if not built or not built[0]:
        if not rejected or not link_shared(members, root, output, tool, env, limit):
            return {}, rejected
    return {i: run_filter(tests) for i, tests in members.items()}, rejected


def prebuild_go(folder: str) -> bool:
    """At image build: gotests, the vet checks `go test` runs (read from its own dry run), and a Go
    cache with the vet facts of the packages programs import (a batch starts from a copy of it)."""
    gocache = os.path.join(folder, "gocache")
    shutil.copytree(LAYER_GOCACHE, gocache, symlinks=True)
    tool_env = go_env(folder, Toolchain({}), gocache)
    built = run_step(["go", "build", "-o", os.path.join(folder, "gotests"),
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "gotests.go")], folder, 300.0, tool_env)
    sample = os.path.join(folder, "gowarm")
    os.makedirs(sample)
    with open(os.path.join(sample, "main_test.go"), "w") as handle:
        handle.write(GO_WARM_SOURCE)
    dry = run_step(["go", "test", "-n", "-c", "-o", "t.test", "main_test.go"], sample, 300.0, tool_env)
    found = re.search(r"/vet ((?:-\w+ )+)\S*vet\.cfg", dry.stderr_text + dry.stdout_text)
    if built.rc != 0 or not found:
        return False
    flags = found.group(1).split()
    with open(os.path.join(folder, "go-vet-flags"), "w") as handle:
        handle.write("\n".join(flags) + "\n")
    warm = run_step(["go", "vet", *flags, "main_test.go"], sample, 300.0, tool_env)
    shutil.rmtree(sample)
    return warm.rc == 0


GO_WARM_SOURCE = """package main

import (
    "fmt"
    "math"
    "sort"
    "strconv"
    "strings"
    "testing"

    "github.com/stretchr/testify/assert"
)

func TestWarm(t *testing.T) {
    _ = fmt.Sprint(math.Abs(1)); sort.Ints(nil); _ = strconv.Itoa(1); _ = strings.ToUpper("a")
    assert.Equal(t, 1, 1)
}
"""


class GoRunner(Runner):
    group_size = GO_GROUP
    group_cores = 2   # vet and the shared binary's build run at once
    group_min = 4     # a shared binary costs ~1.5 CPU s, a program built alone ~0.55

    def __init__(self, batch):
        super().__init__(batch)
        self.gocache = os.path.join(batch.scratch, "gocache")
        if not os.path.isdir(self.gocache):
            shutil.copytree(self.tool.gocache_seed, self.gocache, symlinks=True)
        self.run_filters: dict[int, str] = {}   # job id -> its -test.run flag, for a program in a shared binary

    def run(self, job, workdir):
        return run_go(job, workdir, self.tool, self.gocache)

    def run_built(self, job, workdir):
        selected = self.run_filters.pop(job["id"], None)
        step = run_step(go_test_argv(job) + ([selected] if selected else []), workdir, job["timeout"],
                        go_env(workdir, self.tool, self.gocache), nproc=self.tool.nproc)
        return as_timeout(classify(step) or ("pass", ""), workdir)

    def run_group(self, jobs: list[dict]) -> None:
        """Build a group of Go programs, those that can into one shared test binary (build_go_shared),
        the others but the ones vet rejected with one `go test` (build_go_group), then run each."""
        batch = self.batch
        group_dir = os.path.join(batch.scratch, f"g{jobs[0]['id']}")
        start = time.monotonic()
        workdirs, shared, rejected = {}, {}, set()
        try:
            os.makedirs(group_dir)
            for job in jobs:
                batch.emit({"id": job["id"], "event": "start"})
                workdirs[job["id"]] = os.path.join(group_dir, f"p{job['id']}")
                os.makedirs(workdirs[job["id"]])
                with open(os.path.join(workdirs[job["id"]], "main_test.go"), "w", encoding="utf-8") as handle:
                    handle.write(job["source"])
            try:
                shared, rejected = build_go_shared(jobs, group_dir, self.tool, self.gocache)
            except Exception:   # a worker-side problem: built as if there were no shared binary
                shared, rejected = {}, set()
            rest = [job for job in jobs if job["id"] not in shared and job["id"] not in rejected]
            if len(rest) > 1:
                build_go_group(rest, group_dir, self.tool, self.gocache)
        except Exception:   # a worker-side problem: every program is built alone below
            pass
        spent = (time.monotonic() - start) / len(jobs)
        for job in jobs:
            workdir = workdirs.get(job["id"])
            if workdir is None:
                batch.run_one(job)
                continue
            built = False
            if job["id"] in shared:
                try:
                    os.link(os.path.join(group_dir, "shared.test"), os.path.join(workdir, "t.test"))
                    self.run_filters[job["id"]] = shared[job["id"]]
                    built = True
                except OSError:   # built alone
                    pass
            else:
                built = os.path.isfile(os.path.join(workdir, "t.test"))
            batch.run_one(job, workdir, built, spent)
        shutil.rmtree(group_dir, ignore_errors=True)
