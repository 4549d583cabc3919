"""`mft-hpc status` and `mft-hpc logs`, rendered from a fake run directory and its state store."""

from __future__ import annotations

import os
from pathlib import Path

from dashboard_fakes import FAST, SLOW
from rich.console import Console

from mft_hpc.cli.main import main
from mft_hpc.dashboard import read_run, render, render_plain
from mft_hpc.submission.competition import BASELINE_PASS1
from mft_hpc.tasks.names import TASK_NAMES

SNAPSHOT = Path(__file__).parent / "snapshots" / "status_plain.txt"


def _plain(run: Path) -> str:
    return render_plain(read_run(run)).replace(str(run), "<RUN>")


def test_plain_output_matches_the_snapshot(fake_run):
    text = _plain(fake_run)
    if os.environ.get("MFT_HPC_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def test_plain_output_shows_every_stage_and_the_failure(fake_run):
    text = _plain(fake_run)
    lines = text.splitlines()
    slow_stage = next(line for line in lines if line.startswith(f"| {SLOW}") and "step 4/8" in line)
    # generate strip: 5 synth done, synth-rust failed, fix-go and mbpp running, the rest pending
    assert "| +++++XqqqqRqR |" in slow_stage
    assert "| +++qqqqqqqqqq |" in slow_stage  # evaluate: 3 scored
    assert "+" * 13 in next(line for line in lines if line.startswith(f"| {FAST}") and "step 8/8" in line)
    assert "120/500  24%" in text
    assert "torch.OutOfMemoryError: CUDA out of memory" in text
    assert f"generate/{SLOW}/{TASK_NAMES[5]}/0" in text
    assert f"{FAST} *best*" in text


def test_rich_render_has_glyphs_sparkline_scores_and_coloured_deltas(fake_run):
    console = Console(record=True, width=220, force_terminal=True, color_system="standard")
    console.print(render(read_run(fake_run)))
    text = console.export_text(clear=False)
    assert "●" * 13 in text and "✗" in text and "◐" in text
    assert "▁" in text and "█" in text                      # loss trend
    assert f"{FAST} ★" in text
    assert f"{BASELINE_PASS1['mbpp']:.4f}" in text and "0.0933" in text
    assert "missing 10" in text                           # SLOW has 3 of 13 tasks scored
    assert "CUDA out of memory" in text
    styled = console.export_text(styles=True)
    assert "\x1b[32m+0.0500" in styled                       # better than baseline: green


def test_training_progress_eta_and_losses(fake_run):
    view = read_run(fake_run)
    slow = next(m for m in view.members if m.name == SLOW)
    # 4 of 8 steps logged 10 s apart: 4 steps left at 0.1 step/s
    assert slow.train.step == 4 and slow.train.total_steps == 8 and slow.train.eta_s == 40.0
    assert len(slow.train.losses) == 4 and slow.train.losses[0] > slow.train.losses[-1]
    assert set(slow.train.task_losses) == {"code", "chat"}
    assert slow.generation_progress["mbpp"] == (120, 500)
    assert slow.generation_progress[TASK_NAMES[0]] == (164, 164)


def test_status_without_a_tty_prints_plain_once(fake_run, capsys):
    assert main(["status", str(fake_run), "--watch"]) == 0
    captured = capsys.readouterr()
    assert "--watch needs a terminal" in captured.err
    assert captured.out.replace(str(fake_run), "<RUN>") == SNAPSHOT.read_text()


def test_status_of_a_run_without_state_store_infers_from_files(fake_run, capsys):
    (fake_run / "state.sqlite").unlink()
    for extra in fake_run.glob("state.sqlite-*"):
        extra.unlink()
    text = _plain(fake_run)
    assert "no state.sqlite yet" in text and "Failed elements" not in text
    assert "+++++........" in text


def test_status_of_a_missing_run_exits_2(tmp_path, capsys):
    assert main(["status", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_logs_prints_the_tail_by_job_id_or_label(fake_run, capsys):
    assert main(["logs", str(fake_run), f"generate/{SLOW}/{TASK_NAMES[5]}", "-n", "3"]) == 0
    assert capsys.readouterr().out == "line 97\nline 98\nline 99\n"
    element = next(e for e in read_run(fake_run).failures)
    assert main(["logs", str(fake_run), element.slurm_job_id, "-n", "1", "-f"]) == 0  # failed: follow ends
    assert capsys.readouterr().out == "line 99\n"


def test_logs_of_unknown_or_unwritten_elements_exit_2(fake_run, capsys):
    assert main(["logs", str(fake_run), "999_9"]) == 2
    assert "no element '999_9'" in capsys.readouterr().err
    assert main(["logs", str(fake_run), f"train/{FAST}"]) == 2
    assert "log not written yet" in capsys.readouterr().err


def _read_terminal(master: int, deadline: float, done) -> tuple[bool, str]:
    """Read what the program writes to its terminal until ``done(seen)`` or the deadline: (done, seen)."""
    import select
    import time

    seen = b""
    while time.monotonic() < deadline:
        if done(seen):
            return True, seen.decode(errors="replace")
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    return done(seen), seen.decode(errors="replace")


def _read_until(master: int, needle: str, deadline: float) -> str:
    shown, seen = _read_terminal(master, deadline, lambda seen: needle.encode() in seen)
    assert shown, f"{needle!r} not shown within the deadline; got {seen[-500:]}"
    return seen


def _drain_until_exit(master: int, proc, deadline: float) -> None:
    """A terminal keeps reading while the program exits: a full pty would block its last writes."""
    import time

    _read_terminal(master, deadline, lambda seen: proc.poll() is not None)
    proc.wait(timeout=max(0.1, deadline - time.monotonic()))


def test_watch_on_a_terminal_refreshes_from_files_until_ctrl_c(fake_run):
    import signal
    import subprocess
    import sys
    import time

    from dashboard_fakes import write_metrics

    master, slave = os.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "80", "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "mft_hpc", "status", str(fake_run), "--watch", "--interval", "0.2"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    try:
        deadline = time.monotonic() + 60
        _read_until(master, "missing 10", deadline)            # first render: SLOW has 3 of 13 scores
        write_metrics(fake_run, SLOW, {t: 0.5 for t in TASK_NAMES})  # evaluation finishes meanwhile
        _read_until(master, "0.5000", deadline)                 # a later refresh shows it
        proc.send_signal(signal.SIGINT)
        _drain_until_exit(master, proc, time.monotonic() + 20)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
