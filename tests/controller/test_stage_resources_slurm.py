"""Per-stage resources on the test cluster (GPU GRES on n1/n2, a cpu partition on n3), read back from
Slurm: what each real job asked for and got, setup lines in every job's log, and what is refused
before anything is submitted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from controller_helpers import wait_for_run, write_chat_data, write_config
from polling import wait_for

from mft_hpc.config import load_config
from mft_hpc.controller.operations import start_run
from mft_hpc.errors import UserError
from mft_hpc.rundir.state import COMPLETED, FAILED


def sacct_rows(job_ids) -> dict[str, dict]:
    """sacct's record of each job (array elements by their ``123_4`` id)."""
    fields = ["JobID", "Partition", "AllocTRES", "ReqMem", "Timelimit", "Constraints", "NNodes", "State"]
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", ",".join(fields), "-j",
                          ",".join(sorted({i.split("_")[0] for i in job_ids}))],
                         capture_output=True, text=True, timeout=60).stdout
    rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]
    return {row["JobID"]: row for row in rows}


def tres(row: dict) -> dict[str, str]:
    return dict(item.split("=", 1) for item in row["AllocTRES"].split(",") if "=" in item)


def stdout_log(element) -> str:
    return Path(element.log_path.replace("_log.err", "_log.out")).read_text()


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mft_hpc", *argv], capture_output=True, text=True, timeout=300)


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.container
def test_sweep_jobs_carry_their_stage_resources(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster,
                                                evaluation_image):
    config = write_config(
        tmp_path / "stages.yaml",
        run={"name": "stages", "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "gpu", "time": 20, "gpus_per_node": 2, "tasks_per_node": 1,
                 "mem": "2G", "constraint": "gpunode", "array_parallelism": 8,
                 "setup": ["echo mft-setup default on $(hostname)", "export MFT_SETUP_MARK=from-setup"],
                 "stages": {
                     "train": {"time": 15, "mem": "3G"},
                     "generate": {"time": 12},  # stage default: 1 node x 1 task x 1 GPU
                     "evaluate": {"partition": "cpu", "constraint": "cpunode", "time": 10, "mem_per_cpu": "700M",
                                  "setup": ["echo mft-setup evaluate on $(hostname) mark=${MFT_SETUP_MARK:-unset}"]},
                     "collect": {"partition": "cpu", "constraint": "cpunode"}}},
        data={"paths": write_chat_data(tmp_path / "data" / "adds"), "seq_length": 128, "mode": "padding",
              "valid_ratio": 0.2},
        model={"path": str(tiny_model_dir)},
        train={"lora_rank": 8, "lora_alpha": 16, "warmup_steps": 1, "max_steps": 4, "save_steps": 4,
               "eval_steps": 4, "micro_batch_size": 4, "merge_dtype": "fp32"},
        generate={"benchmarks": str(benchmarks_dir), "limit": 1, "max_length_generation": 48, "tasks": ["mbpp"],
                  "batch_size": 1},
        evaluate={"runtime": "apptainer", "image": str(evaluation_image)},
        submission={"enabled": False},
        sweep={"train.learning_rate": [1.0e-3, 2.0e-3]},
    )
    outcome = start_run(load_config(config))
    elements = wait_for_run(tmp_path / "runs" / "stages", deadline_s=900)
    assert {e.label: e.state for e in elements} == {e.label: COMPLETED for e in elements}
    assert len(elements) == 2 * 3 + 1

    def ended_rows():  # the collect job writes its .done before its own job has ended
        rows = sacct_rows(outcome.submitted.values())
        return rows if all(r["State"] not in ("PENDING", "RUNNING", "COMPLETING") for r in rows.values()) else None

    rows = wait_for(ended_rows, 60, what="every job's end in accounting")
    expected = {  # stage: (partition, GPUs, memory, time limit, constraint)
        "train": ("gpu", "2", "3G", "00:15:00", "gpunode"),
        "generate": ("gpu", "1", "2G", "00:12:00", "gpunode"),
        "evaluate": ("cpu", None, "700M", "00:10:00", "cpunode"),  # --mem-per-cpu x 1 CPU
        "collect": ("cpu", None, "4G", "00:20:00", "cpunode"),
    }
    for key, job_id in outcome.submitted.items():
        row = rows[job_id]
        got = (row["Partition"], tres(row).get("gres/gpu"), row["ReqMem"], row["Timelimit"], row["Constraints"])
        assert got == expected[key.stage], (key, row)
        assert row["NNodes"] == "1" and row["State"] == "COMPLETED", (key, row)

    for element in elements:  # setup lines ran in every job, before its command, on its node
        log = stdout_log(element)
        if element.stage == "evaluate":
            assert "mft-setup evaluate on n3 mark=unset" in log, log  # the stage's setup replaced the default
        else:
            host = "n3" if element.stage == "collect" else "n1|n2"
            assert any(f"mft-setup default on {h}" in log for h in host.split("|")), (element.label, log)


