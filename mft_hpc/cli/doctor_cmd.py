"""`mft-hpc doctor [CONFIG]`: what a user runs on a new site. Plain output; exit 1 on problems.

Slurm (reachable, version, accounting, MaxArraySize), its partitions with their CPUs, memory, GRES
and features, the evaluation sandbox (apptainer/singularity/bwrap, the image), and with CONFIG: the
config's problems and paths, and where each stage's jobs would run and whether they fit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("doctor", help="check this site: Slurm, partitions and GPUs, the sandbox, a config",
                              description="Check what mft-hpc needs on this site; with CONFIG also where each "
                                          "stage's jobs would run. Exit 1 when something is wrong.")
    parser.add_argument("config", nargs="?", help="a config to check against the cluster")
    parser.set_defaults(func=_doctor)


@dataclass
class Report:
    problems: int = 0
    lines: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.lines.append(title)

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def info(self, text: str) -> None:
        self.lines.append(f"  --    {text}")

    def warn(self, text: str) -> None:
        self.lines.append(f"  WARN  {text}")

    def fail(self, text: str) -> None:
        self.problems += 1
        self.lines.append(f"  FAIL  {text}")


def _slurm(report: Report, needed: bool):
    """Slurm facts; returns the partitions, or None when Slurm does not answer."""
    from mft_hpc.slurm.site import SlurmUnavailable, read_config, read_partitions

    report.section("Slurm")
    try:
        config = read_config()
        partitions = read_partitions()
    except SlurmUnavailable as err:
        (report.fail if needed else report.info)(f"Slurm does not answer: {err}"
                                                 + ("" if needed else " (not needed: executor local)"))
        return None
    controller = next((v for k, v in config.items() if k.startswith("SlurmctldHost")), "?")
    report.ok(f"controller {controller} answers; Slurm {config.get('SLURM_VERSION', '?')}")
    accounting = config.get("AccountingStorageType", "?")
    if accounting.endswith("/none"):
        report.warn(f"accounting off ({accounting}): states of jobs that left the queue read UNKNOWN")
    else:
        report.ok(f"accounting on ({accounting}): sacct reports finished jobs")
    report.info(f"MaxArraySize={config.get('MaxArraySize', '?')} (larger arrays are split into several)")
    report.section("Partitions (sinfo)")
    if not partitions:
        report.fail("sinfo lists no partition")
    for part in partitions.values():
        nodes = part.nodes
        cpus = sorted({n.cpus for n in nodes})
        memory = sorted({n.memory_mb for n in nodes})
        gpus = f"GPUs {part.gres}" if part.max_gpus else "no GPUs"
        features = ",".join(sorted(part.features)) or "none"
        name = part.name + ("*" if part.default else "")
        count = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}"
        report.info(f"{name:<12} {part.available:<5} {count:<9} "
                    f"CPUs {'/'.join(map(str, cpus))}  memory {'/'.join(map(str, memory))} MB  {gpus}  "
                    f"features {features}")
    return partitions


def _sandbox(report: Report, eval_cfg) -> None:
    from mft_hpc.errors import UserError
    from mft_hpc.evaluate.image import default_image
    from mft_hpc.evaluate.runtime import find_apptainer

    report.section("Evaluation sandbox")
    runtime = eval_cfg.runtime if eval_cfg is not None else None
    needed = eval_cfg is not None and eval_cfg.enabled
    for name in ("apptainer", "singularity"):
        try:
            binary = find_apptainer(name)
            version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
            report.ok(f"{name}: {binary} ({version})")
        except (UserError, OSError, subprocess.TimeoutExpired):
            (report.fail if needed and runtime == name else report.info)(f"{name}: not found on this machine")
    if runtime == "bwrap":
        (report.ok if shutil.which("bwrap") else report.fail)(f"bwrap: {shutil.which('bwrap') or 'not found'}")
    if runtime in (None, "apptainer", "singularity"):
        image = Path(eval_cfg.image) if eval_cfg is not None and eval_cfg.image else default_image()
        if image.exists():
            report.ok(f"image {image}")
        else:
            (report.fail if needed else report.warn)(f"image {image} does not exist "
                                                     "(build it with `mft-hpc container build`)")
    report.info("compute nodes run evaluation: they need the same runtime and see the image path")


def _config(report: Report, path: str, partitions) -> None:
    from mft_hpc.config import load_config
    from mft_hpc.config.stages import STAGES, describe, resolve_stage, stages_to_run
    from mft_hpc.errors import ConfigError
    from mft_hpc.slurm.site import config_fit_problems

    report.section(f"Config {path}")
    try:
        loaded = load_config(path, check_paths=False)
    except ConfigError as err:
        for problem in err.problems:
            report.fail(problem)
        return
    try:
        load_config(path)
        report.ok("valid; its input paths exist")
    except ConfigError as err:
        for problem in err.problems:
            report.fail(problem)
    configs = [config for _, config in loaded.members]
    cluster = configs[0].cluster
    running = stages_to_run(configs)
    report.info(f"executor: {cluster.executor}; stages that run: {', '.join(running) or 'none'}")
    for stage in STAGES:
        if stage in running:
            report.info(f"{stage:<9} {describe(resolve_stage(cluster, stage))}")
    if cluster.executor == "slurm" and partitions is not None:
        problems = config_fit_problems(configs, loaded.source, partitions)
        for problem in problems:
            report.fail(problem)
        if not problems:
            report.ok("every stage fits a partition of this cluster")


def _doctor(args: argparse.Namespace) -> int:
    from mft_hpc.config import load_config
    from mft_hpc.errors import ConfigError

    eval_cfg, executor = None, "slurm"
    if args.config:
        try:
            config = load_config(args.config, check_paths=False).config
            eval_cfg, executor = config.evaluate, config.cluster.executor
        except ConfigError:
            pass  # reported in the config section
    report = Report()
    partitions = _slurm(report, needed=executor == "slurm")
    _sandbox(report, eval_cfg)
    if args.config:
        _config(report, args.config, partitions)
    print("\n".join(report.lines))
    print(f"{report.problems} problem{'s' if report.problems != 1 else ''} found" if report.problems
          else "no problems found")
    return 1 if report.problems else 0
