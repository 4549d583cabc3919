"""Dependencies, array splitting, pruning and cancellation on the real test cluster."""

from __future__ import annotations

import subprocess
import time

import pytest
import slurm_layer_jobs as jobs_fn
from polling import wait_for
from slurm_layer_helpers import sacct_rows, submission_script

from mft_hpc.slurm import (
    DependencyNeverSatisfied,
    SlurmCommands,
    StatusPoller,
    Submitter,
    after_any,
    after_corr,
    after_ok,
)

pytestmark = pytest.mark.slurm


def _finished_rows(ids, count):
    rows = sacct_rows(ids)
    done = [r for r in rows.values() if r["State"] == "COMPLETED" and r["End"] not in ("Unknown", "")]
    return rows if len(done) >= count else None


@pytest.mark.slow
def test_chain_job_array_aftercorr_array_pairs_elements(slurm_cluster, cluster, tmp_path):
    submitter = Submitter(cluster, tmp_path)
    first = submitter.submit(jobs_fn.add, 1, 1)
    runtimes = [1.0, 7.0, 13.0]  # staggered: element i ends ~6 s before element i+1 (a busy cluster delays starts)
    gen = submitter.map_array(jobs_fn.sleep_then_square, runtimes, range(3), after=[after_ok([first])])
    ev = submitter.map_array(jobs_fn.square, range(3), after=[after_corr(gen)])
    assert f"--dependency=aftercorr:{gen[0].job_id.split('_')[0]}" in submission_script(tmp_path, ev[0].job_id)
    assert [j.result() for j in ev] == [0, 1, 4]
    ids = [first.job_id] + [j.job_id for j in gen + ev]
    rows = wait_for(lambda: _finished_rows(ids, len(ids)), 30, what="sacct end times")
    assert rows[gen[0].job_id]["Start"] >= rows[first.job_id]["End"]
    for i in range(3):
        assert rows[ev[i].job_id]["Start"] >= rows[gen[i].job_id]["End"]
    for i in range(2):  # element i of the dependent did not wait for the whole parent array
        assert rows[ev[i].job_id]["Start"] < rows[gen[i + 1].job_id]["End"]


@pytest.mark.slow
def test_split_arrays_keep_aftercorr_pairing(slurm_cluster, cluster, tmp_path):
    submitter = Submitter(cluster.model_copy(update={"array_parallelism": 8}), tmp_path,
                          commands=SlurmCommands(array_size_limit=5))
    gen = submitter.map_array(jobs_fn.sleep_then_square, [0.5] * 12, range(12))
    masters = list(dict.fromkeys(j.job_id.split("_")[0] for j in gen))
    assert len(masters) == 3 and submitter.commands.calls["sbatch"] == 3
    assert [j.job_id for j in gen] == [f"{m}_{i}" for m, n in zip(masters, (5, 5, 2)) for i in range(n)]
    ev = submitter.map_array(jobs_fn.identity, range(12), after=[after_corr(gen)])
    for parent, child in zip(masters, dict.fromkeys(j.job_id.split("_")[0] for j in ev)):
        assert f"--dependency=aftercorr:{parent}" in submission_script(tmp_path, child)
    assert [j.result() for j in ev] == list(range(12))
    rows = wait_for(lambda: _finished_rows([j.job_id for j in gen + ev], 24), 30, what="sacct end times")
    assert all(rows[e.job_id]["Start"] >= rows[g.job_id]["End"] for g, e in zip(gen, ev))


