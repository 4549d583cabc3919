"""Dry runs of the shipped Qwen configs: each stage's sbatch script carries that stage's resources;
stage selection (--only/--skip, `mft-hpc train`); setup lines and the compute-node Python."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mft_hpc.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site_config(tmp_path, tiny_model_dir):
    """``configs/<name>`` with its site paths pointed at local stand-ins (the tiny model, one-line data sets)."""

    def make(name: str) -> Path:
        data = yaml.safe_load((REPO / "configs" / name).read_text())
        data["model"].update(path=str(tiny_model_dir), trust_remote_code=False)
        data["data"]["paths"] = [str(tmp_path / f"data{i}") for i in range(len(data["data"]["paths"]))]
        for path in data["data"]["paths"] + [str(tmp_path / "benchmarks")]:
            Path(path).mkdir(exist_ok=True)
        for path in data["data"]["paths"]:  # run validates every data line before submitting
            (Path(path) / "train.jsonl").write_text('{"prompt": "p", "answer": "a"}\n')
        data["generate"]["benchmarks"] = str(tmp_path / "benchmarks")
        data["run"]["root"] = str(tmp_path / "runs")
        out = tmp_path / name
        out.write_text(yaml.safe_dump(data, sort_keys=False))
        return out

    return make


def dry_run(capsys, *argv: str) -> tuple[int, dict[str, list[dict]], str]:
    """Exit code, {job name suffix: [sbatch flags of each script]}, stderr."""
    code = main(list(argv) + ["--dry-run"])
    captured = capsys.readouterr()
    scripts: dict[str, list[dict]] = {}
    for script in re.split(r"^### DRY\d+\n", captured.out, flags=re.MULTILINE)[1:]:
        flags = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, flags=re.MULTILINE))
        if "job-name" in flags:
            flags["script"] = script
            scripts.setdefault(flags["job-name"].rsplit("-", 1)[-1], []).append(flags)
    return code, scripts, captured.err


@pytest.mark.parametrize("name, train_nodes, members", [("qwen1_8b-lora.yaml", "1", 1),
                                                        ("qwen1_8b-qlora.yaml", "1", 1),
                                                        ("qwen1_8b-sweep.yaml", "2", 4)])
def test_shipped_configs_give_each_stage_its_resources(capsys, site_config, name, train_nodes, members):
    code, scripts, err = dry_run(capsys, "run", str(site_config(name)))
    assert code == 0, err
    (train,) = scripts["train"]
    assert (train["partition"], train["nodes"], train["gpus-per-node"], train["mem"]) == ("gpu", train_nodes, "8", "400G")
    assert train["ntasks-per-node"] == "8" and train["time"] == "720"
    assert train.get("array", "").startswith("0-3") if members > 1 else "array" not in train
    assert len(scripts["generate"]) == members and len(scripts["evaluate"]) == members
    for gen in scripts["generate"]:  # one GPU per task element, on the gpu partition
        assert (gen["partition"], gen["nodes"], gen["ntasks-per-node"], gen["gpus-per-node"]) == ("gpu", "1", "1", "1")
        assert (gen["mem"], gen["time"], gen["array"]) == ("64G", "240", "0-12%13")
    for ev in scripts["evaluate"]:  # CPU work: the cpu partition, no GPU
        assert (ev["partition"], ev["cpus-per-task"], ev["mem"], ev["time"]) == ("cpu", "16", "32G", "120")
        assert "gpus-per-node" not in ev
    (collect,) = scripts["collect"]
    assert (collect["partition"], collect["cpus-per-task"], collect["mem"], collect["time"]) == ("cpu", "1", "4G", "30")
    assert "gpus-per-node" not in collect


def test_only_and_skip_select_stages(capsys, site_config):
    config = str(site_config("qwen1_8b-lora.yaml"))
    code, scripts, err = dry_run(capsys, "run", config, "--only", "train")
    assert code == 0, err
    assert set(scripts) == {"train"}
    code, scripts_train_verb, err = dry_run(capsys, "train", config)
    assert code == 0, err
    assert set(scripts_train_verb) == {"train"}

    # evaluate an existing model: everything but training, generation waits on nothing
    code, scripts, err = dry_run(capsys, "run", config, "--skip", "train")
    assert code == 0, err
    assert set(scripts) == {"generate", "evaluate", "collect"}
    assert "dependency" not in scripts["generate"][0]

    code, scripts, err = dry_run(capsys, "run", config, "--only", "generate,evaluate")
    assert code == 0, err
    assert set(scripts) == {"generate", "evaluate"}


@pytest.mark.parametrize("argv, message", [
    (["--only", "evalute"], "--only: unknown stage 'evalute' (did you mean 'evaluate'?)"),
    (["--skip", "generate"], "evaluate and collect read this run's generations: select generate too"),
    (["--only", ""], "--only: give one or more stages"),
])
def test_bad_stage_selection_exits_2(capsys, site_config, argv, message):
    code, scripts, err = dry_run(capsys, "run", str(site_config("qwen1_8b-lora.yaml")), *argv)
    assert code == 2 and not scripts
    assert message in err and "Traceback" not in err


def test_only_cannot_turn_on_a_disabled_stage(capsys, site_config, tmp_path):
    path = site_config("qwen1_8b-lora.yaml")
    data = yaml.safe_load(path.read_text())
    data["evaluate"]["enabled"] = False
    path.write_text(yaml.safe_dump(data))
    code, scripts, err = dry_run(capsys, "run", str(path), "--only", "generate,evaluate")
    assert code == 2 and "evaluate.enabled is false" in err


def test_setup_python_constraint_and_exclude_reach_the_scripts(capsys, site_config):
    path = site_config("qwen1_8b-lora.yaml")
    data = yaml.safe_load(path.read_text())
    data["cluster"].update(setup=["module load cuda/12.1", "export HF_HOME=/scratch/hf"],
                           python="/opt/site/venv/bin/python", constraint="a100&ib", exclude="node[01-02]")
    data["cluster"]["stages"]["evaluate"]["setup"] = ["module load apptainer"]
    data["cluster"]["stages"]["generate"].pop("mem")
    data["cluster"]["stages"]["generate"]["mem_per_gpu"] = "48G"
    path.write_text(yaml.safe_dump(data))
    code, scripts, err = dry_run(capsys, "run", str(path))
    assert code == 0, err
    train = scripts["train"][0]
    assert (train["constraint"], train["exclude"]) == ("'a100&ib'", "'node[01-02]'")
    assert "\nmodule load cuda/12.1\n} || {" in train["script"]
    assert "export HF_HOME=/scratch/hf" in train["script"]
    assert "module load apptainer" not in train["script"]
    generate = scripts["generate"][0]
    assert generate["mem-per-gpu"] == "48G" and "mem" not in generate  # one memory key replaces the others
    evaluate = scripts["evaluate"][0]["script"]
    assert "\nmodule load apptainer\n} || {" in evaluate and "module load cuda" not in evaluate
    for script in (train["script"], evaluate):
        setup_at, srun_at = script.index("# setup"), script.index("\nsrun ")
        assert setup_at < srun_at  # setup runs before the job's command
        assert "/opt/site/venv/bin/python -u -m submitit.core._submit" in script[srun_at:]


def test_evaluating_an_existing_model_needs_no_training_data(capsys, site_config, tmp_path):
    path = site_config("qwen1_8b-lora.yaml")
    data = yaml.safe_load(path.read_text())
    data["data"]["paths"] = [str(tmp_path / "no-such-data")]
    path.write_text(yaml.safe_dump(data))
    code, scripts, err = dry_run(capsys, "run", str(path))
    assert code == 2 and "data path does not exist" in err
    code, scripts, err = dry_run(capsys, "run", str(path), "--skip", "train")
    assert code == 0, err
    assert len(scripts["generate"]) == 1 and "dependency" not in scripts["generate"][0]
