"""Faults of a real local run (the tiny model generating sharded tasks): SIGKILL mid-generation,
state.sqlite broken at four points of a run, and a copy of a run resumed somewhere else."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from robustness_helpers import corrupt, run_cli, tree_snapshot

from mft_hpc.generate.rawfile import raw_path
from mft_hpc.rundir import is_done
from mft_hpc.rundir.state import COMPLETED, FAILED, PLANNED, StateStore

pytestmark = pytest.mark.slow

TASKS = ["mbpp", "humanevalsynthesize-python"]
# a two-member sweep: the local controller generates member 8 in one job, then member 12 in another
FIRST, SECOND = "maxnewtokens8", "maxnewtokens12"
SHARDS = {(member, task, shard) for member in (FIRST, SECOND) for task in TASKS for shard in (0, 1)}


def write_config(folder: Path, tiny_model_dir: Path, benchmarks_dir: Path, name: str) -> Path:
    config = {
        "run": {"name": name, "root": str(folder / "runs")},
        "cluster": {"executor": "local", "time": 10},
        "model": {"path": str(tiny_model_dir)},
        "train": {"enabled": False},
        "generate": {"benchmarks": str(benchmarks_dir), "limit": 4, "shard_size": 2, "tasks": TASKS,
                     "backend": "exact", "dtype": "float32", "max_new_tokens": 8},
        "evaluate": {"enabled": False},
        "submission": {"enabled": False},
        "sweep": {"generate.max_new_tokens": [8, 12]},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def raw_shard(root: Path, member: str, task: str, shard: int) -> Path:
    return raw_path(root / "members" / member / "generate", task, shard)


def label(member: str, task: str, shard: int) -> str:
    return f"generate/{member}/{task}/{shard}"


def start_run(config: Path, cwd: Path) -> subprocess.Popen:
    """`mft-hpc run` in its own session, so a SIGKILL of the group takes the run and its local job."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "mft_hpc", "run", str(config)], cwd=cwd, env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def second_member_generating(root: Path) -> bool:
    """The first member's shards are finished and the second member's generation job is submitted."""
    if not all(is_done(raw_shard(root, m, t, k)) for m, t, k in SHARDS if m == FIRST):
        return False
    with StateStore.open_reader(root / "state.sqlite") as store:
        return all(e.slurm_job_id for e in store.elements(stage="generate", member=SECOND))


def kill_mid_generation(config: Path, root: Path) -> None:
    """Start the run, SIGKILL it (the controller and its job) while the second member generates."""
    run = start_run(config, config.parent)
    try:
        wait_for(lambda: second_member_generating(root) or run.poll() is not None, 300, "the second member's job")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        out, err = run.communicate()
    assert run.returncode == -signal.SIGKILL, f"the run ended on its own ({run.returncode}): {out}\n{err}"
    finished = {key for key in SHARDS if is_done(raw_shard(root, *key))}
    assert {m for m, _, _ in finished} == {FIRST}, f"killed too late to leave work: {finished}"


def element_states(root: Path) -> dict[str, tuple]:
    """What `repair` must restore: each element's state, attempts, latest job and its log (relative to
    the run directory, so a copy compares equal)."""
    with StateStore.open_reader(root / "state.sqlite") as store:
        return {e.label: (e.state, e.attempts, e.slurm_job_id,
                          e.log_path and str(Path(e.log_path).relative_to(root.resolve())))
                for e in store.elements()}


def errors(root: Path) -> dict[str, str | None]:
    with StateStore.open_reader(root / "state.sqlite") as store:
        return {e.label: e.last_error for e in store.elements()}


def finished_files(root: Path) -> dict[str, tuple]:
    """Every certified output (and its marker) with its inode and mtime: regenerating one changes them."""
    files = {}
    for marker in root.rglob("*.done"):
        for path in (marker, marker.with_suffix("")):
            stat = path.stat()
            files[str(path)] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return files


def repaired(root: Path, capsys) -> dict[str, tuple]:
    result = run_cli(["repair", str(root)], capsys)
    assert result.code == 0 and "rebuilt state.sqlite" in result.out, result
    assert list(root.glob("state.sqlite.broken-*")), "the broken file was not kept"
    return element_states(root)


def break_store(root: Path, how: str) -> None:
    for old in root.glob("state.sqlite.broken-*"):  # keep one generation of evidence per point
        old.unlink()
    corrupt(root / "state.sqlite", how)


