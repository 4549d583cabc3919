"""The run directory's record of what was submitted: config.yaml, members/<m>/config.yaml, run.json,
and members.json (every member's config in one JSON file: what ``load_run`` reads while it is not
older than any member's config.yaml, since parsing 1,000 YAML files takes seconds).

Everything `status`, `retry`, `resume` and `cancel` need is rebuilt from these files and
state.sqlite alone, so the process that submitted a run may exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mft_hpc.config import dump_config
from mft_hpc.config.schema import Config
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir, atomic_write_json, atomic_write_text
from mft_hpc.runplan.plan import RunPlan, build_plan


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when libyaml is there


def run_file(run: RunDir) -> Path:
    return run.run_file


def members_file(run: RunDir) -> Path:
    return run.root / "members.json"


def write_run(plan: RunPlan, written: Config, is_sweep: bool) -> None:
    """Record the config as written (paths resolved) and each member's resolved config."""
    run = plan.run
    atomic_write_text(run.config, dump_config(written))
    for member in plan.members:  # members.json below is their durable copy: no fsync per file
        member.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(member.dir / "config.yaml", dump_config(member.config), durable=False)
    atomic_write_json(members_file(run), {m.name: m.config.model_dump(mode="json") for m in plan.members})
    atomic_write_json(run_file(run), {"members": [m.name for m in plan.members], "is_sweep": is_sweep,
                                      "executor": plan.members[0].config.cluster.executor}, indent=2)


def read_run_meta(run: RunDir) -> dict:
    """run.json, checked: a truncated or foreign file is one clear line naming `mft-hpc repair`."""
    path = run_file(run)
    if not path.is_file():
        if not (run.root / "members").is_dir():
            raise UserError(f"{run.root}: not a run directory (no run.json); start one with `mft-hpc run CONFIG`")
        raise UserError(f"{path}: missing; `mft-hpc repair {run.root}` rebuilds it from the members' configs")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path}: unreadable ({_one_line(err)}); `mft-hpc repair {run.root}` rebuilds it") from None
    members = meta.get("members") if isinstance(meta, dict) else None
    if (not isinstance(members, list) or not members or not all(isinstance(m, str) and m for m in members)
            or not isinstance(meta.get("is_sweep"), bool)):
        raise UserError(f"{path}: not a run record (needs members: [names], is_sweep: true|false); "
                        f"`mft-hpc repair {run.root}` rebuilds it")
    return meta


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def _recorded_configs(run: RunDir, names: list[str]) -> dict:
    """members.json, when no member's config.yaml is newer (edited or repaired since); else {}."""
    try:
        recorded_at = members_file(run).stat().st_mtime_ns
        if any(run.member(name).config.stat().st_mtime_ns > recorded_at for name in names):
            return {}
        recorded = json.loads(members_file(run).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def load_run(root: str | Path) -> RunPlan:
    run = RunDir(Path(root).resolve())
    meta = read_run_meta(run)
    recorded = _recorded_configs(run, meta["members"])
    members = []
    for name in meta["members"]:
        if isinstance(recorded.get(name), dict):
            try:
                members.append((name, Config.model_validate(recorded[name])))
                continue
            except ValueError:
                pass  # the member's config.yaml says
        config_path = run.member(name).config
        try:
            text = config_path.read_text(encoding="utf-8")
            members.append((name, Config.model_validate(yaml.load(text, Loader=_YAML_LOADER))))
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise UserError(f"{config_path}: cannot read the member's config: {_one_line(err)}") from None
    return build_plan(run, members, meta["is_sweep"])


def executor_of(plan: RunPlan) -> str:
    return plan.members[0].config.cluster.executor
