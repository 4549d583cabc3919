"""Cost and timeline from real Slurm accounting: a run's elements are real jobs on the test cluster
(a 2-CPU training job requeued once while running, a 2-element generation array); the report's
CPU-/GPU-hours must equal what `sacct` itself says about those jobs."""

from __future__ import annotations

import subprocess
import time

import pytest
from polling import wait_for
from report_fakes import write_config

from mft_hpc.config import load_config
from mft_hpc.controller.dag import element_specs
from mft_hpc.report import build_report
from mft_hpc.report.accounting import parse_tres
from mft_hpc.rundir import RunDir
from mft_hpc.rundir.state import StateStore
from mft_hpc.runplan.plan import build_plan
from mft_hpc.runplan.runfile import write_run
from mft_hpc.slurm import Submitter

pytestmark = pytest.mark.slurm
TASKS = ("humanevalsynthesize-python", "mbpp")


def sacct_rows(job_ids: list[str]) -> list[dict]:
    out = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-o", "JobID,State,CPUTimeRAW,ElapsedRaw,AllocTRES,End",
                          "-j", ",".join(job_ids)], capture_output=True, text=True, check=True).stdout
    keys = ("id", "state", "cpu_s", "elapsed_s", "tres", "end")
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line]


def slurm_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def has_gpu_gres() -> bool:
    nodes = subprocess.run(["scontrol", "show", "node"], capture_output=True, text=True).stdout
    return "Gres=gpu" in nodes


def test_cost_and_requeued_timeline_equal_sacct(slurm_cluster, tmp_path, benchmarks_dir):
    loaded = load_config(write_config(tmp_path, "acct", 1, 2, benchmarks_dir, tmp_path / "model", 10,
                                      executor="slurm"), check_paths=False)
    plan = build_plan(RunDir.create(tmp_path / "acct"), loaded.members, loaded.is_sweep)
    write_run(plan, loaded.config, loaded.is_sweep)
    cluster = loaded.members[0][1].cluster
    if has_gpu_gres():  # count-only GPUs on the test cluster: then GPU-hours are compared too
        cluster = cluster.model_copy(update={"gpus_per_node": 1})
    submitter = Submitter(cluster, plan.run.logs)
    train = submitter.submit(time.sleep, 4, name="acct-train", stage="train")
    generate = submitter.map_array(time.sleep, [1, 2], name="acct-generate", stage="generate")
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        ids = {(e.stage, e.task): e.id for e in store.elements()}
        store.record_attempt(ids[("train", "")], train.job_id)
        for task, job in zip(TASKS, generate):
            store.record_attempt(ids[("generate", task)], job.job_id)

    wait_for(lambda: slurm_state(train.job_id) == "RUNNING", 60, what="the training job to run")
    subprocess.run(["scontrol", "requeue", train.job_id], check=True)
    train.result()
    for job in generate:
        job.result()
    job_ids = [train.job_id, generate[0].job_id.split("_")[0]]

    seen: list = []

    def both_runs_accounted():  # accounting lags: every record final, with its elapsed time
        seen[:] = sacct_rows(job_ids)
        final = len(seen) == 4 and all(r["state"] in ("COMPLETED", "REQUEUED") and r["end"] != "Unknown"
                                       for r in seen)
        return list(seen) if final else None

    try:
        rows = wait_for(both_runs_accounted, 90, what="accounting of both runs of the training job and the array")
    except AssertionError as err:
        raise AssertionError(f"{err}; sacct says {seen}") from None

    report = build_report(plan.run.root)
    section = report["scheduling"]
    assert section["source"] == "sacct" and section["notes"] == []
    total = section["cost"]["total"]
    assert total["cpu_hours"] == pytest.approx(sum(int(r["cpu_s"]) for r in rows) / 3600, abs=1e-12)
    gpu_s = sum(int(parse_tres(r["tres"]).get("gres/gpu", 0)) * int(r["elapsed_s"]) for r in rows)
    assert total["gpu_hours"] == pytest.approx(gpu_s / 3600, abs=1e-12)
    assert (total["gpu_hours"] > 0) == has_gpu_gres()
    train_rows = [r for r in rows if r["id"] == train.job_id]
    assert section["cost"]["by_stage"]["train"]["cpu_hours"] == pytest.approx(
        sum(int(r["cpu_s"]) for r in train_rows) / 3600, abs=1e-12)
    assert all(parse_tres(r["tres"])["cpu"] == "2" for r in train_rows)  # cpus_per_task 2: CPU-h = 2 x wall

    bars = {(b["label"], b["state"]) for b in section["bars"]}
    assert bars == {("train/main/0", "requeued"), ("train/main/0", "completed"),
                    (f"generate/main/{TASKS[0]}/0", "completed"), (f"generate/main/{TASKS[1]}/0", "completed")}
    for bar in section["bars"]:
        assert bar["submit"] <= bar["start"] <= bar["end"]
