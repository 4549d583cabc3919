"""Pure logic of the Slurm layer on recorded command output (no cluster needed)."""

from __future__ import annotations

import pytest

from mft_hpc.slurm.arrays import (
    parent_pieces,
    piece_dependencies,
    piece_throttles,
    plan_pieces,
    split_ranges,
)
from mft_hpc.slurm.commands import parse_max_array_size
from mft_hpc.slurm.dependency import (
    Dependency,
    DependencyNeverSatisfied,
    after_corr,
    after_ok,
    prune,
    sbatch_dependency_parameters,
)
from mft_hpc.slurm.job_states import expand_job_id, parse_state_lines
from mft_hpc.slurm.status import StatusPoller

# recorded on the test cluster (Slurm 22.05): `squeue -h -o %i|%T -j 2,3` during a %2 array
SQUEUE_RECORDED = "2_[2-9%2]|PENDING\n2_0|RUNNING\n2_1|RUNNING\n3|RUNNING\n"
# `sacct -X -n -P -o JobID,State -j 2,3` after `scancel 2`
SACCT_RECORDED = "3|COMPLETED\n2_0|COMPLETED\n2_1|COMPLETED\n2_[2-9%2]|CANCELLED by 0\n"
# sacct without -X lists steps too
SACCT_WITH_STEPS = "7|COMPLETED\n7.batch|COMPLETED\n7.0|COMPLETED\n8_[1,3-4]|PENDING\n"


def test_squeue_array_ranges_expand_to_elements():
    states = parse_state_lines(SQUEUE_RECORDED)
    assert states == {"2_0": "RUNNING", "2_1": "RUNNING", "3": "RUNNING",
                      **{f"2_{i}": "PENDING" for i in range(2, 10)}}


def test_sacct_states_normalized_and_steps_skipped():
    states = parse_state_lines(SACCT_RECORDED)
    assert states["2_9"] == "CANCELLED" and states["3"] == "COMPLETED" and len(states) == 11
    assert parse_state_lines(SACCT_WITH_STEPS) == {"7": "COMPLETED", "8_1": "PENDING", "8_3": "PENDING",
                                                    "8_4": "PENDING"}


def test_expand_job_id_forms():
    assert expand_job_id("12") == ["12"]
    assert expand_job_id("12_3") == ["12_3"]
    assert expand_job_id("12_[0-2%4]") == ["12_0", "12_1", "12_2"]
    assert expand_job_id("12_[5]") == ["12_5"]


def test_max_array_size_from_scontrol_text():
    assert parse_max_array_size("MaxArraySize            = 1001\nMaxJobCount = 20000\n") == 1001
    assert parse_max_array_size("garbage") == 1001


def test_sacct_accounting_disabled_switches_to_degraded_mode():
    poller = StatusPoller()
    assert poller.read_sacct(1, "", "sacct: error: Slurm accounting storage is disabled\n") == {}
    assert poller.accounting is False
    other = StatusPoller()
    assert other.read_sacct(1, "", "sacct: error: Problem talking to the database") == {}
    assert other.accounting is True


def test_dependency_rendering_and_kill_on_invalid():
    deps = [after_ok(["5", "6_2"]), Dependency("afterany", ("7",)), after_corr(["9_0", "9_1"])]
    params = sbatch_dependency_parameters(deps)
    assert params == {"dependency": "afterok:5:6_2,afterany:7,aftercorr:9", "kill-on-invalid-dep": "yes"}
    assert sbatch_dependency_parameters([Dependency("afterany", ("7",))]) == {"dependency": "afterany:7"}
    assert sbatch_dependency_parameters([]) == {}


def test_prune_drops_satisfied_ids_and_refuses_failed_parents():
    states = {"1": "COMPLETED", "2": "RUNNING", "3": "FAILED", "4_0": "COMPLETED", "4_1": "COMPLETED"}
    assert prune([after_ok(["1", "2"])], states) == [Dependency("afterok", ("2",))]
    assert prune([Dependency("afterany", ("1", "3"))], states) == []
    assert prune([after_corr(["4_0", "4_1"])], states) == []
    assert prune([after_corr(["4_0", "4_1", "4_2"])], states) == [after_corr(["4_0", "4_1", "4_2"])]
    with pytest.raises(DependencyNeverSatisfied, match="3"):
        prune([after_ok(["1", "3"])], states)


def test_split_arrays_share_the_throttle():
    assert piece_throttles(4, 2) == [2, 2]
    assert piece_throttles(5, 3) == [2, 2, 1]
    assert piece_throttles(16, 1) == [16]
    assert piece_throttles(1, 2) == [1, 1]  # Slurm has no %0: each piece runs at least one


def test_split_and_aftercorr_pairing_follow_the_parent():
    assert split_ranges(1500, 1001) == [range(0, 1001), range(1001, 1500)]
    parent = [f"10_{i}" for i in range(1001)] + [f"11_{i}" for i in range(499)]
    pieces = plan_pieces(1500, 1001, [after_corr(parent)])
    assert pieces == [range(0, 1001), range(1001, 1500)]
    second = piece_dependencies([after_corr(parent), after_ok(["3"])], pieces[1])
    assert second[0].render() == "aftercorr:11" and second[1].render() == "afterok:3"
    # parent split 3+1: the single-element piece is a plain job and pairs through afterok
    assert parent_pieces(("20_0", "20_1", "20_2", "21")) == [range(0, 3), range(3, 4)]
    tail = piece_dependencies([after_corr(["20_0", "20_1", "20_2", "21"])], range(3, 4))
    assert tail == [Dependency("afterok", ("21",))]
    with pytest.raises(ValueError, match="as many elements"):
        plan_pieces(5, 1001, [after_corr(parent)])
    with pytest.raises(ValueError, match="index order"):
        parent_pieces(("30_1", "30_0"))


def test_status_poller_backoff_grows_while_nothing_changes():
    poller = StatusPoller()
    delays = [poller.update_delay(changed=False) for _ in range(7)]
    assert delays == [4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert poller.update_delay(changed=True) == 2.0


def test_rendezvous_port_is_derived_from_the_job_id_below_the_ephemeral_range():
    from mft_hpc.slurm.distributed import master_port_for

    ports = {job_id: master_port_for(job_id) for job_id in ("1", "2", "77_3", "123456")}
    assert ports == {job_id: master_port_for(job_id) for job_id in ports}  # every task computes the same
    assert all(20000 <= port < 32768 for port in ports.values()) and len(set(ports.values())) > 1
