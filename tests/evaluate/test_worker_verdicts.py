"""Verdict rules of the worker that do not need a sandbox to state (the container tests run them for real)."""

from __future__ import annotations

from mft_hpc.evaluate.worker.go import as_timeout


def test_a_go_test_binary_stopped_by_its_own_timeout_alarm_timed_out(tmp_path):
    # the binary's -test.timeout equals our limit: under load its alarm can fire first; same verdict either way
    (tmp_path / ".stderr").write_text("panic: test timed out after 4s\n\trunning tests:\n\t\tTestHostile (4s)\n")
    assert as_timeout(("fail", "panic: test timed out after 4s"), str(tmp_path)) == ("timeout", "timed out")


def test_other_go_failures_and_passes_keep_their_verdict(tmp_path):
    (tmp_path / ".stdout").write_text("--- FAIL: TestX (0.00s)\n    main_test.go:9: error\n")
    assert as_timeout(("fail", "--- FAIL: TestX"), str(tmp_path)) == ("fail", "--- FAIL: TestX")
    assert as_timeout(("pass", ""), str(tmp_path)) == ("pass", "")
    assert as_timeout(("oom", "out of memory"), str(tmp_path)) == ("oom", "out of memory")