def refused_config(tmp_path, tiny_model_dir, benchmarks_dir, name: str, evaluate_stage: dict) -> Path:
    return write_config(
        tmp_path / f"{name}.yaml",
        run={"name": name, "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "gpu", "gpus_per_node": 1, "time": 5,
                 "stages": {"evaluate": evaluate_stage}},
        model={"path": str(tiny_model_dir)},
        train={"enabled": False},
        generate={"benchmarks": str(benchmarks_dir), "limit": 1, "tasks": ["mbpp"]},
        submission={"enabled": False},
    )


def slurm_job_names() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True, text=True).stdout
    return set(out.split())


@pytest.mark.slurm
def test_wrong_partition_and_gpus_without_gres_are_refused_before_submission(tmp_path, tiny_model_dir,
                                                                             benchmarks_dir, slurm_cluster):
    wrong = refused_config(tmp_path, tiny_model_dir, benchmarks_dir, "wrongpart", {"partition": "cpux"})
    result = run_cli("run", str(wrong))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"mft-hpc: error: {wrong}:11: cluster.stages.evaluate.partition: evaluate stage: partition 'cpux' "
            "does not exist (sinfo lists: debug, cpu, gpu)") in result.stderr.splitlines()
    assert "nothing was submitted" in result.stderr
    assert not (tmp_path / "runs" / "wrongpart").exists()
    assert not {n for n in slurm_job_names() if n.startswith("wrongpart-")}

    gpus = refused_config(tmp_path, tiny_model_dir, benchmarks_dir, "gpuoncpu", {"partition": "cpu", "gpus_per_node": 1})
    message = (f"{gpus}:12: cluster.stages.evaluate.gpus_per_node: evaluate stage: asks for 1 GPU(s) per node, "
               "but partition 'cpu' has no GPUs (no gpu GRES on its nodes)")
    with pytest.raises(UserError, match="nothing was submitted") as err:
        start_run(load_config(gpus))
    assert message in str(err.value).splitlines()
    assert not (tmp_path / "runs" / "gpuoncpu").exists()
    doctor = run_cli("doctor", str(gpus))
    assert doctor.returncode == 1
    assert f"  FAIL  {message}" in doctor.stdout.splitlines(), doctor.stdout
    assert "evaluate  partition=cpu nodes=1 tasks_per_node=1 gpus_per_node=1" in doctor.stdout
    assert not {n for n in slurm_job_names() if n.startswith("gpuoncpu-")}


@pytest.mark.slurm
def test_failing_setup_line_fails_the_element_with_that_line(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster):
    line = "no-such-module-tool load cuda/12.1"
    config = write_config(
        tmp_path / "badsetup.yaml",
        run={"name": "badsetup", "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "debug", "time": 5,
                 "stages": {"generate": {"setup": ["echo setup begins", line, "echo never reached"]}}},
        model={"path": str(tiny_model_dir)},
        train={"enabled": False},
        generate={"benchmarks": str(benchmarks_dir), "limit": 1, "tasks": ["mbpp"]},
        evaluate={"enabled": False},
        submission={"enabled": False},
    )
    start_run(load_config(config))
    root = tmp_path / "runs" / "badsetup"
    elements = {e.label: e for e in wait_for_run(root, deadline_s=300)}
    failed = elements["generate/main/mbpp/0"]
    assert failed.state == FAILED
    assert failed.last_error == f"FAILED: mft-hpc: cluster.setup line failed (exit 127): {line}"
    assert elements["collect/_run/0"].state == COMPLETED  # afterany: the run still ends

    status = run_cli("status", str(root), "--plain")
    assert f"cluster.setup line failed (exit 127): {line}" in " ".join(status.stdout.split()), status.stdout
    logs = run_cli("logs", str(root), "generate/main/mbpp/0")
    assert logs.returncode == 0, logs.stderr
    assert "no-such-module-tool: command not found" in logs.stdout
    out = stdout_log(failed)
    assert "setup begins" in out and "never reached" not in out


@pytest.mark.slurm
def test_train_verb_checks_only_the_train_stage(tmp_path, tiny_model_dir, slurm_cluster, capsys):
    from mft_hpc.cli.main import main

    config = write_config(
        tmp_path / "trainonly.yaml",
        run={"name": "trainonly", "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "gpu", "time": 5,
                 "stages": {"train": {"partition": "gpux"}, "evaluate": {"partition": "nope"}}},
        data={"paths": write_chat_data(tmp_path / "data")},
        model={"path": str(tiny_model_dir)},
    )
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cluster.stages.train.partition: train stage: partition 'gpux' does not exist" in err
    assert "nope" not in err  # `mft-hpc train` submits the training only
    assert not {n for n in slurm_job_names() if n.startswith("trainonly-")}
