"""Single jobs, throttled arrays, a 2-node gloo job and env stripping on the real test cluster."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import slurm_layer_jobs as jobs_fn
from slurm_layer_helpers import scontrol_job, submission_script

from mft_hpc.slurm import StatusPoller, Submitter

pytestmark = pytest.mark.slurm


def test_single_job(slurm_cluster, cluster, tmp_path):
    submitter = Submitter(cluster, tmp_path)
    job = submitter.submit(jobs_fn.add, 2, 3, name="mft-single")
    assert job.result() == 5
    assert "#SBATCH --job-name=mft-single" in submission_script(tmp_path, job.job_id)
    assert submitter.commands.calls["sbatch"] == 1


def test_array_of_13_runs_with_throttle_4(slurm_cluster, cluster, tmp_path):
    submitter = Submitter(cluster, tmp_path)
    jobs = submitter.map_array(jobs_fn.sleep_then_square, [1.0] * 13, range(13))
    master = jobs[0].job_id.split("_")[0]
    assert [j.job_id for j in jobs] == [f"{master}_{i}" for i in range(13)]
    assert "#SBATCH --array=0-12%4" in submission_script(tmp_path, master)
    assert "ArrayTaskThrottle=4" in scontrol_job(master)
    most_running = 0
    while not all(j.done() for j in jobs):
        running = subprocess.run(["squeue", "-h", "-t", "R", "-j", master, "-o", "%i"],
                                 capture_output=True, text=True).stdout.split()
        most_running = max(most_running, len(running))
        time.sleep(0.2)
    assert [j.result() for j in jobs] == [i * i for i in range(13)]
    assert 1 <= most_running <= 4
    assert submitter.commands.calls["sbatch"] == 1


@pytest.mark.slow
def test_two_node_job_allreduces_with_gloo(slurm_cluster, cluster, tmp_path):
    pytest.importorskip("torch")
    submitter = Submitter(cluster, tmp_path)
    job = submitter.submit(jobs_fn.allreduce_rank_sum, overrides={"nodes": 2, "tasks_per_node": 1})
    results = sorted(job.results(), key=lambda r: r["rank"])
    assert [r["rank"] for r in results] == [0, 1]
    assert {r["host"] for r in results} == {"n1", "n2"}
    assert all(r["world"] == 2 and r["local_rank"] == 0 and r["master"] == "n1" for r in results)
    # one rendezvous port for both tasks, derived from the job id, below the ephemeral range
    assert len({r["port"] for r in results}) == 1 and 20000 <= results[0]["port"] < 32768
    assert all(r["value"] == 3.0 for r in results)  # 1 + 2 summed across the two nodes


def test_inherited_slurm_env_is_stripped_when_submitting(slurm_cluster, cluster, tmp_path, monkeypatch):
    # what a job submitting a job would inherit; SBATCH_PARTITION would override the script's --partition
    monkeypatch.setenv("SBATCH_PARTITION", "no-such-partition")
    monkeypatch.setenv("SLURM_MFT_PROBE", "from-parent-job")
    refused = subprocess.run(["sbatch", "--wrap", "true", "-o", "/dev/null", "--hold"],
                             capture_output=True, text=True)
    assert refused.returncode != 0  # without stripping, sbatch obeys the inherited variable
    job = Submitter(cluster, tmp_path).submit(jobs_fn.env_probe, ["SLURM_MFT_PROBE", "SBATCH_PARTITION"])
    assert job.result() == {"SLURM_MFT_PROBE": None, "SBATCH_PARTITION": None}
    assert os.environ["SLURM_MFT_PROBE"] == "from-parent-job"  # restored for the caller


def test_status_calls_per_refresh_do_not_grow_with_job_count(slurm_cluster, cluster, tmp_path):
    submitter = Submitter(cluster.model_copy(update={"array_parallelism": 8}), tmp_path)
    singles = [submitter.submit(jobs_fn.add, i, 0) for i in range(3)]
    array = submitter.map_array(jobs_fn.square, range(13))
    ids = [j.job_id for j in singles + array] + ["999999"]  # an id slurmctld never knew: asks sacct
    poller = StatusPoller(submitter.commands)
    deadline = time.monotonic() + 90
    refreshes = 0
    while True:
        before = dict(submitter.commands.calls)
        states = poller.refresh(ids)
        refreshes += 1
        assert submitter.commands.calls["squeue"] - before.get("squeue", 0) == 1
        assert submitter.commands.calls["sacct"] - before.get("sacct", 0) <= 1
        if all(states[i] == "COMPLETED" for i in ids[:-1]):
            break
        assert time.monotonic() < deadline, states
        time.sleep(1)
    assert states["999999"] == "UNKNOWN"
    assert refreshes >= 1 and submitter.commands.calls["squeue"] == refreshes
