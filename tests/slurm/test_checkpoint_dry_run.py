"""Preemption -> checkpoint -> requeue -> resume, and dry runs that submit nothing."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import slurm_layer_jobs as jobs_fn
from polling import wait_for
from slurm_layer_helpers import scontrol_job

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.slurm import DryRunLog, Submitter, after_corr, after_ok

pytestmark = pytest.mark.slurm


@pytest.mark.slow
def test_preempted_job_resumes_from_its_checkpoint(slurm_cluster, cluster, tmp_path):
    progress, log = tmp_path / "progress.json", tmp_path / "steps.jsonl"
    task = jobs_fn.StepCounter(progress, log, total=6, step_s=1.0)
    job = Submitter(cluster, tmp_path / "jobs").submit(task)
    wait_for(lambda: progress.exists() and json.loads(progress.read_text())["step"] >= 2, 60,
             interval_s=0.2, what="two steps done")
    job._interrupt()  # what Slurm does on preemption: SIGTERM, then USR2 -> checkpoint + requeue
    assert job.result() == 6
    events = [json.loads(line) for line in log.read_text().splitlines()]
    starts = [e["start"] for e in events if "start" in e]
    assert len(starts) == 2 and starts[0] == 0 and starts[1] >= 2  # resumed, not restarted from zero
    steps = [e["step"] for e in events if "step" in e]
    assert steps[-1] == 6 and steps.count(1) == 1

    assert re.search(r"\bRestarts=[1-9]", scontrol_job(job.job_id))  # Slurm requeued it


def test_dry_run_prints_scripts_and_submits_nothing(slurm_cluster, cluster, tmp_path):
    name = f"mft-dry-{tmp_path.name}"
    log = DryRunLog()
    submitter = Submitter(cluster, tmp_path / "logs", dry_run=log)
    train = submitter.submit(jobs_fn.add, 1, 2, name=name)
    gen = submitter.map_array(jobs_fn.square, range(1500), after=[after_ok([train])], name=name)
    ev = submitter.map_array(jobs_fn.square, range(1500), after=[after_corr(gen)], name=name)
    assert len(gen) == len(ev) == 1500 and list(log.scripts) == ["DRY1", "DRY2", "DRY3", "DRY4", "DRY5"]
    text = log.render()
    assert text.count("#!/bin/bash") == 5 and text.count("srun --unbuffered") == 5
    assert "#SBATCH --array=0-1000%2\n#SBATCH --cpus-per-task=1\n#SBATCH --dependency=afterok:DRY1" in text
    assert "#SBATCH --array=0-498%2\n" in log.scripts["DRY3"]
    assert "--dependency=aftercorr:DRY2" in log.scripts["DRY4"]
    assert "--dependency=aftercorr:DRY3" in log.scripts["DRY5"]
    assert submitter.commands.calls["sbatch"] == 0
    queued = subprocess.run(["squeue", "-h", "-t", "all", "-n", name, "-o", "%i"], capture_output=True, text=True)
    assert queued.returncode == 0 and queued.stdout.strip() == ""
    assert not (tmp_path / "logs").exists()  # no pickles, no scripts on disk


def test_dry_run_renders_every_cluster_setting(tmp_path):
    """No cluster needed: the script is submitit's, with every `cluster` setting as an #SBATCH flag."""
    cluster = ClusterSection(executor="slurm", partition="gpu", account="proj", qos="high", time=30,
                             nodes=2, gpus_per_node=4, cpus_per_task=8, mem="64G",
                             extra={"constraint": "a100"})
    log = DryRunLog()
    job = Submitter(cluster, tmp_path, dry_run=log).submit(jobs_fn.add, 1, 2)
    script = log.scripts[job.job_id]
    for flag in ("--partition=gpu", "--account=proj", "--qos=high", "--time=30", "--nodes=2",
                 "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--mem=64G",
                 "--constraint=a100"):
        assert f"#SBATCH {flag}\n" in script
