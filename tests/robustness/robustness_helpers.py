"""The table-driven robustness suite's machinery: a case is an argv built in a scratch folder, the
exit code, the one line that must say what is wrong, and nothing that looks finished afterwards.

Cases run the CLI entry point in-process (``mft_hpc.cli.main.main``), so a table of a hundred
cases costs seconds, not a Python start each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from mft_hpc.cli.main import main


@dataclass
class Ctx:
    """A case's scratch folder (the current directory while it runs) and the shared fixtures."""

    tmp: Path
    model: Path
    bench: Path
    finalizers: list = field(default_factory=list)
    started: float = 0.0  # monotonic time the case began (for cases that must not wait)

    def path(self, rel: str) -> Path:
        return self.tmp / rel

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def sections(self, **overrides) -> dict:
        """A valid generation-only config on the tiny model (training off); ``overrides`` replace sections."""
        base = {
            "run": {"name": "r", "root": str(self.tmp / "runs")},
            "cluster": {"executor": "local", "time": 10},
            "model": {"path": str(self.model)},
            "train": {"enabled": False},
            "generate": {"benchmarks": str(self.bench), "limit": 2, "tasks": ["mbpp"], "backend": "exact",
                         "dtype": "float32", "max_new_tokens": 4},
            "evaluate": {"enabled": False},
            "submission": {"enabled": False},
        }
        for key, value in overrides.items():
            if value is None:
                base.pop(key, None)
            elif isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return base

    def config(self, rel: str = "c.yaml", **overrides) -> Path:
        return self.write(rel, yaml.safe_dump(self.sections(**overrides), sort_keys=False))

    def train_config(self, rel: str = "t.yaml", data: dict | None = None, train: dict | None = None) -> Path:
        data_dir = self.tmp / "data" / "adds"
        if not data_dir.exists():
            write_chat_data(data_dir)
        return self.config(rel, model={"path": str(self.model)},
                           data={"paths": [str(data_dir)], "seq_length": 64, **(data or {})},
                           train={"enabled": True, "lora_rank": 4, "lora_alpha": 8, **(train or {})})

    def defer(self, fn: Callable[[], None]) -> None:
        self.finalizers.append(fn)


def write_chat_data(folder: Path, n: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"chat_rounds": [{"role": "human", "content": f"add {i}"},
                                         {"role": "bot", "content": f"x + {i}"}]}) for i in range(n)]
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    code: int
    message: str                       # a regex one output line must match
    stream: str = "err"                # where that line is: err | out
    absent: tuple[str, ...] = ()       # paths (relative to the scratch folder) that must not exist after
    check: Callable[[Ctx, "Result"], None] | None = None
    markers_may_change: bool = False   # a successful verb that finishes work may write `.done` markers


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], capsys) -> Result:
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # --help / --version
        code = exc.code if isinstance(exc.code, int) else 0
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def done_markers(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*.done")}


def assert_case(case: Case, ctx: Ctx, capsys) -> Result:
    argv = case.argv(ctx)
    before = done_markers(ctx.tmp)
    result = run_cli(argv, capsys)
    shown = f"argv={argv}\nexit={result.code}\nstdout={result.out[-2000:]}\nstderr={result.err[-2000:]}"
    assert result.code == case.code, shown
    assert "Traceback" not in result.out + result.err, shown
    text = result.err if case.stream == "err" else result.out
    matching = [line for line in text.splitlines() if re.search(case.message, line)]
    assert matching, f"no line matches {case.message!r}\n{shown}"
    if case.code == 2:
        # every error is one line that names the problem; nothing else is printed as an error
        errors = [line for line in result.err.splitlines() if line.strip()]
        assert all(line.startswith("mft-hpc: error: ") for line in errors), shown
        assert matching[0].startswith("mft-hpc: error: "), shown
    if case.code != 0 or not case.markers_may_change:
        assert done_markers(ctx.tmp) == before, f"a .done marker appeared or changed\n{shown}"
    for rel in case.absent:
        assert not ctx.path(rel).exists(), f"{rel} exists\n{shown}"
    if case.check is not None:
        case.check(ctx, result)
    return result


# -- run directories built without running anything ------------------------------------------------

def make_run(ctx: Ctx, name: str = "r", **overrides) -> Path:
    """A run directory with every element planned (the real create path of `mft-hpc run`)."""
    from mft_hpc.config import load_config
    from mft_hpc.controller.operations import create_run

    config = ctx.config(f"{name}.yaml", run={"name": name, "root": str(ctx.tmp / "runs")}, **overrides)
    return create_run(load_config(config)).run.root


def record_attempt(root: Path, label: str, job_id: str, log_text: str | None = None, process=None) -> Path:
    """Record a submission of ``label`` as the controller does; its log is written under logs/<job id>/."""
    from mft_hpc.rundir.state import StateStore

    log = root / "logs" / job_id / f"{job_id}_0_log.err"
    if log_text is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(log_text)
    with StateStore(root / "state.sqlite") as store:
        store.record_attempt(store.element(label).id, job_id, log_path=str(log), process=process)
    return log


def states(root: Path) -> dict[str, tuple]:
    from mft_hpc.rundir.state import StateStore

    with StateStore.open_reader(root / "state.sqlite") as store:
        return {e.label: (e.state, e.last_error) for e in store.elements()}


def finish_generation(root: Path, task: str = "mbpp", model: str = "r", entries: int = 2) -> Path:
    """A generations file with its certifying `.done`, as the generation stage leaves it."""
    from mft_hpc.generate.outputs import write_generations

    path = root / "members" / "main" / "generate" / f"generations_{model}" / f"generations_{task}_{model}.json"
    write_generations(path, [["def f():\n    return 1"] for _ in range(entries)], {"problems": entries})
    return path


def hold_write_lock(ctx: Ctx, db: Path, seconds: float) -> None:
    """Another process holding state.sqlite's write transaction for ``seconds`` (stopped at teardown)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); c.execute('UPDATE elements SET updated_at = updated_at')\n"
         f"print('locked', flush=True); time.sleep({seconds}); c.execute('COMMIT')\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    ctx.defer(lambda: (holder.kill(), holder.wait()))


def corrupt(path: Path, how: str) -> None:
    """Break a file the ways disks and people do: truncate it, overwrite it, empty it."""
    data = path.read_bytes()
    for suffix in ("-wal", "-shm"):  # a checkpointed store: the main file holds everything
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.unlink()
    if how == "truncate":  # inside the first page: the schema itself is cut
        path.write_bytes(data[:1024])
    elif how == "garbage":
        path.write_bytes(b"this is not a database\n" * 64)
    elif how == "header":
        path.write_bytes(b"\0" * 100 + data[100:])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(how)


def checkpoint(db: Path) -> None:
    """Fold the WAL into the main file (what closing the last connection does)."""
    import sqlite3

    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def tree_snapshot(root: Path) -> dict[str, tuple]:
    """Every file under ``root``: (size, mtime_ns, inode); any write shows."""
    snapshot = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            snapshot[str(path)] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    snapshot["<dirs>"] = tuple(sorted(str(p) for p in root.rglob("*") if p.is_dir()))
    return snapshot


def run_in(cwd: Path):
    """chdir for the duration (cases run with the scratch folder as the current directory)."""
    class _Chdir:
        def __enter__(self):
            self.old = os.getcwd()
            os.chdir(cwd)

        def __exit__(self, *exc):
            os.chdir(self.old)

    return _Chdir()
