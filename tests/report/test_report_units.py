"""The report's pure parts: sacct parsing, curve thinning, failure-reason grouping, measured cost."""

from __future__ import annotations

from datetime import datetime

import pytest

from mft_hpc.report.accounting import parse_sacct
from mft_hpc.report.evaluation import reason_key
from mft_hpc.report.schedule import Resources, bar_state, scheduling
from mft_hpc.report.training import thin
from mft_hpc.rundir.state import Attempt, Element

# sacct -X -D -n -P -o JobID,State,Submit,Start,End,ElapsedRaw,CPUTimeRAW,AllocTRES (Slurm 22.05)
SACCT = """\
41|REQUEUED|2026-12-03T10:50:01|2026-12-03T10:50:02|2026-12-03T10:50:05|3|6|billing=2,cpu=2,mem=500M,node=1
41|COMPLETED|2026-12-03T10:50:05|2026-12-03T10:50:17|2026-12-03T10:50:21|4|8|billing=2,cpu=2,gres/gpu=1,gres/gpu:h100=1,mem=500M,node=1
42_0|CANCELLED by 0|2026-12-03T10:50:01|2026-12-03T10:50:03|2026-12-03T10:50:04|1|1|billing=1,cpu=1,node=1
42_[1-2%4]|PENDING|2026-12-03T10:50:01|Unknown|Unknown|0|0|
42_3|RUNNING|2026-12-03T10:50:01|2026-12-03T10:50:20|Unknown|7|7|billing=1,cpu=1,node=1
"""


def test_sacct_records_keep_requeued_runs_pending_ranges_and_gpus():
    records = parse_sacct(SACCT)
    assert [(r.job_id, r.state) for r in records] == [
        ("41", "REQUEUED"), ("41", "COMPLETED"), ("42_0", "CANCELLED"), ("42_1", "PENDING"), ("42_2", "PENDING"),
        ("42_3", "RUNNING")]
    requeued, completed = records[:2]
    assert requeued.start == datetime(2026, 12, 3, 10, 50, 2).timestamp()
    assert (requeued.cpus, requeued.gpus, requeued.cpu_s, requeued.gpu_s) == (2, 0, 6.0, 0.0)
    assert (completed.cpus, completed.gpus, completed.cpu_s, completed.gpu_s) == (2, 1, 8.0, 4.0)  # typed gres not twice
    assert records[3].start is None and records[3].cpu_s == 0
    assert records[5].end is None
    assert [bar_state(r.state) for r in records] == ["requeued", "completed", "cancelled", "pending", "pending",
                                                      "running"]
    assert bar_state("OUT_OF_MEMORY") == bar_state("NODE_FAIL") == "failed"


def test_long_curves_are_thinned_keeping_first_last_and_best():
    points = [[step, 1.0 / step] for step in range(1, 5001)]
    thinned = thin(points, keep_x={1234})
    assert len(thinned) <= 301
    assert thinned[0] == [1, 1.0] and thinned[-1] == points[-1] and [1234, 1 / 1234] in thinned
    assert thin(points[:10]) == points[:10]


@pytest.mark.parametrize(("reason", "key"), [
    ("prog.cpp:12:5: error: 'vec' was not declared in this scope",
     "prog.cpp:N:N: error: '…' was not declared in this scope"),
    ('  File "/tmp/w/prog.py", line 40, in <module>\nAssertionError', 'File "…", line N, in <module>'),
    ("error[E0425]: cannot find value `x7` in this scope", "error[EN]: cannot find value `…` in this scope"),
    ("", "(timeout, no message)"),
])
def test_failure_reasons_group_by_their_shape(reason, key):
    assert reason_key("timeout" if not reason else "fail", reason) == key


def _element(element_id: int, stage: str, task: str = "") -> Element:
    return Element(element_id, "r", stage, "main", task, 0, "900", "completed", 1, 0.0, 0.0, 0.0, None, None, None, 0.0)


def test_measured_cost_counts_a_job_shared_by_elements_once():
    # the local executor runs all generation tasks of a member as one job (one id, one wall time)
    elements = [_element(1, "generate", "mbpp"), _element(2, "generate", "humanevalsynthesize-go")]
    attempts = {e.id: [Attempt(e.id, 1, "900", 100.0, "completed", 100.0 + 1800.0, None)] for e in elements}
    section = scheduling(elements, attempts, "local", {("generate", "main"): Resources(cpus=4, gpus=1)})
    assert section["source"] == "measured"
    assert section["cost"]["total"]["cpu_hours"] == pytest.approx(0.5 * 4)
    assert section["cost"]["by_stage"]["generate"]["gpu_hours"] == pytest.approx(0.5)
    assert len(section["bars"]) == 2  # both elements on the timeline
