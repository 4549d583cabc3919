"""Find what to pack: the generations folder of a run member (or a bare one) and how it was decoded.

A run directory gives the folder ``members/<member>/generate/generations_{model}/`` and the decoding
settings from the resolved config (``members/<member>/config.yaml`` if present, else the run's
``config.yaml`` with its sweep expanded). A bare generations folder carries no config, so it must hold
a ``generation_meta.json`` (``{"do_sample": false, "num_beams": 1, "num_return_sequences": 1,
"limit": null}``; left out of the zip), or the caller vouches for greedy decoding with --assume-greedy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from mft_hpc.config import sweep as sweep_mod
from mft_hpc.errors import UserError
from mft_hpc.submission.check import FOLDER_PREFIX, model_of_folder

META_FILE = "generation_meta.json"
_GREEDY = {"do_sample": False, "num_beams": 1, "num_return_sequences": 1}


@dataclass(frozen=True)
class PackSource:
    folder: Path             # generations_{model}/
    model: str
    limit: int | None        # generate.limit of the run (None = every problem)
    decoding_from: str       # where greedy decoding was verified, for the report


def _is_run_dir(path: Path) -> bool:
    return (path / "members").is_dir() or (path / "config.yaml").is_file()


def _pick_member(run: Path, member: str | None) -> str:
    members = sorted(p.name for p in (run / "members").glob("*") if p.is_dir())
    if member is not None:
        if member not in members:
            raise UserError(f"{run}: no member {member!r}; members: {', '.join(members) or 'none'}")
        return member
    if len(members) != 1:
        raise UserError(f"{run}: {len(members)} members ({', '.join(members) or 'none'}); choose one with --member")
    return members[0]


def _generations_folder(generate_dir: Path) -> Path:
    folders = sorted(p for p in generate_dir.glob(f"{FOLDER_PREFIX}*") if p.is_dir())
    if len(folders) != 1:
        found = ", ".join(p.name for p in folders) or "none"
        raise UserError(f"{generate_dir}: expected one {FOLDER_PREFIX}{{model}}/ folder, found {found}"
                        " (has generation run?)")
    return folders[0]


def member_config(run: Path, member: str) -> tuple[dict, Path]:
    """The raw resolved config tree of ``member`` (sweep applied), and the file it came from."""
    for config_path in (run / "members" / member / "config.yaml", run / "config.yaml"):
        if not config_path.is_file():
            continue
        try:
            raw = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{config_path}: invalid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise UserError(f"{config_path}: must be a YAML mapping")
        # a plain config (sweep block expanded here), or one resolved config per member by name
        by_name = raw.get("members") if isinstance(raw.get("members"), dict) else raw
        if isinstance(by_name.get(member), dict) and "generate" in by_name[member]:
            return by_name[member], config_path
        expanded = dict(sweep_mod.expand(raw))
        tree = expanded.get(member, raw if len(expanded) == 1 else None)
        if tree is None:
            raise UserError(f"{config_path}: no sweep member {member!r}")
        return tree, config_path
    raise UserError(f"{run}: no config.yaml, so greedy decoding cannot be verified; "
                    f"pack its {FOLDER_PREFIX}{{model}}/ folder with --assume-greedy instead")


def member_generate_section(run: Path, member: str) -> tuple[dict, Path]:
    """The raw ``generate`` section that applies to ``member``, and the config file it came from."""
    tree, config_path = member_config(run, member)
    section = tree.get("generate") or {}
    if not isinstance(section, dict):
        raise UserError(f"{config_path}: generate: must be a mapping")
    return section, config_path


def _check_greedy(settings: dict, where: str, require_keys: bool) -> int | None:
    """Refuse sampling; return ``limit``. Absent keys take the config defaults (greedy) unless required."""
    for key, greedy in _GREEDY.items():
        if key not in settings and not require_keys:
            continue
        value = settings.get(key)
        if value != greedy or isinstance(value, bool) != isinstance(greedy, bool):
            raise UserError(f"{where}: {key}: {value!r}: the competition requires greedy decoding "
                            "(do_sample=false, num_beams=1, num_return_sequences=1)")
    limit = settings.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise UserError(f"{where}: limit: {limit!r}: must be a positive integer or null")
    return limit


def resolve_source(path: str | Path, member: str | None = None, assume_greedy: bool = False) -> PackSource:
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: not a run directory or a {FOLDER_PREFIX}{{model}}/ folder")
    if _is_run_dir(path):
        name = _pick_member(path, member)
        folder = _generations_folder(path / "members" / name / "generate")
        section, config_path = member_generate_section(path, name)
        limit = _check_greedy(section, f"{config_path}: generate", require_keys=False)
        return PackSource(folder, model_of_folder(folder.name), limit, f"{config_path} (member {name})")
    model = model_of_folder(path.name)
    if model is None:
        raise UserError(f"{path}: not a run directory, and a bare folder must be named {FOLDER_PREFIX}{{model}}")
    meta_path = path / META_FILE
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{meta_path}: not valid JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise UserError(f"{meta_path}: must be a JSON object")
        return PackSource(path, model, _check_greedy(meta, str(meta_path), require_keys=True), str(meta_path))
    if not assume_greedy:
        raise UserError(f"{path}: no {META_FILE} saying how it was decoded; add one "
                        '({"do_sample": false, "num_beams": 1, "num_return_sequences": 1, "limit": null}) '
                        "or pass --assume-greedy if you know it was greedy")
    return PackSource(path, model, None, "--assume-greedy")
