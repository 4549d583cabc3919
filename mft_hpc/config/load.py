"""Load and validate a YAML config: every problem is reported as ``file:line: key: reason``."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mft_hpc.config import sweep as sweep_mod
from mft_hpc.config.schema import Config
from mft_hpc.config.yaml_lines import duplicate_keys, format_problem, key_lines
from mft_hpc.errors import ConfigError

# (dotted key, description) of every path that must exist before anything is submitted
_REQUIRED_PATHS = (("model.path", "model directory"), ("generate.benchmarks", "benchmark directory"))


@dataclass(frozen=True)
class LoadedConfig:
    source: Path
    config: Config                     # the config as written (sweep block kept)
    members: list[tuple[str, Config]]  # one per sweep member; [("main", config)] without a sweep

    @property
    def is_sweep(self) -> bool:
        return bool(self.config.sweep)


def _model_at(path: tuple) -> type[BaseModel] | None:
    """The pydantic model class that holds the keys at ``path`` (a tuple of keys)."""
    model: Any = Config
    for key in path:
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return None
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    return model


def _suggest(path: tuple) -> str:
    parent = _model_at(path[:-1])
    if parent is None:
        return ""
    close = difflib.get_close_matches(str(path[-1]), list(parent.model_fields), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


_format = format_problem


def _validation_problems(source: Path, lines: dict, err: ValidationError, prefix: tuple = ()) -> list[str]:
    problems = []
    for item in err.errors():
        loc = prefix + tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _suggest(loc)
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = item["msg"]
            if "input" in item and not isinstance(item["input"], (dict, list)):
                message += f" (got {item['input']!r})"
        problems.append(_format(source, lines, loc, message))
    return problems


def _sweep_problems(source: Path, lines: dict, raw: dict) -> list[str]:
    sweep = raw.get("sweep")
    if sweep is None:
        return []
    if not isinstance(sweep, dict):
        return [_format(source, lines, ("sweep",), "must be a mapping of dotted key -> list of values")]
    problems = []
    for key, values in sweep.items():
        loc = ("sweep", key)
        parts = tuple(str(key).split("."))
        parent = _model_at(parts[:-1])
        if len(parts) < 2 or parent is None or parts[-1] not in parent.model_fields:
            problems.append(_format(source, lines, loc, "not a config key" + _suggest(parts)))
        elif not isinstance(values, list):
            problems.append(_format(source, lines, loc, "must be a list of values"))
        elif not values:
            problems.append(_format(source, lines, loc, "empty sweep list: give at least one value"))
        elif len(set(map(repr, values))) != len(values):
            problems.append(_format(source, lines, loc, "duplicate values"))
    return problems


def _path_problems(source: Path, lines: dict, config: Config) -> list[str]:
    problems = []
    for dotted, what in _REQUIRED_PATHS:
        section, key = dotted.split(".")
        if not getattr(getattr(config, section), "enabled", True) and section != "model":
            continue
        value = getattr(getattr(config, section), key)
        if value and not Path(value).exists():
            problems.append(_format(source, lines, (section, key), f"{what} does not exist: {value}"))
    if config.train.enabled:
        for index, data_path in enumerate(config.data.paths):
            if not Path(data_path).exists():
                problems.append(_format(source, lines, ("data", "paths", index), f"data path does not exist: {data_path}"))
    return problems


def _cluster_problems(source: Path, lines: dict, members: list[tuple[str, Config]]) -> list[str]:
    from mft_hpc.config.stages import cluster_problems

    problems: list[str] = []
    for _, member in members:  # a sweep may set cluster keys: check every member, report each fault once
        for loc, message in cluster_problems(member.cluster):
            problem = _format(source, lines, loc, message)
            if problem not in problems:
                problems.append(problem)
    return problems


def _backend_problems(source: Path, lines: dict, members: list[tuple[str, Config]], installed: bool) -> list[str]:
    """A vllm backend this config cannot run: more tensor-parallel GPUs than a generation element gets, or
    (``installed``) vllm missing from this Python environment, which is the one submitit runs the jobs with."""
    from mft_hpc.config.stages import resolve_stage
    from mft_hpc.extras import vllm_missing

    wanted = [(name, m) for name, m in members if m.generate.enabled and m.generate.backend == "vllm"]
    problems = []
    for name, member in wanted:
        tp, gpus = member.generate.vllm.tensor_parallel_size, resolve_stage(member.cluster, "generate").gpus_per_node
        if tp > 1 and tp > gpus:
            problems.append(_format(source, lines, ("generate", "vllm", "tensor_parallel_size"),
                                    f"{tp} GPUs per engine, but a generation element gets {gpus} "
                                    "(set cluster.stages.generate.gpus_per_node)"
                                    + ("" if len(members) == 1 else f" [sweep member {name}]")))
    why = vllm_missing() if wanted and installed else None
    if why:
        which = "" if len(wanted) == len(members) else f" [sweep member(s) {', '.join(n for n, _ in wanted)}]"
        problems.append(_format(source, lines, ("generate", "backend"), f"{why}{which}"))
    return problems


def load_config(path: str | os.PathLike, check_paths: bool = True,
                overrides: dict[str, Any] | None = None) -> LoadedConfig:
    """Parse, validate and expand a config file, or raise ConfigError listing every problem.

    ``overrides`` (dotted key -> value, e.g. ``{"train.enabled": False}`` from the command line)
    are applied to the file's values before validation.
    """
    source = Path(path)
    if source.is_dir():
        raise ConfigError([f"{source}: is a directory; give the config file"])
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read config: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                           "save the config as UTF-8"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else str(source)
        raise ConfigError([f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: the config must be a YAML mapping of sections"])
    lines = key_lines(text)
    for dotted, value in (overrides or {}).items():
        try:
            sweep_mod.set_dotted(raw, dotted, value)
        except KeyError:
            pass  # the section is not a mapping: validation reports it

    problems = [f"{source}:{line}: {'.'.join(map(str, key))}: duplicate key (first given at line {first}); "
                "YAML would silently keep only the last" for key, line, first in duplicate_keys(text)]
    problems += _sweep_problems(source, lines, raw)
    try:
        config = Config.model_validate(raw)
    except ValidationError as err:
        problems += _validation_problems(source, lines, err)
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)

    members = []
    for name, member_raw in sweep_mod.expand(raw):
        try:
            members.append((name, Config.model_validate(member_raw)))
        except ValidationError as err:
            for problem in _validation_problems(source, lines, err):
                problems.append(f"{problem} [sweep member {name}]")
    problems += _cluster_problems(source, lines, members)
    if problems:
        raise ConfigError(problems)
    problems += _backend_problems(source, lines, members, installed=check_paths)
    if check_paths:  # what must exist on this machine
        problems += _path_problems(source, lines, config)
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(source=source, config=config, members=members)


def dump_config(config: Config) -> str:
    """The resolved config as YAML (written to the run directory's config.yaml)."""
    # the C emitter when libyaml is there (same text, ~10x faster: a sweep writes one per member)
    return yaml.dump(config.model_dump(mode="json"), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                     sort_keys=False)
