"""Bad input and broken run directories at every front door: each case asserts the exit code, the one
line that names the problem, no traceback, and that nothing looks finished afterwards.

Cases marked "issue 13" are the defects that issue reported; the others widen the net across config,
data, evaluate, pack, run directories and CLI options.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from robustness_helpers import (Case, Ctx, assert_case, checkpoint, copy_run, corrupt, finish_generation,
                                hold_write_lock, make_run, record_attempt, run_in, states, write_chat_data)

from mft_hpc.rundir.state import COMPLETED, FAILED

GEN_DIR = "runs/r/members/main/generate/generations_r"


# -- setups ------------------------------------------------------------------------------------------------

def run_with(ctx: Ctx, how: str | None = None, name: str = "r") -> str:
    """A planned run (one generation element, collect), optionally with a broken state.sqlite."""
    root = make_run(ctx, name)
    if how:
        checkpoint(root / "state.sqlite")
        corrupt(root / "state.sqlite", how)
    return str(root)


def run_with_log(ctx: Ctx) -> str:
    root = make_run(ctx)
    record_attempt(root, "generate/main/mbpp/0", "4242", log_text="line one\nline two\n")
    return str(root)


def broken_run_json(ctx: Ctx, text: str | bytes) -> str:
    root = make_run(ctx)
    (root / "run.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(root)


def without_state(ctx: Ctx) -> str:
    root = make_run(ctx)
    (root / "state.sqlite").unlink()
    return str(root)


def member_config(ctx: Ctx, text: str) -> str:
    root = make_run(ctx)
    (root / "members" / "main" / "config.yaml").write_text(text)
    return str(root)


def generated(ctx: Ctx, how: str) -> str:
    """Generation finished, the collect not yet run, and state.sqlite broken ``how``."""
    root = make_run(ctx)
    finish_generation(root)
    checkpoint(root / "state.sqlite")
    corrupt(root / "state.sqlite", how)
    return str(root)


def locked(ctx: Ctx, root: str) -> str:
    hold_write_lock(ctx, ctx.tmp / "runs" / "r" / "state.sqlite", 40)
    return root


def hardlinked(ctx: Ctx, name: str, link: str) -> str:
    path = ctx.write(name, INPUT_TEXT)
    os.link(path, ctx.path(link))
    return str(path)


def rendered_statuses(ctx: Ctx, rel: str, expected: list[str]) -> None:
    lines = [json.loads(line) for line in ctx.path(rel).read_text().splitlines()]
    assert [line.get("status", "ok") for line in lines] == expected


def dead_local_job(ctx: Ctx) -> str:
    """A local element whose process ran and is gone (a real process, started and killed)."""
    from mft_hpc.controller.local_jobs import local_process

    root = make_run(ctx)
    sleeper = subprocess.Popen(["sleep", "60"])
    identity = local_process(sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    record_attempt(root, "generate/main/mbpp/0", str(sleeper.pid), log_text="generating\n", process=identity)
    return str(root)


def live_local_job(ctx: Ctx) -> str:
    from mft_hpc.controller.local_jobs import local_process

    root = make_run(ctx)
    sleeper = subprocess.Popen(["sleep", "60"])
    ctx.defer(lambda: (sleeper.kill(), sleeper.wait()))
    record_attempt(root, "generate/main/mbpp/0", str(sleeper.pid), log_text="generating\n",
                   process=local_process(sleeper.pid))
    return str(root)


def finished_then(ctx: Ctx, damage: str) -> str:
    """Generation finished and certified, then its output deleted or truncated by hand."""
    root = make_run(ctx)
    path = finish_generation(root)
    record_attempt(root, "generate/main/mbpp/0", "77", log_text="done\n")
    with run_in(ctx.tmp):
        from mft_hpc.controller.operations import refresh_run

        assert refresh_run(root)[0].state == COMPLETED
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_text(path.read_text()[:10])
    elif damage == "same-size":
        text = path.read_text()
        path.write_text(text.replace("return 1", "return 2"))
    elif damage == "same-size-and-mtime":  # only a hash can tell
        stat = path.stat()
        path.write_text(path.read_text().replace("return 1", "return 2"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return str(root)


def stale_leaderboard(ctx: Ctx) -> str:
    """A finished run (generation, then collect, for real) whose leaderboard was truncated by hand."""
    root = make_run(ctx)
    finish_generation(root)
    assert run_cli_quiet(["resume", str(root)]) == 0
    board = root / "collect" / "leaderboard.json"
    board.write_text(board.read_text()[:7])
    return str(root)


def unscorable_run(ctx: Ctx) -> str:
    """Generation finished, but its file cannot be scored (1 entry for 2 problems): evaluation fails."""
    root = make_run(ctx, evaluate={"enabled": True, "runtime": "host", "unsafe_host": True})
    finish_generation(root, entries=1)
    return str(root)


def collect_not_finished(ctx: Ctx, result) -> None:
    found = states(ctx.path("runs/r"))
    assert found["evaluate/main/mbpp/0"][0] == FAILED, found
    assert found["collect/_run/0"][0] == FAILED and "leaderboard incomplete" in found["collect/_run/0"][1], found
    assert not ctx.path("runs/r/collect/leaderboard.json.done").exists()


def locked_run(ctx: Ctx, seconds: float, stale: bool) -> str:
    root = make_run(ctx)
    if stale:  # the refresh has something to write: the collect output went stale
        finish_generation(root)
    hold_write_lock(ctx, root / "state.sqlite", seconds)
    return str(root)


def schema1_run(ctx: Ctx) -> str:
    """A run made before schema 2 (rows keyed by run name, absolute paths), then renamed."""
    import sqlite3

    old = ctx.tmp / "runs" / "old-name"
    root = make_run(ctx, "new-name")
    log = root / "logs" / "9" / "9_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("the renamed run's own log\n")
    (root / "state.sqlite").unlink()
    db = sqlite3.connect(root / "state.sqlite")
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE elements (id INTEGER PRIMARY KEY, run TEXT NOT NULL, stage TEXT NOT NULL, member TEXT NOT NULL,
            task TEXT NOT NULL DEFAULT '', element INTEGER NOT NULL DEFAULT 0, slurm_job_id TEXT, state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, submitted_at REAL, started_at REAL, ended_at REAL, log_path TEXT,
            output_path TEXT, last_error TEXT, updated_at REAL NOT NULL, UNIQUE (run, stage, member, task, element));
        CREATE TABLE attempts (element_id INTEGER NOT NULL, attempt INTEGER NOT NULL, slurm_job_id TEXT,
            submitted_at REAL NOT NULL, state TEXT NOT NULL, ended_at REAL, last_error TEXT,
            PRIMARY KEY (element_id, attempt));
    """)
    db.execute("INSERT INTO elements (run, stage, member, task, element, slurm_job_id, state, attempts, log_path,"
               " updated_at) VALUES ('old-name', 'generate', 'main', 'mbpp', 0, '9', 'failed', 1, ?, 1.0)",
               (str(old / "logs" / "9" / "9_0_log.err"),))
    db.execute("INSERT INTO elements (run, stage, member, task, element, state, updated_at)"
               " VALUES ('old-name', 'collect', '_run', '', 0, 'planned', 1.0)")
    db.commit()
    db.close()
    return str(root)


