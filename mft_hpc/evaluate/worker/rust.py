"""Rust: `rustc --test` against prebuilt crates, up to RUST_GROUP programs per `rustc` (a module each)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

from .runner import Runner, run_compiled
from .steps import base_env, classify, run_step


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


class RustRunner(Runner):
    group_size = RUST_GROUP

    def __init__(self, batch):
        super().__init__(batch)
        with open(self.tool.rust_externs) as handle:
            self.externs = json.load(handle)

    def run(self, job, workdir):
        return run_rust(job, workdir, self.tool, self.externs)

    def fits_group(self, job):
        return rust_groupable(job["source"])

    def run_built(self, job, workdir):
        # the group's binary: only this program's tests
        step = run_step(["./t.test", RUST_MODULE.format(job["id"]) + "::"], workdir, job["timeout"],
                        base_env(workdir), nproc=self.tool.nproc)
        return classify(step) or ("pass", "")

    def run_group(self, jobs: list[dict]) -> None:
        """Compile a group of Rust programs with one `rustc`, then run each program's own tests
        (see build_rust_group); a program left out of the binary is compiled alone."""
        batch = self.batch
        group_dir = os.path.join(batch.scratch, f"r{jobs[0]['id']}")
        start = time.monotonic()
        built = []
        try:
            os.makedirs(group_dir)
            for job in jobs:
                batch.emit({"id": job["id"], "event": "start"})
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
            batch.run_one(job, workdir if os.path.isdir(workdir) else None, linked, spent)
        shutil.rmtree(group_dir, ignore_errors=True)
