"""Find what to pack: the generations folder of a run member (or a bare one) and how it was decoded.

A run directory gives the folder ``members/<member>/generate/generations_{model}/`` and the member's
typed ``generate`` section (``mft_hpc.config.member``: its validation refuses anything but greedy
decoding). A bare generations folder carries no config, so it must hold a ``generation_meta.json``
(``{"do_sample": false, "num_beams": 1, "num_return_sequences": 1, "limit": null}``; left out of the
zip), or the caller vouches for greedy decoding with --assume-greedy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.config.member import member_section
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir, is_run_dir
from mft_hpc.submission.check import FOLDER_PREFIX, model_of_folder

META_FILE = "generation_meta.json"
_GREEDY = {"do_sample": False, "num_beams": 1, "num_return_sequences": 1}


@dataclass(frozen=True)
class PackSource:
    folder: Path             # generations_{model}/
    model: str
    limit: int | None        # generate.limit of the run (None = every problem)
    decoding_from: str       # where greedy decoding was verified, for the report


def _pick_member(run: RunDir, member: str | None) -> str:
    members = run.member_names()
    if member is not None:
        if member not in members:
            raise UserError(f"{run.root}: no member {member!r}; members: {', '.join(members) or 'none'}")
        return member
    if len(members) != 1:
        raise UserError(f"{run.root}: {len(members)} members ({', '.join(members) or 'none'}); choose one with --member")
    return members[0]


def _generations_folder(generate_dir: Path) -> Path:
    folders = sorted(p for p in generate_dir.glob(f"{FOLDER_PREFIX}*") if p.is_dir())
    if len(folders) != 1:
        found = ", ".join(p.name for p in folders) or "none"
        raise UserError(f"{generate_dir}: expected one {FOLDER_PREFIX}{{model}}/ folder, found {found}"
                        " (has generation run?)")
    return folders[0]


def _check_greedy(settings: dict, where: str) -> int | None:
    """Refuse sampling (every key must say greedy); return ``limit``."""
    for key, greedy in _GREEDY.items():
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
    if is_run_dir(path):
        run = RunDir(path)
        name = _pick_member(run, member)
        folder = _generations_folder(run.member(name).generate)
        config_path = next((p for p in (run.member(name).config, run.config) if p.is_file()), None)
        if config_path is None:
            raise UserError(f"{run.root}: no config.yaml, so greedy decoding cannot be verified; "
                            f"pack its {FOLDER_PREFIX}{{model}}/ folder with --assume-greedy instead")
        section = member_section(run, name, "generate")  # its validation refuses sampling
        return PackSource(folder, model_of_folder(folder.name), section.limit, f"{config_path} (member {name})")
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
        return PackSource(path, model, _check_greedy(meta, str(meta_path)), str(meta_path))
    if not assume_greedy:
        raise UserError(f"{path}: no {META_FILE} saying how it was decoded; add one "
                        '({"do_sample": false, "num_beams": 1, "num_return_sequences": 1, "limit": null}) '
                        "or pass --assume-greedy if you know it was greedy")
    return PackSource(path, model, None, "--assume-greedy")
