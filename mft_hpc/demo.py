"""`make demo`: the whole pipeline on this machine with a tiny locally built model.

1. build a tiny model (no Hub) and the two-task demo data (MBPP train split only): a Qwen2 with its
   own ChatML BPE, or with ``--model qwen1`` a Qwen-1 checkpoint in the published layout with the real
   ``qwen.tiktoken``, which the run imports to native Qwen2 first (as it would Qwen-1.8B);
2. `mft-hpc run configs/demo-cpu.yaml` on the local executor (or `--executor slurm`): LoRA training
   with DeepSpeed ZeRO-2, generation for all 13 tasks with a small limit, evaluation in the
   Apptainer container (bubblewrap only when Apptainer cannot be installed, and it says so);
3. the dashboard's final table and a validated partial submission zip.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo-cpu.yaml"


def _runtime() -> tuple[str, str | None]:
    """Apptainer with the built image if possible, else bubblewrap, loudly."""
    from mft_hpc.errors import UserError
    from mft_hpc.evaluate.runtime import find_apptainer

    try:
        find_apptainer("apptainer")
    except UserError:
        pass
    else:
        from mft_hpc.evaluate.image import build_image

        return "apptainer", str(build_image())
    print("=" * 78 + "\nmft-hpc demo: Apptainer is not installed (run `bash containers/install_apptainer.sh` as root);\n"
          "evaluating in bubblewrap instead: same policy, no container image.\n" + "=" * 78, file=sys.stderr)
    if not shutil.which("bwrap"):
        raise SystemExit("mft-hpc demo: neither apptainer nor bwrap is installed; cannot sandbox generated code")
    return "bwrap", None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mft_hpc.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=("local", "slurm"), default="local")
    parser.add_argument("--benchmarks", default="../shared/benchmarks")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--limit", type=int, default=None, help="problems per task (default: the config's)")
    parser.add_argument("--model", choices=("qwen2", "qwen1"), default="qwen2",
                        help="qwen1: a tiny Qwen-1 checkpoint (published layout), imported by the run")
    args = parser.parse_args(argv)

    from mft_hpc.cli.main import main as cli
    from mft_hpc.data.demo import build_demo
    from mft_hpc.model.tiny import build_tiny_qwen1, build_tiny_qwen2

    started = time.monotonic()
    runs = Path(args.runs).resolve()
    build = build_tiny_qwen1 if args.model == "qwen1" else build_tiny_qwen2
    model = build(runs / "demo-model" / f"tiny-{args.model}")
    data = runs / "demo-data"
    if not (data / "code-synthesis").exists():
        print("demo data:", build_demo(args.benchmarks, data))
    runtime, image = _runtime()

    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["run"]["root"] = str(runs)
    config["run"]["name"] = f"demo-{args.executor}" + ("-qwen1" if args.model == "qwen1" else "")
    config["model"]["path"] = str(model)
    config["data"]["paths"] = [str(data / "code-synthesis"), str(data / "code-repair")]
    config["generate"]["benchmarks"] = str(Path(args.benchmarks).resolve())
    if args.limit:
        config["generate"]["limit"] = args.limit
    config["evaluate"] = {"runtime": runtime, **({"image": image} if image else {})}
    config["cluster"]["executor"] = args.executor
    if args.executor == "slurm":
        config["cluster"]["partition"] = "debug"
    run_dir = runs / config["run"]["name"]
    config_path = runs / f"{config['run']['name']}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    code = cli(["resume", str(run_dir)] if (run_dir / "run.json").exists() else ["run", str(config_path)])
    if code:
        return code
    if args.executor == "slurm":  # the controller exited after submitting: watch until done
        from mft_hpc.controller.operations import refresh_run
        from mft_hpc.controller.refresh import in_flight

        while any(in_flight(e) for e in refresh_run(run_dir)):
            time.sleep(5)
    print()
    cli(["status", str(run_dir), "--plain"])
    zips = sorted((run_dir / "collect").glob("*.zip"))
    for zip_path in zips:
        cli(["pack", "--check", str(zip_path), "--allow-partial"])
    print(f"\nmft-hpc demo finished in {time.monotonic() - started:.0f} s; run directory: {run_dir}")
    return 0 if zips else 1


if __name__ == "__main__":
    sys.exit(main())
