"""The whole pipeline on the real test Slurm cluster: a 2-member sweep, training through
evaluation in the container, a leaderboard that names the better member, a validated zip."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from controller_helpers import wait_for_run, write_config
from polling import wait_for

from mft_hpc.config import load_config
from mft_hpc.controller.operations import start_run
from mft_hpc.rundir.state import COMPLETED
from mft_hpc.runplan.key import ElementKey
from mft_hpc.tasks.names import TASK_NAMES
from mft_hpc.tasks.registry import load_problems

LIMIT = 2


def memorize_data(path, benchmarks_dir):
    """The first MBPP problems with their solutions: a member that learns them passes them."""
    path.mkdir(parents=True)
    with open(path / "train.jsonl", "w") as handle:
        for _ in range(20):
            for doc in load_problems(benchmarks_dir, "mbpp")[:LIMIT]:
                user = f'"""\n{doc["text"]}\n{doc["test_list"][0]}\n"""\n'  # the competition's mbpp prompt
                code = doc["code"].replace("\r\n", "\n")
                handle.write(json.dumps({"chat_rounds": [
                    {"role": "system", "content": ""}, {"role": "human", "content": user},
                    {"role": "bot", "content": f"```python\n{code}\n```"}]}) + "\n")
            # the competition's ChatML suffix ends at "assistant" without the header's newline, which
            # training never supervises: teach that token from content
            handle.write(json.dumps({"chat_rounds": [{"role": "human", "content": "role"},
                                                     {"role": "bot", "content": "assistant\n" * 8}]}) + "\n")
    return path


def sacct_times(job_ids):
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,Start,End", "-j", ",".join(job_ids)],
                         capture_output=True, text=True).stdout
    return {row.split("|")[0]: row.split("|")[1:] for row in out.splitlines() if row}


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.container
def test_sweep_end_to_end_on_slurm(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster, evaluation_image, browser):
    data = memorize_data(tmp_path / "data" / "mbpp-memorize", benchmarks_dir)
    config = write_config(
        tmp_path / "sweep.yaml",
        run={"name": "e2e", "root": str(tmp_path / "runs")},
        cluster={"executor": "slurm", "partition": "debug", "time": 20, "array_parallelism": 8},
        data={"paths": [str(data)], "seq_length": 512, "valid_ratio": 0.05},
        model={"path": str(tiny_model_dir)},
        train={"lora_rank": 32, "lora_alpha": 64, "lora_dropout": 0.0, "min_lr": 1e-7, "warmup_steps": 2,
               "max_steps": 120, "micro_batch_size": 4, "eval_steps": 40, "save_steps": 40, "merge_dtype": "fp32"},
        generate={"benchmarks": str(benchmarks_dir), "limit": LIMIT, "max_length_generation": 1024,
                  "batch_size": 2},
        evaluate={"runtime": "apptainer", "image": str(evaluation_image)},
        submission={"allow_partial": True},
        sweep={"train.learning_rate": [1.0e-6, 1.0e-2]},
    )
    outcome = start_run(load_config(config))
    root = tmp_path / "runs" / "e2e"
    elements = wait_for_run(root, deadline_s=900)
    assert {e.label: e.state for e in elements} == {e.label: COMPLETED for e in elements}
    assert len(elements) == 2 * (1 + 13 + 13) + 1

    # pipelining: some task's evaluation started before a later task's generation ended
    for member in ("lr1e-06", "lr0.01"):
        gen = [outcome.submitted[ElementKey("generate", member, t)] for t in TASK_NAMES]
        ev = [outcome.submitted[ElementKey("evaluate", member, t)] for t in TASK_NAMES]
        times = sacct_times(sorted({i.split("_")[0] for i in gen + ev}))
        assert any(times[ev[i]][0] < times[gen[j]][1] for i in range(13) for j in range(i + 1, 13)), times

    board = json.loads((root / "collect" / "leaderboard.json").read_text())
    assert board["best_member"] == "lr0.01"
    rows = {row["member"]: row for row in board["members"]}
    assert rows["lr0.01"]["scores"]["mbpp"] > rows["lr1e-06"]["scores"]["mbpp"]

    zips = sorted((root / "collect").glob("*.zip"))
    assert len(zips) == 2 and all("partial" in z.name for z in zips)

    # the collect job wrote the report from Slurm accounting (its own job still running then);
    # rewritten now that every job has ended, its cost is sacct's: CPUTimeRAW of every job run
    report = json.loads((root / "collect" / "report.json").read_text())
    assert report["scheduling"]["source"] == "sacct" and report["evaluation"]["best_member"] == "lr0.01"
    ids = sorted({i.split("_")[0] for i in outcome.submitted.values()})

    def ended_runs():  # CPU time of every job run, once accounting has the end of each
        out = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-o", "End,CPUTimeRAW", "-j", ",".join(ids)],
                             capture_output=True, text=True, check=True).stdout
        rows = [line.split("|") for line in out.splitlines() if line]
        return [int(cpu) for end, cpu in rows] if all(end[:1].isdigit() for end, _ in rows) else None

    cpu_seconds = wait_for(ended_runs, 60, what="accounting of every job's end")
    done = subprocess.run([sys.executable, "-m", "mft_hpc", "report", str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((root / "collect" / "report.json").read_text())
    assert report["scheduling"]["cost"]["total"]["cpu_hours"] == pytest.approx(sum(cpu_seconds) / 3600, abs=1e-9)
    assert len(report["scheduling"]["bars"]) == len(cpu_seconds) == len(elements)
    page = browser.open_page(root / "collect" / "report.html")
    assert page.errors() == [] and page.foreign_requests() == []
    cells = page.evaluate("[...document.querySelectorAll('table.heatmap td.cell[data-value]')]"
                          ".map(c => [c.dataset.member, c.dataset.task, c.textContent])")
    assert sorted(cells) == sorted([row["member"], task, f"{value:.4f}"] for row in board["members"]
                                   for task, value in row["scores"].items())
    for zip_path in zips:
        check = subprocess.run([sys.executable, "-m", "mft_hpc", "pack", "--check", str(zip_path), "--allow-partial"],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
