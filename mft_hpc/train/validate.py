"""Checks of the training config that need more than the schema, run before any job is submitted."""

from __future__ import annotations

import json
from pathlib import Path

from mft_hpc.config.schema import Config
from mft_hpc.errors import ConfigError
from mft_hpc.tasks.names import IM_END, IM_START

CHATML_TOKENS = (IM_START, IM_END)
# where a HF model directory may declare its special tokens (Qwen-1 declares them in its tokenizer code)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "qwen.tiktoken")


def _tokenizer_text(model_dir: Path) -> str | None:
    texts = [(model_dir / name).read_text(errors="replace") for name in TOKENIZER_FILES if (model_dir / name).is_file()]
    texts += [path.read_text(errors="replace") for path in model_dir.glob("tokenization_*.py")]
    return "\n".join(texts) if texts else None


def model_problems(config: Config) -> list[tuple[tuple, str]]:
    model_dir = Path(config.model.path)
    if not model_dir.is_dir():
        return [(("model", "path"), f"model directory does not exist: {model_dir}")]
    problems = []
    config_json = model_dir / "config.json"
    if not config_json.is_file():
        return [(("model", "path"), f"not a Hugging Face model directory (no config.json): {model_dir}")]
    try:
        model_type = json.loads(config_json.read_text()).get("model_type")
    except json.JSONDecodeError as exc:
        return [(("model", "path"), f"{config_json}: invalid JSON: {exc}")]
    if model_type is None:
        problems.append((("model", "path"), f"{config_json} has no model_type"))
    if model_type == "qwen":  # Qwen-1: imported to native Qwen2 at submission; check it converts exactly
        from mft_hpc.errors import UserError
        from mft_hpc.model.qwen1_import import inspect_qwen1

        try:
            inspect_qwen1(model_dir)
        except UserError as err:
            problems += [(("model", "path"), line) for line in str(err).splitlines()]
        return problems
    text = _tokenizer_text(model_dir)
    if text is None:
        problems.append((("model", "path"), f"no tokenizer files in {model_dir}"))
    else:
        missing = [token for token in CHATML_TOKENS if token not in text]
        if missing:
            problems.append((("model", "path"), f"tokenizer has no ChatML token(s) {' '.join(missing)}: "
                                                "training renders ChatML and generation stops at <|im_end|>"))
    return problems


def train_problems(config: Config) -> list[tuple[tuple, str]]:
    train = config.train
    problems = []
    if train.peft == "qlora" and train.zero_stage == 3:
        problems.append((("train", "zero_stage"), "ZeRO-3 cannot shard 4/8-bit QLoRA weights; use zero_stage 2 "
                                                  "(or peft: lora)"))
    if train.min_lr > train.learning_rate:
        problems.append((("train", "min_lr"), f"min_lr {train.min_lr} is above learning_rate {train.learning_rate}"))
    if train.loss_mode == "task_weights" and not train.task_weights:
        problems.append((("train", "task_weights"), "loss_mode task_weights needs task_weights: {task: weight}"))
    if any(weight < 0 for weight in train.task_weights.values()):
        problems.append((("train", "task_weights"), "weights must be >= 0"))
    if train.early_stopping_patience and config.data.valid_ratio == 0:
        problems.append((("train", "early_stopping_patience"), "needs validation data (data.valid_ratio > 0)"))
    if config.data.mode == "pack" and train.attn_implementation:
        from mft_hpc.data.attention import packing_strategy
        from mft_hpc.errors import UserError

        try:
            packing_strategy(train.attn_implementation)
        except UserError as err:
            problems.append((("train", "attn_implementation"), str(err).split(": ", 1)[1]))
    if not config.data.paths:
        problems.append((("data", "paths"), "no training data: give at least one task path"))
    elif train.task_weights:
        problems += _task_weight_problems(config)
    return problems


def _task_weight_problems(config: Config) -> list[tuple[tuple, str]]:
    from mft_hpc.data.records import discover_tasks
    from mft_hpc.errors import UserError

    try:
        names = [task.name for task in discover_tasks(list(config.data.paths))]
    except UserError as err:
        return [(("data", "paths"), str(err))]
    unknown = sorted(set(config.train.task_weights) - set(names))
    if unknown:
        return [(("train", "task_weights"), f"unknown task(s) {', '.join(unknown)}; tasks are {', '.join(names)}")]
    return []


def validate_train_config(config: Config, source: str | Path | None = None) -> None:
    """Raise ConfigError (one ``file:line: key: reason`` per problem) if training cannot run."""
    if not config.train.enabled:
        return
    problems = model_problems(config) + train_problems(config)
    if not problems:
        return
    from mft_hpc.config.yaml_lines import format_problem, key_lines

    lines = key_lines(Path(source).read_text()) if source is not None and Path(source).is_file() else {}
    raise ConfigError([format_problem(source or None, lines, loc, message) for loc, message in problems])