def test_1500_elements_split_against_max_array_size(slurm_cluster, cluster, tmp_path):
    """Submitted held (running 1,500 python jobs takes minutes here); see the large test below."""
    submitter = Submitter(cluster, tmp_path)
    assert submitter.commands.max_array_size == 1001
    jobs = submitter.map_array(jobs_fn.identity, range(1500), overrides={"extra": {"hold": True}})
    try:
        masters = list(dict.fromkeys(j.job_id.split("_")[0] for j in jobs))
        assert len(jobs) == 1500 and len(masters) == 2
        # the two pieces share the %4 throttle
        assert "--array=0-1000%2" in submission_script(tmp_path, masters[0])
        assert "--array=0-498%2" in submission_script(tmp_path, masters[1])
        states = StatusPoller(submitter.commands).refresh(j.job_id for j in jobs)
        assert set(states.values()) == {"PENDING"} and len(states) == 1500
    finally:
        submitter.commands.cancel({j.job_id.split("_")[0] for j in jobs})


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_1500_elements_all_run(slurm_cluster, cluster, tmp_path):
    # ~5 minutes on the 2-core CI machine: every element is a Slurm batch step + an srun step + a
    # Python start (submitit). %8 uses the whole test cluster (2 nodes x 4 CPUs).
    submitter = Submitter(cluster.model_copy(update={"array_parallelism": 8}), tmp_path)
    jobs = submitter.map_array(jobs_fn.identity, range(1500))
    assert len({j.job_id.split("_")[0] for j in jobs}) == 2
    assert [j.result() for j in jobs] == list(range(1500))


def test_finished_foreign_dependencies_are_pruned(slurm_cluster, cluster, tmp_path):
    earlier = Submitter(cluster, tmp_path / "earlier")  # e.g. a previous controller process
    done = earlier.submit(jobs_fn.add, 1, 2)
    failed = earlier.submit(jobs_fn.add, 1, "x")
    held = earlier.submit(jobs_fn.add, 0, 0, overrides={"extra": {"hold": True}})
    done.result()
    assert failed.exception() is not None
    try:
        poller = StatusPoller(earlier.commands)
        wait_for(lambda: poller.refresh([done.job_id, failed.job_id]) == {done.job_id: "COMPLETED",
                                                                            failed.job_id: "FAILED"},
                 30, what="parents finished")
        now = Submitter(cluster, tmp_path / "now")
        child = now.submit(jobs_fn.add, 2, 2, after=[after_ok([done, held]), after_any([failed])])
        script = submission_script(tmp_path / "now", child.job_id)
        assert f"--dependency=afterok:{held.job_id}\n" in script  # done (afterok) and failed (afterany) pruned
        assert now.commands.calls["squeue"] == 1 and now.commands.calls["sbatch"] == 1
        with pytest.raises(DependencyNeverSatisfied, match=failed.job_id):
            now.submit(jobs_fn.add, 0, 1, after=[after_ok([failed])])
        free = now.submit(jobs_fn.add, 3, 3, after=[after_ok([done])])
        assert "--dependency" not in submission_script(tmp_path / "now", free.job_id)
        assert free.result() == 6
    finally:
        earlier.commands.cancel([held.job_id])
        if "child" in locals():
            earlier.commands.cancel([child.job_id])


def test_cancel_pending_chain_leaves_nothing(slurm_cluster, cluster, tmp_path):
    submitter = Submitter(cluster, tmp_path)
    root = submitter.submit(jobs_fn.add, 0, 0, overrides={"extra": {"hold": True}})
    gen = submitter.map_array(jobs_fn.square, range(13), after=[after_ok([root])])
    ev = submitter.map_array(jobs_fn.square, range(13), after=[after_corr(gen)])
    cleanup = submitter.submit(jobs_fn.add, 0, 0, after=[after_any(ev)])
    ids = [root.job_id] + [j.job_id for j in gen + ev] + [cleanup.job_id]
    poller = StatusPoller(submitter.commands)
    assert set(poller.refresh(ids).values()) == {"PENDING"}
    submitter.commands.cancel({i.split("_")[0] for i in ids})
    assert submitter.commands.calls["scancel"] == 1

    def gone():
        alive = subprocess.run(["squeue", "-h", "-j", ",".join({i.split("_")[0] for i in ids}), "-o", "%i"],
                               capture_output=True, text=True).stdout.split()
        return not alive

    wait_for(gone, 20, what="cancelled jobs to leave the queue")
    time.sleep(1)  # nothing gets started afterwards either
    assert gone()
    assert set(poller.refresh(ids).values()) == {"CANCELLED"}
