"""Preemption and time-limit signals, deferred to the next optimizer-step boundary.

CPython runs every Python signal handler in the main thread, between two bytecodes of whatever that
thread is doing: here, the middle of a training step. submitit's USR2 handler calls ``checkpoint()``
and requeues at once, so a save made there would capture a half-done step, and waiting there for
the loop would deadlock (the loop is the interrupted thread). While training runs, ``PreemptionGuard``
takes the handlers over instead:

- the requeue signal (USR2: Slurm's ``--signal=USR2@90`` before the time limit, preemption with
  ``PreemptParameters=send_user_signal``, ``scancel --signal=USR2``) is only recorded. The loop reads
  the flag in the all-reduce every micro-batch already does (every rank agrees on the same step at no
  extra collective), saves a checkpoint after that optimizer step, then ``hand_over()`` calls
  submitit's handler, which calls ``checkpoint()``, requeues and exits (global rank 0; the other
  ranks exit too). A watchdog re-delivers the signal to submitit's handler when no hand-over
  happened within ``grace_s`` (half the signal lead): the job is then requeued from the last complete
  checkpoint, as it would be without the guard.
- SIGTERM (``scontrol requeue``, preemption with ``PreemptMode=REQUEUE``, ``scancel``: Slurm kills
  KillWait/GraceTime seconds later and requeues by itself; submitit ignores TERM) is recorded too;
  the loop saves at the next boundary and trains on. Whether the save beats the kill depends on that
  delay; an unfinished save never looks complete.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

SLURM_SIGNAL_LEAD_S = 90.0  # submitit's SlurmExecutor signal_delay_s, which mft_hpc.slurm.executor keeps
LOCAL_SIGNAL_LEAD_S = 30.0  # submitit's LocalExecutor default


class PreemptionGuard:
    """Context manager; inert (``active`` False) unless built active, e.g. by ``for_current_job``."""

    settle_s = 5.0  # how long hand_over lets a signal the watchdog re-delivered reach its handler

    def __init__(self, grace_s: float, *, requeue_signal: int = signal.SIGUSR2, active: bool = True):
        self.grace_s, self.requeue_signal, self.active = grace_s, requeue_signal, active
        self._requeue = threading.Event()
        self._term = threading.Event()
        self._lock = threading.Lock()
        self._handed_over = False
        self._watchdog_fired = False
        self._timer: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    @classmethod
    def for_current_job(cls) -> "PreemptionGuard":
        """Active inside a submitit job whose checkpoint-and-requeue handler is installed (main thread)."""
        executor = os.environ.get("SUBMITIT_EXECUTOR")
        if not executor or threading.current_thread() is not threading.main_thread():
            return cls(0, active=False)
        from submitit import JobEnvironment
        from submitit.core.job_environment import SignalHandler

        signum = JobEnvironment._usr_sig()
        handler = signal.getsignal(signum)
        if not isinstance(getattr(handler, "__self__", None), SignalHandler):
            return cls(0, active=False)
        lead = float(os.environ.get("SUBMITIT_LOCAL_SIGNAL_DELAY_S", LOCAL_SIGNAL_LEAD_S)) \
            if executor == "local" else SLURM_SIGNAL_LEAD_S
        return cls(lead / 2, requeue_signal=signum)

    # -- installing -------------------------------------------------------------------------
    def __enter__(self) -> "PreemptionGuard":
        if self.active:
            for signum, handler in ((self.requeue_signal, self._on_requeue_signal), (signal.SIGTERM, self._on_term)):
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, handler)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.active:
            return
        if self._timer is not None:
            self._timer.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        with self._lock:
            pending = self._requeue.is_set() and not self._handed_over
            self._handed_over = True
        if exc_type is None and pending:
            # training ended (its last checkpoint is saved) before the loop saw the signal: submitit's
            # handler gets it now, as it would have without the guard
            signal.raise_signal(self.requeue_signal)

    # -- the handlers (main thread) ---------------------------------------------------------
    def _on_requeue_signal(self, signum: int, frame) -> None:
        if self._watchdog_fired:  # re-delivered by the watchdog: submitit's handler, now
            self._call_previous(signum, frame)
            return
        if self._requeue.is_set():
            return
        log.warning("caught %s: checkpoint at the next optimizer step, then requeue "
                    "(fallback to the last checkpoint in %.0f s)", signal.Signals(signum).name, self.grace_s)
        self._requeue.set()
        self._timer = threading.Timer(self.grace_s, self._watchdog)
        self._timer.daemon = True
        self._timer.start()

    def _on_term(self, signum: int, frame) -> None:
        log.warning("caught SIGTERM: checkpoint at the next optimizer step (Slurm kills or requeues the job)")
        self._term.set()

    def _watchdog(self) -> None:
        with self._lock:
            if self._handed_over:
                return
            self._handed_over = self._watchdog_fired = True
        log.warning("no optimizer step within %.0f s of the signal: requeueing from the last complete checkpoint",
                    self.grace_s)
        signal.pthread_kill(threading.main_thread().ident, self.requeue_signal)

    def _call_previous(self, signum: int, frame) -> None:
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)

    # -- the loop's side --------------------------------------------------------------------
    def poll(self) -> tuple[bool, bool]:
        """(a SIGTERM came since the last poll, the requeue signal came): this rank's view."""
        term = self._term.is_set()
        if term:
            self._term.clear()
        return term, self._requeue.is_set()

    def hand_over(self) -> None:
        """After the boundary checkpoint (all ranks, no collective follows): submitit's handler calls
        ``checkpoint()``, requeues and exits on global rank 0; the ranks it returns on exit as well,
        as submitit's own exit does (no result is written; Slurm's requeue or submitit's local
        controller restarts every task)."""
        if not self.active:
            return
        with self._lock:
            mine = not self._handed_over
            self._handed_over = True
        if self._timer is not None:
            self._timer.cancel()
        if mine:
            log.warning("checkpoint saved: handing the %s over to submitit (checkpoint + requeue)",
                        signal.Signals(self.requeue_signal).name)
            self._call_previous(self.requeue_signal, None)
        else:  # the watchdog re-delivered the signal: submitit's handler runs here, in the main thread
            time.sleep(self.settle_s)
        raise SystemExit(-1)

