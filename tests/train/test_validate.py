"""Bad training input fails before anything is submitted, naming file:line and key, exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mft_hpc.config import load_config
from mft_hpc.errors import ConfigError
from mft_hpc.train import validate_train_config


def _yaml(tmp_path: Path, model_dir, data_paths, train_lines: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "run:\n  name: t\n  root: " + str(tmp_path / "runs") + "\n"
        "cluster:\n  executor: local\n"
        "model:\n  path: " + str(model_dir) + "\n"
        "data:\n  paths: [" + ", ".join(data_paths) + "]\n  seq_length: 128\n"
        "generate:\n  enabled: false\n"
        "train:\n" + train_lines)
    return path


def _line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip().startswith(key + ":"))


def test_zero3_with_qlora_names_file_line_and_key(tmp_path, tiny_model_dir, task_paths):
    path = _yaml(tmp_path, tiny_model_dir, task_paths, "  peft: qlora\n  zero_stage: 3\n")
    loaded = load_config(path)
    with pytest.raises(ConfigError) as err:
        validate_train_config(loaded.config, path)
    assert f"{path}:{_line_of(path, 'zero_stage')}: train.zero_stage: ZeRO-3" in str(err.value)


def test_task_weights_must_name_tasks(tmp_path, tiny_model_dir, task_paths):
    path = _yaml(tmp_path, tiny_model_dir, task_paths, "  loss_mode: task_weights\n  task_weights: {synth: 2, repiar: 1}\n")
    with pytest.raises(ConfigError, match=r"train.task_weights: unknown task\(s\) repiar; tasks are synth, repair"):
        validate_train_config(load_config(path).config, path)


def test_model_without_chatml_tokens(tmp_path, tiny_model_dir, task_paths):
    plain = tmp_path / "plain-model"
    shutil.copytree(tiny_model_dir, plain)
    tokenizer = json.loads((plain / "tokenizer.json").read_text())
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["content"] == "<|endoftext|>"]
    tokenizer["model"]["vocab"] = {k: v for k, v in tokenizer["model"]["vocab"].items() if "im_" not in k}
    (plain / "tokenizer.json").write_text(json.dumps(tokenizer))
    for name in ("tokenizer_config.json", "chat_template.jinja"):
        (plain / name).unlink(missing_ok=True)
    path = _yaml(tmp_path, plain, task_paths, "  peft: lora\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:\d+: model.path: tokenizer has no ChatML token\(s\) <\|im_start\|> <\|im_end\|>"):
        validate_train_config(load_config(path).config, path)


def test_missing_model_dir(tmp_path, tiny_model_dir, task_paths):
    path = _yaml(tmp_path, tiny_model_dir, task_paths, "  peft: lora\n")
    config = load_config(path).config
    config.model.path = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"model.path: model directory does not exist: .*nowhere"):
        validate_train_config(config, path)


@pytest.mark.parametrize("train_lines, key, reason", [
    ("  lora_rank: 0\n", "train.lora_rank", "greater than 0"),
    ("  peft: adapterx\n", "train.peft", "'lora', 'qlora' or 'none'"),
])
def test_schema_errors_exit_2_from_the_train_verb(tmp_path, tiny_model_dir, task_paths, capsys,
                                                  train_lines, key, reason):
    from mft_hpc.cli.main import main

    path = _yaml(tmp_path, tiny_model_dir, task_paths, train_lines)
    assert main(["train", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{_line_of(path, key.split('.')[1])}: {key}: " in err and reason in err and "Traceback" not in err


def test_sweep_dry_run_is_one_array_with_one_element_per_member(tmp_path, tiny_model_dir, task_paths, capsys):
    from mft_hpc.cli.main import main

    path = _yaml(tmp_path, tiny_model_dir, task_paths, "  peft: lora\n")
    text = path.read_text().replace("executor: local", "executor: slurm\n  nodes: 2\n  tasks_per_node: 1")
    path.write_text(text + "sweep:\n  train.learning_rate: [1.0e-4, 2.0e-4]\n  train.lora_rank: [8, 16]\n")
    assert main(["train", str(path), "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert script.count("#SBATCH --array=0-3") == 1 and "#SBATCH --nodes=2" in script
    assert "# dry run: 4 elements in 1 sbatch call(s)" in script   # one array, one element per member
    assert not (tmp_path / "runs" / "t").exists()                   # a dry run writes no run directory