def copied_run(ctx: Ctx) -> str:
    original = make_run(ctx, "orig")
    record_attempt(original, "generate/main/mbpp/0", "31", log_text="the original's log\n")
    copy = copy_run(original, ctx.tmp / "elsewhere" / "copy")
    (copy / "logs" / "31" / "31_0_log.err").write_text("the copy's own log\n")
    return str(copy)


def generations(ctx: Ctx, entries, task: str = "mbpp", model: str = "m", folder: str = "gens") -> str:
    path = ctx.write(f"{folder}/generations_{task}_{model}.json",
                     entries if isinstance(entries, str) else json.dumps(entries))
    return str(path.parent)


def evaluate_argv(ctx: Ctx, entries, *extra, task="mbpp", out="ev", unsafe=True) -> list[str]:
    return ["evaluate", "--generations", generations(ctx, entries, task), "--model", "m", "--benchmarks",
            str(ctx.bench), "--out", out, "--runtime", "host", *(["--unsafe-host"] if unsafe else []), *extra]


def reference_solutions(ctx: Ctx, n: int) -> list[list[str]]:
    from mft_hpc.tasks import load_problems

    return [[doc["code"]] for doc in load_problems(ctx.bench, "mbpp")[:n]]


def without_extras(ctx: Ctx, argv: list[str]) -> list[str]:
    """This environment as `pip install mft-hpc` leaves it: the training extras cannot be imported."""
    for name in ("torch", "transformers", "tiktoken", "peft", "accelerate", "tokenizers"):
        saved = sys.modules.get(name, KeyError)
        sys.modules[name] = None
        ctx.defer(lambda name=name, saved=saved: sys.modules.pop(name) if saved is KeyError
                  else sys.modules.__setitem__(name, saved))
    return argv


# -- checks -----------------------------------------------------------------------------------------------

def state_is(label: str, state: str, error: str | None = None):
    def check(ctx: Ctx, _result) -> None:
        found = states(ctx.path("runs/r"))[label]
        assert found[0] == state, found
        if error:
            assert error in (found[1] or ""), found
    return check


def unchanged(rel: str, content: bytes):
    def check(ctx: Ctx, _result) -> None:
        assert ctx.path(rel).read_bytes() == content
    return check


def within(seconds: float):
    def check(ctx: Ctx, _result) -> None:
        assert time.monotonic() - ctx.started < seconds, f"took {time.monotonic() - ctx.started:.1f} s"
    return check


def in_output(text: str, absent: str | None = None):
    def check(_ctx, result) -> None:
        assert text in result.out, result.out
        if absent:
            assert absent not in result.out, result.out
    return check


BAD_LINE = '{"chat_rounds": [{"role": "human", "content": "hi"}]}\n'
GOOD_LINE = '{"chat_rounds": [{"role": "human", "content": "hi"}, {"role": "bot", "content": "yo"}]}\n'
INPUT_TEXT = (GOOD_LINE * 3).encode()