def test_sigkill_mid_generation_then_status_copy_resume_and_repair(tmp_path, tiny_model_dir, benchmarks_dir, capsys,
                                                                   monkeypatch):
    """One killed run: status fails it in one refresh; a renamed copy resumed elsewhere writes only inside
    itself; the original resumes redoing only unfinished shards; repair restores the truth after the
    kill, after completion, and after an output went stale (three of the four points; the fourth,
    under a live controller, is the next test)."""
    config = write_config(tmp_path, tiny_model_dir, benchmarks_dir, "killed")
    root = tmp_path / "runs" / "killed"
    kill_mid_generation(config, root)
    finished = {key for key in SHARDS if is_done(raw_shard(root, *key))}
    before = finished_files(root)

    # one refresh (one `status`) says what happened: the job's process is gone
    monkeypatch.chdir(tmp_path)
    result = run_cli(["status", str(root), "--plain"], capsys)
    assert result.code == 0 and "Traceback" not in result.err, result
    states, why = element_states(root), errors(root)
    for key in SHARDS:
        if key in finished:
            assert states[label(*key)][0] == COMPLETED, states
        else:
            assert states[label(*key)][0] == FAILED and why[label(*key)].startswith("process gone (pid "), (states, why)
    assert states["collect/_run/0"][0] == PLANNED

    # repair, point "after a SIGKILL mid-generation" (on a copy: the original goes on below)
    killed_copy = shutil.copytree(root, tmp_path / "repair" / "killed", symlinks=True)
    break_store(killed_copy, "truncate")
    assert repaired(killed_copy, capsys) == states

    # a copy under another name and path, resumed from elsewhere, writes only inside the copy
    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(root, copy, symlinks=True)
    original = tree_snapshot(tmp_path / "runs")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    result = run_cli(["resume", str(copy)], capsys)
    assert result.code == 0, result
    assert tree_snapshot(tmp_path / "runs") == original
    assert sorted(os.listdir(tmp_path / "cwd")) == []
    with StateStore.open_reader(copy / "state.sqlite") as store:
        copied = store.elements()
    assert {e.state for e in copied} == {COMPLETED}, copied
    assert all(Path(e.log_path).is_relative_to(copy) for e in copied if e.log_path), copied
    shown = run_cli(["logs", str(copy), "collect/_run"], capsys)
    assert shown.code == 0 and "Traceback" not in shown.out + shown.err

    # the original resumes too, regenerating nothing that was finished
    monkeypatch.chdir(tmp_path)
    result = run_cli(["resume", str(root)], capsys)
    assert result.code == 0, result
    submitted = {(m.group(1), m.group(2), int(m.group(3)))
                 for m in re.finditer(r"^submitted generate +(\S+) +(\S+) shard (\d+) ", result.out, re.MULTILINE)}
    assert submitted == SHARDS - finished, result.out
    after = finished_files(root)
    assert {path: after[path] for path in before} == before  # same inode, mtime and size: not redone
    truth = element_states(root)
    assert {state for state, *_ in truth.values()} == {COMPLETED}
    assert is_done(root / "collect" / "leaderboard.json")

    # repair, point "after completion" (attempts: 1 for what finished first, 2 for the rest)
    assert sorted(attempts for _, attempts, *_ in truth.values()).count(2) == len(SHARDS - finished)
    break_store(root, "garbage")
    assert repaired(root, capsys) == truth

    # repair, point "after an output went stale" (the leaderboard truncated by hand), run.json broken too
    leaderboard = root / "collect" / "leaderboard.json"
    leaderboard.write_text(leaderboard.read_text()[:5])
    assert run_cli(["status", str(root), "--plain"], capsys).code == 0
    truth = element_states(root)
    assert truth["collect/_run/0"][0] == FAILED
    break_store(root, "empty")
    (root / "run.json").write_text("{}")
    assert repaired(root, capsys) == truth
    assert json.loads((root / "run.json").read_text())["members"] == [FIRST, SECOND]


def test_repair_after_the_store_was_replaced_under_a_live_controller(tmp_path, tiny_model_dir, benchmarks_dir,
                                                                     capsys, monkeypatch):
    """The fourth point: state.sqlite replaced by garbage while `mft-hpc run` (local) is generating."""
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, tiny_model_dir, benchmarks_dir, "live")
    live = tmp_path / "runs" / "live"
    run = start_run(config, tmp_path)
    wait_for(lambda: second_member_generating(live), 300, "the second member's job")
    garbage = live / "garbage"
    garbage.write_bytes(b"not a database\n" * 100)
    os.replace(garbage, live / "state.sqlite")
    status = run_cli(["status", str(live), "--plain"], capsys)
    assert status.code == 0 and "state store unreadable" in status.err, status
    out, err = run.communicate(timeout=300)
    # the controller notices at its next write that its file was replaced: one line, exit 2
    assert run.returncode == 2, (out, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("mft-hpc: error: "), err
    assert "replaced or deleted while this command was writing it" in err
    truth = repaired(live, capsys)
    assert {name: state for name, (state, *_) in truth.items()} == {
        **{label(*key): COMPLETED for key in SHARDS}, "collect/_run/0": PLANNED}
    assert all(attempts == 1 for name, (_, attempts, *_) in truth.items() if name.startswith("generate"))
