"""The checks a config passes before anything is submitted: ``mft-hpc config check`` and
``mft-hpc run`` (and ``mft-hpc train``) call the same function, so a config that checks ok is not
refused later by the run.

Beyond the schema (mft_hpc.config.load): ``model.path`` is a model directory, the training
settings hold together (mft_hpc.train.validate), the data paths are distinct tasks whose every
line is valid (unless ``data.skip_invalid``), and a sweep's members share one cluster section.
Every problem is collected and raised once, one ``file:line: key: reason`` line each.
"""

from __future__ import annotations

from pathlib import Path

from mft_hpc.config.load import LoadedConfig
from mft_hpc.config.schema import Config
from mft_hpc.config.yaml_lines import format_problem, key_lines
from mft_hpc.errors import ConfigError, UserError

MAX_DATA_LINES_LISTED = 20  # a broken file can have millions of bad lines; `mft-hpc data check` lists all


def _model_dir_problems(config: Config) -> list[tuple[tuple, str]]:
    model_dir = Path(config.model.path)
    if model_dir.exists() and not model_dir.is_dir():
        return [(("model", "path"), f"not a model directory (a file): {model_dir}")]
    if model_dir.is_dir() and not (model_dir / "config.json").is_file():
        return [(("model", "path"), f"not a Hugging Face model directory (no config.json): {model_dir}")]
    return []


def _data_problems(config: Config) -> list[tuple[tuple, str]]:
    """Distinct paths, unique task names and valid lines: what training would refuse after queueing."""
    from mft_hpc.data.records import discover_tasks, task_errors

    data = config.data
    problems: list[tuple[tuple, str]] = []
    seen: dict[Path, int] = {}
    for index, raw in enumerate(data.paths):
        resolved = Path(raw).expanduser().resolve()
        if resolved in seen:
            problems.append((("data", "paths", index), f"same path as data.paths.{seen[resolved]}: {raw}"))
        seen.setdefault(resolved, index)
    if problems:
        return problems
    try:
        tasks = discover_tasks(list(data.paths))
    except UserError as err:
        return [(("data", "paths"), str(err))]
    if data.skip_invalid:
        return []
    for index, task in enumerate(tasks):
        errors, total = task_errors(task, MAX_DATA_LINES_LISTED)
        for error in errors:
            problems.append((("data", "paths", index), f"invalid line {error}"))
        if total > len(errors):
            problems.append((("data", "paths", index), f"... {total - len(errors)} more invalid line(s) in task "
                                                       f"{task.name} (`mft-hpc data check` lists them all; "
                                                       "or set data.skip_invalid: true)"))
    return problems


def member_problems(config: Config, check_paths: bool = True, seen: dict | None = None) -> list[tuple[tuple, str]]:
    """(key path, reason) for one member's config. ``seen``: shared by a sweep's members, so that a
    model directory and the training data are read once, not once per member."""
    from mft_hpc.train.validate import model_problems, train_problems

    seen = {} if seen is None else seen

    def once(key: tuple, check) -> list[tuple[tuple, str]]:
        if key not in seen:
            seen[key] = check(config)
        return seen[key]

    model = ("model", config.model.path, config.model.trust_remote_code)
    problems: list[tuple[tuple, str]] = []
    if check_paths:
        problems += once(("model dir",) + model, _model_dir_problems)
    if config.train.enabled:
        if check_paths and not problems:
            problems += once(model, model_problems)
        problems += train_problems(config)
        if check_paths and config.data.paths:
            problems += once(("data", tuple(config.data.paths), config.data.skip_invalid), _data_problems)
    return problems


def preflight(loaded: LoadedConfig, members: list[tuple[str, Config]] | None = None,
              check_paths: bool = True) -> None:
    """Raise ConfigError listing every problem of ``members`` (default: the loaded ones)."""
    members = members if members is not None else loaded.members
    by_problem: dict[tuple, list[str]] = {}
    seen: dict = {}
    for name, config in members:
        for loc, message in member_problems(config, check_paths, seen):
            by_problem.setdefault((loc, message), []).append(name)
    source = loaded.source
    try:
        lines = key_lines(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        lines = {}
    problems = []
    for (loc, message), names in by_problem.items():
        line = format_problem(source, lines, loc, message)
        if loaded.is_sweep and len(names) < len(members):
            line += f" [sweep member{'s' if len(names) > 1 else ''} {', '.join(names)}]"
        problems.append(line)
    if len({config.cluster.model_dump_json() for _, config in members}) > 1:
        problems.append(f"{source}: sweep: cluster.* must be equal for every member (one training array)")
    if problems:
        raise ConfigError(problems)
