"""PreemptionGuard: real signals sent to this process. The "previous" handlers stand where
submitit's SignalHandler is in a job (global rank 0 requeues and exits; other ranks return); the
guard with submitit's own handler runs in tests/train/test_slurm.py."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mft_hpc.train.preemption import PreemptionGuard


class _Requeued(Exception):
    """What submitit's handler ends with on rank 0 (there: SystemExit after `scontrol requeue`)."""


@pytest.fixture
def submitit_like():
    """A USR2 handler recording its calls and ending like submitit's rank-0 handler; restored after."""
    calls = []

    def handler(signum, frame):
        calls.append(signum)
        raise _Requeued

    previous = signal.signal(signal.SIGUSR2, handler)
    yield handler, calls
    signal.signal(signal.SIGUSR2, previous)


def _signal_self(signum):
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # Python runs the handler between two bytecodes of the main thread


def test_requeue_signal_only_records_until_hand_over(submitit_like):
    handler, calls = submitit_like
    guard = PreemptionGuard(grace_s=30)
    with pytest.raises(_Requeued):
        with guard:
            _signal_self(signal.SIGUSR2)
            assert calls == [] and guard.poll() == (False, True)  # mid-step: nothing requeued yet
            guard.hand_over()
    assert calls == [signal.SIGUSR2]
    assert signal.getsignal(signal.SIGUSR2) is handler  # submitit's handler is back


def test_watchdog_gives_the_signal_to_submitit_when_no_step_boundary_comes(submitit_like):
    _, calls = submitit_like
    started = time.monotonic()
    with pytest.raises(_Requeued):
        with PreemptionGuard(grace_s=0.3):
            _signal_self(signal.SIGUSR2)
            while time.monotonic() - started < 10:  # a step that never ends
                time.sleep(0.01)
    assert calls == [signal.SIGUSR2] and 0.3 <= time.monotonic() - started < 5


def test_signal_pending_when_training_ends_goes_to_submitit_at_exit(submitit_like):
    _, calls = submitit_like
    with pytest.raises(_Requeued):
        with PreemptionGuard(grace_s=30):
            _signal_self(signal.SIGUSR2)
    assert calls == [signal.SIGUSR2]


def test_a_rank_that_submitit_does_not_requeue_on_exits_like_submitit_after_the_checkpoint():
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))  # rank > 0: returns
    try:
        guard = PreemptionGuard(grace_s=30)
        with pytest.raises(SystemExit) as exited:
            with guard:
                _signal_self(signal.SIGUSR2)
                guard.hand_over()
        assert calls == [signal.SIGUSR2] and exited.value.code == -1
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_sigterm_asks_for_one_checkpoint_and_training_goes_on():
    before = signal.getsignal(signal.SIGTERM)
    guard = PreemptionGuard(grace_s=30)
    with guard:
        _signal_self(signal.SIGTERM)  # the process survives it
        assert guard.poll() == (True, False)
        assert guard.poll() == (False, False)  # one checkpoint per SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_active_only_inside_a_submitit_job_with_its_handler(tmp_path, monkeypatch):
    from submitit import JobEnvironment
    from submitit.core.job_environment import SignalHandler
    from submitit.core.utils import DelayedSubmission, JobPaths

    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    assert not PreemptionGuard.for_current_job().active  # a plain process (tests, a login node)
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    assert not PreemptionGuard.for_current_job().active  # submitit's handler is not installed
    handler = SignalHandler(JobEnvironment(), JobPaths(tmp_path, job_id="1"), DelayedSubmission(print))
    previous = signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
    try:
        guard = PreemptionGuard.for_current_job()
        assert guard.active and guard.grace_s == 45 and guard.requeue_signal == signal.SIGUSR2
    finally:
        signal.signal(signal.SIGUSR2, previous)


@pytest.mark.slow
def test_signals_checkpoint_after_the_current_step_and_the_resumed_run_matches(tmp_path, reference_run,
                                                                                submitit_like):
    """SIGTERM after step 1 and USR2 after step 4 (save_steps 3): checkpoints at steps 2 and 5, the
    second one then hands over (requeue); the rerun starts at 5 and gives the uninterrupted losses."""
    from mft_hpc.train import train_member
    from tests.train.helpers import metric_rows

    config, straight_dir = reference_run
    _, calls = submitit_like
    member = tmp_path / "signalled"

    def send_signals(state):
        if state.step in (1, 4):
            os.kill(os.getpid(), signal.SIGTERM if state.step == 1 else signal.SIGUSR2)

    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # pytest survives a broken guard
    try:
        with pytest.raises(_Requeued):
            train_member(config, member, on_step=send_signals, preemption=PreemptionGuard(grace_s=60))
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    assert calls == [signal.SIGUSR2]
    history = member / "train" / "checkpoints" / "history.jsonl"
    saves = [(row["step"], row["reason"]) for row in map(json.loads, history.read_text().splitlines())]
    assert saves == [(2, "term-signal"), (3, "periodic"), (5, "requeue-signal")]
    assert [r["step"] for r in metric_rows(member)] == [1, 2, 3, 4, 5]  # nothing trained past the checkpoint

    train_member(config, member)  # the requeued job
    starts = metric_rows(member, "start")
    assert [(r["step"], r.get("resumed_from")) for r in starts] == [(0, None), (5, "step_00000005")]
    resumed, straight = metric_rows(member), metric_rows(straight_dir)
    assert [r["step"] for r in resumed] == list(range(1, 21))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight]  # exact, fp32 on CPU
    assert (member / "train" / "adapter.done").exists()
