"""A run member's resolved config, read back from its run directory one typed section at a time.

Readers of a run (collect, pack, the report, the dashboard) need a section of one member's config:
``members/<member>/config.yaml`` (written at submission), else the run's ``config.yaml`` with its sweep
expanded. A section is validated on its own, so a reader gets the same typed values and defaults as
the stage that ran, and one unreadable section does not hide the others.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from mft_hpc.config import sweep as sweep_mod
from mft_hpc.config.schema import Config
from mft_hpc.config.sections.base import Section
from mft_hpc.errors import UserError
from mft_hpc.rundir.layout import RunDir


def member_tree(run: RunDir, member: str) -> tuple[dict, Path]:
    """The raw resolved config tree of ``member`` (sweep applied), and the file it came from."""
    for config_path in (run.member(member).config, run.config):
        if not config_path.is_file():
            continue
        try:
            raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UserError(f"{config_path}: invalid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(raw, dict):
            raise UserError(f"{config_path}: must be a YAML mapping")
        expanded = dict(sweep_mod.expand(raw))
        tree = expanded.get(member, raw if len(expanded) == 1 else None)
        if tree is None:
            raise UserError(f"{config_path}: no sweep member {member!r}")
        return tree, config_path
    raise UserError(f"{run.root}: no config.yaml")


def member_section(run: RunDir, member: str, name: str) -> Section:
    """Section ``name`` of the member's config, validated (defaults filled in as when it ran)."""
    if name not in Config.model_fields or name == "sweep":
        raise ValueError(f"unknown config section {name!r}")
    tree, config_path = member_tree(run, member)
    raw = tree.get(name)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{config_path}: {name}: must be a mapping")
    try:
        return Config.model_fields[name].annotation.model_validate(raw)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            key = ".".join(str(part) for part in item["loc"])
            reason = item["msg"].removeprefix("Value error, ")
            problems.append(f"{config_path}: {name}: {key}: {item['input']!r}: {reason}" if key else
                            f"{config_path}: {name}: {reason}")
        raise UserError("\n".join(problems)) from None