CASES = [
    # ---------------------------------------------------------------- the run directory (issue 13)
    Case("issue13-status-truncated-state", lambda c: ["status", run_with(c, "truncate"), "--plain"], 0,
         r"^mft-hpc: warning: .*state\.sqlite: state store unreadable .*mft-hpc repair .*showing the output files",
         check=in_output("state.sqlite unreadable: states inferred from output files")),
    Case("issue13-status-overwritten-state", lambda c: ["status", run_with(c, "garbage"), "--plain"], 0,
         r"warning: .*state store unreadable \(file is not a database\)"),
    Case("issue13-resume-malformed-state", lambda c: ["resume", run_with(c, "truncate")], 2,
         r"state\.sqlite: state store unreadable .*`mft-hpc repair .*` rebuilds it"),
    Case("issue13-retry-malformed-state", lambda c: ["retry", run_with(c, "garbage")], 2, r"state store unreadable"),
    Case("issue13-cancel-malformed-state", lambda c: ["cancel", run_with(c, "header")], 2, r"state store unreadable"),
    Case("issue13-logs-malformed-state", lambda c: ["logs", run_with(c, "garbage"), "generate/main/mbpp"], 2,
         r"state store unreadable"),
    Case("issue13-status-while-writer-holds-lock",
         lambda c: ["status", locked_run(c, 40, stale=True), "--plain"], 0,
         r"warning: .*another mft-hpc command is writing it; showing the last recorded state", check=within(10)),
    Case("issue13-logs-while-writer-holds-lock", lambda c: ["logs", locked(c, run_with_log(c)), "4242"], 0,
         r"^line two$", stream="out", check=within(10)),
    Case("issue13-resume-waits-for-writer-visibly", lambda c: ["resume", locked_run(c, 3, stale=True)], 0,
         r"state\.sqlite: locked by another process; waiting", markers_may_change=True),
    Case("issue13-status-truncated-run-json", lambda c: ["status", broken_run_json(c, '{"members": ["ma'), "--plain"],
         0, r"warning: .*run\.json: unreadable .*mft-hpc repair"),
    Case("issue13-resume-truncated-run-json", lambda c: ["resume", broken_run_json(c, '{"members": ["ma')], 2,
         r"run\.json: unreadable \(.*\); `mft-hpc repair .*` rebuilds it"),
    Case("issue13-status-empty-run-json", lambda c: ["status", broken_run_json(c, "{}"), "--plain"], 0,
         r"warning: .*run\.json: not a run record"),
    Case("issue13-resume-empty-run-json", lambda c: ["resume", broken_run_json(c, "{}")], 2,
         r"run\.json: not a run record \(needs members"),
    Case("issue13-status-done-output-deleted", lambda c: ["status", finished_then(c, "delete"), "--plain"], 0,
         r"failed", stream="out", check=state_is("generate/main/mbpp/0", FAILED, "output missing")),
    Case("issue13-status-done-output-truncated", lambda c: ["status", finished_then(c, "truncate"), "--plain"], 0,
         r"failed", stream="out", check=state_is("generate/main/mbpp/0", FAILED, "output changed")),
    Case("status-done-output-rewritten-same-size", lambda c: ["status", finished_then(c, "same-size"), "--plain"], 0,
         r"failed", stream="out", check=state_is("generate/main/mbpp/0", FAILED, "content differs")),
    Case("status-verify-hashes-what-size-and-mtime-miss",
         lambda c: ["status", finished_then(c, "same-size-and-mtime"), "--plain", "--verify"], 0, r"failed",
         stream="out", check=state_is("generate/main/mbpp/0", FAILED, "content differs")),
    Case("status-without-verify-trusts-size-and-mtime",
         lambda c: ["status", finished_then(c, "same-size-and-mtime"), "--plain"], 0, r"generate", stream="out",
         check=state_is("generate/main/mbpp/0", COMPLETED)),
    Case("issue13-resume-redoes-what-a-stale-done-certified",
         lambda c: ["resume", stale_leaderboard(c)], 0,
         r"^redo collect/_run: output changed: \d+ bytes, certified \d+ bytes \(leaderboard\.json\)$", stream="out",
         markers_may_change=True, check=lambda c, r: "submitted collect" in r.out or pytest.fail(r.out)),
    Case("issue13-collect-with-missing-scores-is-not-completed", lambda c: ["resume", unscorable_run(c)], 0,
         r"^submitted collect", stream="out", check=collect_not_finished),
    Case("issue13-status-dead-local-job", lambda c: ["status", dead_local_job(c), "--plain"], 0,
         r"process gone \(pid \d+\)", stream="out", check=state_is("generate/main/mbpp/0", FAILED, "process gone")),
    Case("status-live-local-job-stays-pending", lambda c: ["status", live_local_job(c), "--plain"], 0,
         r"generate", stream="out", check=state_is("generate/main/mbpp/0", "pending")),
    Case("issue13-copied-run-reads-its-own-log", lambda c: ["logs", copied_run(c), "generate/main/mbpp"], 0,
         r"^the copy's own log$", stream="out", check=in_output("copy's own", absent="original")),
    Case("renamed-schema1-run-status", lambda c: ["status", schema1_run(c), "--plain"], 0, r"failed", stream="out"),
    Case("renamed-schema1-run-logs", lambda c: ["logs", schema1_run(c), "generate/main/mbpp"], 0,
         r"^the renamed run's own log$", stream="out"),
    Case("resume-missing-state", lambda c: ["resume", without_state(c)], 2,
         r"state\.sqlite: missing; `mft-hpc repair .*` rebuilds it"),
    Case("status-missing-state", lambda c: ["status", without_state(c), "--plain"], 0,
         r"warning: .*state\.sqlite: missing; `mft-hpc repair"),
    Case("resume-empty-state-file", lambda c: ["resume", run_with(c, "empty")], 2,
         r"state store unreadable \(it records no element of this run\)"),
    Case("status-empty-state-file", lambda c: ["status", run_with(c, "empty"), "--plain"], 0,
         r"warning: .*state store unreadable \(it records no element of this run\)"),
    Case("resume-run-json-a-list", lambda c: ["resume", broken_run_json(c, "[1, 2]")], 2, r"run\.json: not a run record"),
    Case("resume-run-json-not-utf8", lambda c: ["resume", broken_run_json(c, b"\xff\xfe{")], 2,
         r"run\.json: unreadable \(.*utf-8"),
    Case("resume-run-json-no-members", lambda c: ["resume", broken_run_json(c, '{"members": [], "is_sweep": false}')],
         2, r"run\.json: not a run record"),
    Case("resume-member-config-broken", lambda c: ["resume", member_config(c, "model: [")], 2,
         r"members/main/config\.yaml: cannot read the member's config"),
    Case("resume-member-config-invalid", lambda c: ["resume", member_config(c, "model: {}\n")], 2,
         r"members/main/config\.yaml: cannot read the member's config: .*run"),
    Case("status-not-a-run-dir", lambda c: ["status", str(c.path("nothing-here"))], 2, r"not a run directory"),
    Case("resume-not-a-run-dir", lambda c: ["resume", str(c.tmp)], 2, r"not a run directory \(no run\.json\)"),
    Case("logs-unknown-element", lambda c: ["logs", run_with(c), "train/main"], 2,
         r"no element 'train/main' \(by Slurm job id, label or id\); e\.g\. generate/main/mbpp/0"),
    Case("logs-element-without-log", lambda c: ["logs", run_with(c), "collect/_run"], 2,
         r"collect/_run/0: no log recorded yet \(state planned\)"),
    Case("logs-missing-state", lambda c: ["logs", without_state(c), "1"], 2, r"state\.sqlite: missing; `mft-hpc repair"),
    Case("repair-no-such-dir", lambda c: ["repair", str(c.path("gone"))], 2, r"gone: no such run directory"),
    Case("repair-dir-without-members", lambda c: ["repair", str(c.tmp)] if c.write("run.json", "{") else [], 2,
         r"no members/<name>/config\.yaml: nothing to rebuild run\.json from"),
    Case("repair-rebuilds-broken-store", lambda c: ["repair", run_with(c, "garbage")], 0,
         r"^rebuilt state\.sqlite: 2 elements \(2 planned\)$", stream="out"),
    Case("repair-rebuilds-run-json", lambda c: ["repair", broken_run_json(c, "{")], 0,
         r"^rebuilt run\.json from the members' configs$", stream="out"),
    Case("resume-rebuild-state-then-resume", lambda c: ["resume", "--rebuild-state", generated(c, "garbage")], 0,
         r"submitted collect", stream="out", markers_may_change=True),
    Case("run-existing-run", lambda c: ["run", c.config()] if make_run(c) else [], 2,
         r"runs/r already exists: continue it with `mft-hpc resume"),
    Case("run-root-is-a-file", lambda c: ["run", c.config(run={"name": "f", "root": str(c.write("rootfile", "x"))})],
         2, r"rootfile.*(is a file, not a directory|Not a directory|not a directory)"),

    # ---------------------------------------------------------------- CLI options (issue 13 + own)
    Case("issue13-logs-n-negative", lambda c: ["logs", run_with_log(c), "4242", "-n", "-1"], 2,
         r"argument -n/--lines: must be at least 0, got -1 \(see `mft-hpc logs --help`\)"),
    Case("logs-n-not-a-number", lambda c: ["logs", run_with_log(c), "4242", "-n", "ten"], 2,
         r"argument -n/--lines: expected an integer, got 'ten'"),
    Case("logs-n-zero-prints-all", lambda c: ["logs", run_with_log(c), "4242", "-n", "0"], 0, r"^line one$",
         stream="out"),
    Case("retry-max-attempts-zero", lambda c: ["retry", run_with(c), "--max-attempts", "0"], 2,
         r"argument --max-attempts: must be at least 1, got 0"),
    Case("status-interval-zero", lambda c: ["status", run_with(c), "--interval", "0"], 2,
         r"argument --interval: must be greater than 0"),
    Case("status-interval-negative", lambda c: ["status", run_with(c), "--interval", "-2"], 2,
         r"argument --interval: must be greater than 0"),
    Case("verdict-cache-prune-negative-age", lambda c: ["verdict-cache", "prune", str(c.tmp), "--older-than-days", "-1"],
         2, r"argument --older-than-days: must not be negative, got -1"),
    Case("verdict-cache-prune-max-mb-not-a-number", lambda c: ["verdict-cache", "prune", str(c.tmp), "--max-mb", "lots"],
         2, r"argument --max-mb: expected a number, got 'lots'"),
    Case("unknown-verb", lambda c: ["deploy"], 2, r"argument VERB: invalid choice: 'deploy'"),
    Case("unknown-option", lambda c: ["status", "x", "--colour"], 2, r"unrecognized arguments: --colour"),
    Case("missing-argument", lambda c: ["logs"], 2, r"the following arguments are required: RUN, ELEMENT"),
    Case("data-without-action", lambda c: ["data"], 2, r"the following arguments are required: ACTION"),
    Case("issue13-evaluate-limit-zero", lambda c: evaluate_argv(c, [["x"]], "--limit", "0"), 2,
         r"argument --limit: must be at least 1, got 0", absent=("ev",)),
    Case("issue13-evaluate-limit-negative", lambda c: evaluate_argv(c, [["x"]], "--limit", "-1"), 2,
         r"argument --limit: must be at least 1, got -1", absent=("ev",)),
    Case("evaluate-workers-zero", lambda c: evaluate_argv(c, [["x"]], "--workers", "0"), 2,
         r"argument --workers: must be at least 1, got 0", absent=("ev",)),
    Case("issue13-prompts-limit-zero", lambda c: ["prompts", "--benchmarks", str(c.bench), "--limit", "0", "--out",
                                                  "p.jsonl"], 2, r"argument --limit: must be at least 1",
         absent=("p.jsonl",)),
    Case("prompts-limit-negative", lambda c: ["prompts", "--benchmarks", str(c.bench), "--limit", "-1", "--out",
                                              "p.jsonl"], 2, r"argument --limit: must be at least 1, got -1",
         absent=("p.jsonl",)),
    Case("prompts-unknown-task", lambda c: ["prompts", "--benchmarks", str(c.bench), "--tasks", "mbpp-plus",
                                            "--out", "p.jsonl"], 2, r"mbpp-plus", absent=("p.jsonl",)),
    Case("data-demo-limit-zero", lambda c: ["data", "demo", "--benchmarks", str(c.bench), "--out", "demo",
                                            "--limit", "0"], 2, r"argument --limit: must be at least 1",
         absent=("demo",)),
    Case("data-demo-out-is-a-file", lambda c: ["data", "demo", "--benchmarks", str(c.bench), "--out",
                                               str(c.write("demo", "x"))], 2, r"--out .*demo: exists and is not a directory"),
    Case("render-seq-length-one", lambda c: ["data", "render", "--tokenizer", str(c.model), "--in",
                                             str(c.write("in.jsonl", INPUT_TEXT)), "--out", "o.jsonl",
                                             "--seq-length", "1"], 2, r"argument --seq-length: must be at least 2",
         absent=("o.jsonl",)),
    Case("render-seq-length-not-a-number", lambda c: ["data", "render", "--tokenizer", str(c.model), "--in", "i",
                                                      "--out", "o", "--seq-length", "lots"], 2,
         r"argument --seq-length: expected an integer, got 'lots'"),

    # ---------------------------------------------------------------- output paths (issue 13 + own)
    Case("issue13-render-out-is-a-directory",
         lambda c: ["data", "render", "--tokenizer", str(c.model), "--in", str(c.write("in.jsonl", INPUT_TEXT)),
                    "--out", str(c.path("outdir"))] if c.path("outdir").mkdir() is None else [], 2,
         r"--out .*outdir: is a directory; give a file path"),
    Case("issue13-prompts-out-is-a-directory",
         lambda c: ["prompts", "--benchmarks", str(c.bench), "--limit", "1", "--out", str(c.tmp)], 2,
         r"--out .*: is a directory; give a file path"),
    Case("issue13-evaluate-out-is-a-file",
         lambda c: evaluate_argv(c, reference_solutions(c, 2), "--limit", "2", out=str(c.write("ev", "a file"))), 2,
         r"--out .*ev: exists and is not a directory", check=unchanged("ev", b"a file")),
    Case("evaluate-out-below-a-file",
         lambda c: evaluate_argv(c, reference_solutions(c, 2), "--limit", "2", out=str(c.write("blocker", "x")) + "/ev"),
         2, r"--out .*blocker/ev: .*blocker is a file, not a directory"),
    Case("render-out-below-a-file",
         lambda c: ["data", "render", "--tokenizer", str(c.model), "--in", str(c.write("in.jsonl", INPUT_TEXT)),
                    "--out", str(c.write("blocker", "x")) + "/o.jsonl"], 2, r"blocker is a file, not a directory"),
    Case("prompts-out-below-a-file",
         lambda c: ["prompts", "--benchmarks", str(c.bench), "--out", str(c.write("blocker", "x")) + "/p.jsonl"], 2,
         r"blocker is a file, not a directory"),
    Case("postprocess-out-is-a-file",
         lambda c: ["postprocess", "--raw", "r.jsonl", "--benchmarks", str(c.bench), "--model", "m", "--out",
                    str(c.write("o", "x"))], 2, r"--out .*o: exists and is not a directory"),
    Case("postprocess-raw-missing",
         lambda c: ["postprocess", "--raw", "nothing.jsonl", "--benchmarks", str(c.bench), "--model", "m", "--out",
                    "pp"], 2, r"nothing\.jsonl: no raw completions", absent=("pp/generations_m",)),
    Case("pack-out-is-a-directory",
         lambda c: ["pack", generations(c, [["x"]]), "--assume-greedy", "--out", str(c.tmp)], 2,
         r"--out .*: is a directory; give a file path"),
    Case("issue13-render-in-equals-out",
         lambda c: ["data", "render", "--tokenizer", str(c.model), "--in", str(c.write("f.jsonl", INPUT_TEXT)),
                    "--out", "f.jsonl"], 2, r"--out f\.jsonl: is the input .*f\.jsonl; writing it would destroy the input",
         check=unchanged("f.jsonl", INPUT_TEXT)),
    Case("render-in-equals-out-other-spelling",
         lambda c: ["data", "render", "--tokenizer", str(c.model), "--in", str(c.write("d/f.jsonl", INPUT_TEXT)),
                    "--out", "d/../d/./f.jsonl"], 2, r"is the input", check=unchanged("d/f.jsonl", INPUT_TEXT)),
    Case("render-out-hardlink-of-in",
         lambda c: ["data", "render", "--tokenizer", str(c.model), "--in", hardlinked(c, "h.jsonl", "link.jsonl"),
                    "--out", "link.jsonl"], 2,
         r"--out link\.jsonl: is the input", check=unchanged("h.jsonl", INPUT_TEXT)),

    # ---------------------------------------------------------------- data
    Case("render-in-missing", lambda c: ["data", "render", "--tokenizer", str(c.model), "--in", "none.jsonl",
                                         "--out", "o.jsonl"], 2, r"--in none\.jsonl: no such file", absent=("o.jsonl",)),
    Case("render-invalid-line", lambda c: ["data", "render", "--tokenizer", str(c.model), "--in",
                                           str(c.write("bad.jsonl", GOOD_LINE + BAD_LINE)), "--out", "o.jsonl"], 2,
         r"bad\.jsonl:2: no bot turn", absent=("o.jsonl",)),
    Case("render-tokenizer-missing", lambda c: ["data", "render", "--tokenizer", "no-model", "--in",
                                                str(c.write("in.jsonl", INPUT_TEXT)), "--out", "o.jsonl"], 2,
         r"tokenizer directory no-model does not exist", absent=("o.jsonl",)),
    Case("issue13-render-huge-line-dropped-without-tokenizing",
         lambda c: ["data", "render", "--tokenizer", str(c.model), "--seq-length", "64", "--overlong", "truncate",
                    "--in", str(c.write("huge.jsonl", GOOD_LINE + json.dumps({"chat_rounds": [
                        {"role": "human", "content": "x" * 3_000_000}, {"role": "bot", "content": "y"}]}) + "\n")),
                    "--out", "o.jsonl"], 0, r"huge\.jsonl:2: dropped \(longer than --seq-length 64\)",
         check=lambda c, r: rendered_statuses(c, "o.jsonl", ["ok", "dropped"])),
    Case("render-huge-second-answer-truncated-to-first",
         lambda c: ["data", "render", "--tokenizer", str(c.model), "--seq-length", "64",
                    "--in", str(c.write("two.jsonl", json.dumps({"chat_rounds": [
                        {"role": "human", "content": "a"}, {"role": "bot", "content": "b"},
                        {"role": "human", "content": "c"}, {"role": "bot", "content": "z" * 2_000_000}]}) + "\n")),
                    "--out", "o.jsonl"], 0, r"two\.jsonl:1: truncated"),
    Case("issue13-render-without-training-extras",
         lambda c: without_extras(c, ["data", "render", "--tokenizer", str(c.model), "--in",
                                      str(c.write("in.jsonl", INPUT_TEXT)), "--out", "o.jsonl"]), 2,
         r"^mft-hpc: error: data render needs the 'train' extra, which is not installed \(missing: .*transformers.*\): "
         r"pip install 'mft-hpc\[train\]'$", absent=("o.jsonl",)),
    Case("issue13-data-stats-without-training-extras",
         lambda c: without_extras(c, ["data", "stats", str(c.train_config())]), 2,
         r"data stats needs the 'train' extra, which .*pip install 'mft-hpc\[train\]'"),
    Case("issue13-run-training-without-extras",
         lambda c: without_extras(c, ["run", str(c.train_config())]), 2,
         r"training needs the 'train' extra, which .*missing: torch.*pip install 'mft-hpc\[train\]'", absent=("runs/r",)),
    Case("run-generation-without-extras",
         lambda c: without_extras(c, ["run", str(c.config())]), 2, r"generation needs the 'train' extra",
         absent=("runs/r",)),
    Case("data-check-without-extras-still-works",
         lambda c: without_extras(c, ["data", "check", str(c.write("ok.jsonl", INPUT_TEXT))]), 0,
         r"task ok: 3 valid, 0 invalid"),
    Case("config-check-without-extras-still-works",
         lambda c: without_extras(c, ["config", "check", str(c.train_config())]), 0, r"t\.yaml: ok \(1 member",
         stream="out"),
    Case("data-check-missing-path", lambda c: ["data", "check", "nowhere"], 2, r"data path nowhere: does not exist"),
    Case("data-check-dir-without-jsonl", lambda c: ["data", "check", str(c.path("empty"))]
         if c.path("empty").mkdir() is None else [], 2, r"directory holds no \*\.jsonl file"),
    Case("data-check-not-jsonl", lambda c: ["data", "check", str(c.write("x.json", "{}"))], 2,
         r"not a \.jsonl file or a directory"),
    Case("data-check-same-task-twice", lambda c: ["data", "check", str(c.write("a/x.jsonl", INPUT_TEXT)),
                                                  str(c.write("b/x.jsonl", INPUT_TEXT))], 2,
         r"both give task name 'x'"),
    Case("data-stats-unknown-member", lambda c: ["data", "stats", str(c.train_config()), "--member", "nope"], 2,
         r"--member nope: no such sweep member; members are main"),

    # ---------------------------------------------------------------- config (issue 13 + own)
    Case("issue13-config-not-utf8", lambda c: ["config", "check", str(c.write("latin.yaml",
                                                                             b"run:\n  name: caf\xe9\n"))], 2,
         r"latin\.yaml:2: not UTF-8 text \(byte 0xe9 at offset 16\); save the config as UTF-8"),
    Case("run-config-not-utf8", lambda c: ["run", str(c.write("latin.yaml", b"\xff\xfe"))], 2, r"not UTF-8 text"),
    Case("issue13-config-duplicate-key",
         lambda c: ["config", "check", str(c.write("dup.yaml", open(c.config()).read() + "run:\n  name: other\n"))], 2,
         r"dup\.yaml:\d+: run: duplicate key \(first given at line 1\); YAML would silently keep only the last"),
    Case("config-duplicate-nested-key",
         lambda c: ["config", "check", str(c.write("dup2.yaml", open(c.config()).read().replace(
             "  executor: local\n", "  executor: local\n  executor: slurm\n")))], 2,
         r"dup2\.yaml:\d+: cluster\.executor: duplicate key \(first given at line \d+\)"),
    Case("issue13-config-check-empty-data-paths",
         lambda c: ["config", "check", str(c.config(train={"enabled": True}, data={"paths": []}))], 2,
         r"c\.yaml:\d+: data\.paths: no training data"),
    Case("issue13-run-dry-run-empty-data-paths",
         lambda c: ["run", "--dry-run", str(c.config(train={"enabled": True}, data={"paths": []}))], 2,
         r"c\.yaml:\d+: data\.paths: no training data"),
    Case("issue13-config-check-model-path-is-a-file",
         lambda c: ["config", "check", str(c.config(model={"path": str(c.write("model.bin", "x"))}))], 2,
         r"c\.yaml:\d+: model\.path: not a model directory \(a file\)"),
    Case("issue13-run-dry-run-model-path-is-a-file",
         lambda c: ["run", "--dry-run", str(c.config(model={"path": str(c.write("model.bin", "x"))}))], 2,
         r"model\.path: not a model directory \(a file\)"),
    Case("config-check-model-dir-without-config-json",
         lambda c: ["config", "check", str(c.config(model={"path": str(c.path("m"))}))]
         if c.path("m").mkdir() is None else [], 2, r"model\.path: not a Hugging Face model directory"),
    Case("issue13-config-check-min-lr-above-lr",
         lambda c: ["config", "check", str(c.train_config(train={"learning_rate": 1e-5, "min_lr": 1e-3}))], 2,
         r"t\.yaml:\d+: train\.min_lr: min_lr 0\.001 is above learning_rate 1e-05"),
    Case("issue13-run-dry-run-min-lr-above-lr",
         lambda c: ["run", "--dry-run", str(c.train_config(train={"learning_rate": 1e-5, "min_lr": 1e-3}))], 2,
         r"train\.min_lr: min_lr 0\.001 is above learning_rate"),
    Case("issue13-config-check-invalid-data-line",
         lambda c: ["config", "check", str(c.train_config())] if c.write("data/adds/data.jsonl", GOOD_LINE + BAD_LINE)
         else [], 2, r"t\.yaml:\d+: data\.paths\.0: invalid line .*data\.jsonl:2: no bot turn"),
    Case("issue13-run-invalid-data-line",
         lambda c: ["run", str(c.train_config())] if c.write("data/adds/data.jsonl", GOOD_LINE + BAD_LINE) else [], 2,
         r"data\.paths\.0: invalid line .*data\.jsonl:2: no bot turn", absent=("runs/r",)),
    Case("config-check-invalid-data-skip-invalid-ok",
         lambda c: ["config", "check", str(c.train_config(data={"skip_invalid": True}))]
         if c.write("data/adds/data.jsonl", GOOD_LINE + BAD_LINE) else [], 0, r"ok \(1 member", stream="out"),
    Case("config-check-data-line-not-utf8",
         lambda c: ["config", "check", str(c.train_config())] if c.write("data/adds/data.jsonl", GOOD_LINE.encode()
                                                                         + b"\xff\n") else [], 2,
         r"data\.paths\.0: invalid line .*data\.jsonl:2: not UTF-8"),
    Case("config-check-many-invalid-lines-capped",
         lambda c: ["config", "check", str(c.train_config())] if c.write("data/adds/data.jsonl", BAD_LINE * 30)
         else [], 2, r"\.\.\. 10 more invalid line\(s\) in task adds"),
    Case("issue13-config-check-duplicate-data-paths",
         lambda c: ["config", "check", str(c.train_config(data={"paths": [str(write_chat_data(c.path("d1"))),
                                                                          str(c.path("d1")) + "/"]}))], 2,
         r"data\.paths\.1: same path as data\.paths\.0"),
    Case("config-check-data-paths-same-task-name",
         lambda c: ["config", "check", str(c.train_config(data={"paths": [str(write_chat_data(c.path("a/x"))),
                                                                          str(write_chat_data(c.path("b/x")))]}))],
         2, r"data\.paths: data paths .* both give task name 'x'"),
    Case("config-check-ok-is-what-run-accepts", lambda c: ["config", "check", str(c.train_config())], 0,
         r"t\.yaml: ok \(1 member: main\)", stream="out"),
    Case("config-empty-file", lambda c: ["config", "check", str(c.write("e.yaml", ""))], 2,
         r"e\.yaml: the config must be a YAML mapping of sections"),
    Case("config-top-level-list", lambda c: ["config", "check", str(c.write("l.yaml", "- a\n- b\n"))], 2,
         r"must be a YAML mapping"),
    Case("config-invalid-yaml", lambda c: ["config", "check", str(c.write("y.yaml", "run:\n  name: [a\n"))], 2,
         r"y\.yaml:\d+: invalid YAML"),
    Case("config-unknown-key", lambda c: ["config", "check", str(c.config(train={"learnig_rate": 1.0}))], 2,
         r"train\.learnig_rate: unknown key \(did you mean 'learning_rate'\?\)"),
    Case("config-wrong-type", lambda c: ["config", "check", str(c.config(cluster={"nodes": "many"}))], 2,
         r"cluster\.nodes: .*\(got 'many'\)"),
    Case("config-is-a-directory", lambda c: ["config", "check", str(c.tmp)], 2, r"is a directory; give the config file"),
    Case("config-missing", lambda c: ["config", "check", "absent.yaml"], 2, r"absent\.yaml: cannot read config"),
    Case("config-bad-run-name", lambda c: ["config", "check", str(c.config(run={"name": "a/b"}))], 2,
         r"run\.name: .*letters, digits"),
    Case("config-unknown-task", lambda c: ["config", "check", str(c.config(generate={"tasks": ["mbppp"]}))], 2,
         r"generate\.tasks"),
    Case("config-missing-model-path", lambda c: ["config", "check", str(c.config(model={"path": "no/model"}))], 2,
         r"model\.path: model directory does not exist"),
    Case("config-missing-benchmarks", lambda c: ["config", "check", str(c.config(generate={"benchmarks": "no/b"}))],
         2, r"generate\.benchmarks: benchmark directory does not exist"),
    Case("config-missing-data-path",
         lambda c: ["config", "check", str(c.train_config(data={"paths": ["no/data"]}))], 2,
         r"data\.paths\.0: data path does not exist"),
    Case("config-sweep-unknown-key", lambda c: ["config", "check", str(c.config(sweep={"train.lr": [1, 2]}))], 2,
         r"sweep\.train\.lr: not a config key"),
    Case("config-sweep-empty", lambda c: ["config", "check", str(c.config(sweep={"train.learning_rate": []}))], 2,
         r"empty sweep list"),
    Case("config-sweep-duplicates",
         lambda c: ["config", "check", str(c.config(sweep={"train.learning_rate": [0.1, 0.1]}))], 2,
         r"duplicate values"),
    Case("config-sweep-member-problem-tagged",
         lambda c: ["config", "check", str(c.train_config() and c.config(
             "s.yaml", train={"enabled": True, "learning_rate": 1e-3, "lora_rank": 4, "lora_alpha": 8},
             data={"paths": [str(c.path("data/adds"))], "seq_length": 64},
             sweep={"train.min_lr": [1e-5, 1e-2]}))], 2,
         r"train\.min_lr: min_lr 0\.01 is above learning_rate 0\.001 \[sweep member "),
    Case("config-qlora-zero3", lambda c: ["config", "check", str(c.train_config(train={"peft": "qlora",
                                                                                      "zero_stage": 3}))], 2,
         r"train\.zero_stage: ZeRO-3 cannot shard"),
    Case("config-task-weights-unknown-task",
         lambda c: ["config", "check", str(c.train_config(train={"loss_mode": "task_weights",
                                                                 "task_weights": {"nope": 1.0}}))], 2,
         r"train\.task_weights: unknown task\(s\) nope"),
    Case("config-early-stopping-without-valid",
         lambda c: ["config", "check", str(c.train_config(data={"valid_ratio": 0},
                                                          train={"early_stopping_patience": 2}))], 2,
         r"needs validation data"),
    Case("config-show-not-utf8", lambda c: ["config", "show", str(c.write("x.yaml", b"a: \xff\n"))], 2,
         r"x\.yaml:1: not UTF-8"),

    # ---------------------------------------------------------------- evaluate (issue 13 + own)
    Case("issue13-evaluate-multi-candidate", lambda c: evaluate_argv(c, [["a"], ["b", "c"]], "--limit", "2"), 2,
         r"generations_mbpp_m\.json: entry 1 must be a list holding exactly one string \(greedy, 1 sample\), "
         r"got 2 candidates", absent=("ev/metrics_m/metrics_mbpp_m.json",)),
    Case("issue13-evaluate-rescores-other-generations",
         lambda c: evaluate_argv(c, reference_solutions(c, 2), "--limit", "2")
         if (run_cli_quiet(evaluate_argv(c, [["pass"], ["pass"]], "--limit", "2")) == 0) else [], 0,
         r"re-scoring mbpp: .*metrics_mbpp_m\.json made from other inputs: input generations changed",
         markers_may_change=True, check=in_output("mbpp  pass@1 1.0000")),
    Case("evaluate-rescores-other-limit",
         lambda c: evaluate_argv(c, reference_solutions(c, 1), "--limit", "1")
         if (run_cli_quiet(evaluate_argv(c, reference_solutions(c, 2), "--limit", "2")) == 0
             and generations(c, reference_solutions(c, 1))) else [], 0,
         r"re-scoring mbpp: .*(scored with limit 2, now 1|input generations changed)", markers_may_change=True),
    Case("evaluate-reuses-same-generations",
         lambda c: evaluate_argv(c, reference_solutions(c, 2), "--limit", "2")
         if run_cli_quiet(evaluate_argv(c, reference_solutions(c, 2), "--limit", "2")) == 0 else [], 0,
         r"^mbpp  pass@1 1\.0000$", stream="out", check=lambda c, r: "re-scoring" not in r.err),
    Case("evaluate-generations-missing", lambda c: ["evaluate", "--generations", "none", "--model", "m",
                                                    "--benchmarks", str(c.bench), "--out", "ev"], 2,
         r"none: generations folder not found", absent=("ev",)),
    Case("evaluate-not-json", lambda c: evaluate_argv(c, "[[", "--limit", "1"), 2, r"not valid JSON", absent=("ev",)),
    Case("evaluate-not-a-list", lambda c: evaluate_argv(c, {"a": 1}, "--limit", "1"), 2,
         r"expected a JSON list of 1 lists of strings, got dict", absent=("ev",)),
    Case("evaluate-entry-not-a-list", lambda c: evaluate_argv(c, ["x"], "--limit", "1"), 2,
         r"entry 0 is str, expected a list of strings"),
    Case("evaluate-empty-entry", lambda c: evaluate_argv(c, [[]], "--limit", "1"), 2, r"entry 0 is an empty list"),
    Case("evaluate-non-string", lambda c: evaluate_argv(c, [[1]], "--limit", "1"), 2,
         r"entry 0 holds a non-string candidate"),
    Case("evaluate-wrong-count", lambda c: evaluate_argv(c, [["a"]], "--limit", "2"), 2,
         r"has 1 entries, the task has 2 problems", absent=("ev/metrics_m",)),
    Case("evaluate-unknown-task", lambda c: evaluate_argv(c, [["a"]], "--tasks", "mbppp"), 2, r"mbppp"),
    Case("evaluate-wrong-model-name", lambda c: ["evaluate", "--generations", generations(c, [["a"]], model="x"),
                                                 "--model", "m", "--benchmarks", str(c.bench), "--out", "ev"], 2,
         r"file name does not end with _m\.json \(is --model right\?\)"),
    Case("evaluate-host-without-flag", lambda c: evaluate_argv(c, [["a"]], "--limit", "1", unsafe=False), 2,
         r"unsafe|--unsafe-host"),

    # ---------------------------------------------------------------- pack
    Case("pack-no-source", lambda c: ["pack"], 2, r"pack needs RUN\|GENERATIONS_DIR \(or --check ZIP\)"),
    Case("pack-check-missing-zip", lambda c: ["pack", "--check", "none.zip"], 2, r"none\.zip: no such file"),
    Case("pack-check-with-source", lambda c: ["pack", "x", "--check", "y.zip"], 2,
         r"pack --check ZIP takes no RUN/GENERATIONS_DIR and no --out"),
    Case("pack-check-not-a-zip", lambda c: ["pack", "--check", str(c.write("z.zip", "not a zip"))], 2,
         r"z\.zip: not a readable zip file"),
    Case("pack-multi-candidate", lambda c: ["pack", generations(c, [["a", "b"]], folder="generations_m"),
                                            "--assume-greedy", "--allow-partial", "--out", "s.zip"], 2,
         r"entry 0 must be a list holding exactly one string", absent=("s.zip",)),
    Case("pack-missing-files", lambda c: ["pack", generations(c, [["a"]], folder="generations_m"),
                                          "--assume-greedy", "--out", "s.zip"], 2, r"submission refused",
         absent=("s.zip",)),
]


def run_cli_quiet(argv: list[str]) -> int:
    """A preparatory command of a case (its output is not the case's)."""
    import contextlib
    import io

    from mft_hpc.cli.main import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


def test_the_table_has_every_issue_case_and_sixty_more():
    issue = [case for case in CASES if case.id.startswith("issue13-")]
    own = [case for case in CASES if not case.id.startswith("issue13-")]
    assert len({case.id for case in CASES}) == len(CASES)
    assert len(issue) >= 30 and len(own) >= 60, (len(issue), len(own))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_front_door(case, tmp_path, tiny_model_dir, benchmarks_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp=tmp_path, model=tiny_model_dir, bench=benchmarks_dir)
    ctx.started = time.monotonic()
    try:
        assert_case(case, ctx, capsys)
    finally:
        for finalizer in reversed(ctx.finalizers):
            finalizer()
