"""The run directory's record of what was submitted: config.yaml, members/<m>/config.yaml, run.json.

Everything `status`, `retry`, `resume` and `cancel` need is rebuilt from these files and
state.sqlite alone, so the process that submitted a run may exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mft_hpc.config import dump_config
from mft_hpc.config.schema import Config
from mft_hpc.controller.plan import RunPlan, build_plan
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir, atomic_write_json, atomic_write_text


def run_file(run: RunDir) -> Path:
    return run.root / "run.json"


def write_run(plan: RunPlan, written: Config, is_sweep: bool) -> None:
    """Record the config as written (paths resolved) and each member's resolved config."""
    run = plan.run
    atomic_write_text(run.config, dump_config(written))
    for member in plan.members:
        member.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(member.dir / "config.yaml", dump_config(member.config))
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


def load_run(root: str | Path) -> RunPlan:
    run = RunDir(Path(root).resolve())
    meta = read_run_meta(run)
    members = []
    for name in meta["members"]:
        config_path = run.member(name) / "config.yaml"
        try:
            members.append((name, Config.model_validate(yaml.safe_load(config_path.read_text(encoding="utf-8")))))
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise UserError(f"{config_path}: cannot read the member's config: {_one_line(err)}") from None
    return build_plan(run, members, meta["is_sweep"])


def executor_of(plan: RunPlan) -> str:
    return plan.members[0].config.cluster.executor
