"""`mft-hpc evaluate`: score a harness-format generations folder in the sandbox."""

from __future__ import annotations

import argparse
import sys
from mft_hpc.cli.options import at_least, check_output_dir


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("evaluate", help="run generated programs in the sandbox and write pass@1 metrics")
    parser.add_argument("--generations", required=True, help="folder with generations_{task}_{model}.json files")
    parser.add_argument("--model", required=True, help="model name used in the file names")
    parser.add_argument("--benchmarks", required=True, help="benchmark data folder (humanevalpack/, mbpp/)")
    parser.add_argument("--out", required=True, help="output folder; metrics go to OUT/metrics_{model}/")
    parser.add_argument("--tasks", nargs="+", help="tasks to score (default: every generations file in the folder)")
    parser.add_argument("--runtime", default="apptainer", choices=["apptainer", "singularity", "bwrap", "host"])
    parser.add_argument("--image", help="image (.sif; a directory for bwrap); default: the cached build")
    parser.add_argument("--limit", type=at_least(1), help="the generations cover only the first N problems per task "
                        "(a partial run); pass@1 is then over those N")
    parser.add_argument("--workers", type=at_least(1), help="programs run in parallel (default: available CPUs)")
    parser.add_argument("--unsafe-host", action="store_true",
                        help="allow --runtime host: generated code runs WITHOUT isolation")
    parser.add_argument("--cache-dir", help="verdict cache (share one across runs on a shared filesystem); "
                        "default: OUT/verdict-cache")
    parser.add_argument("--no-cache", action="store_true",
                        help="judge every program again instead of reusing cached verdicts (they are still recorded; "
                             "a changed pass/fail outcome marks the problem flaky)")
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from mft_hpc.config.sections.evaluate import EvaluateSection
    from mft_hpc.evaluate.evaluate import evaluate_tasks
    from mft_hpc.evaluate.generations import discover_tasks
    from mft_hpc.tasks.names import TASK_NAMES
    from mft_hpc.tasks.registry import check_task

    check_output_dir(args.out, "--out")  # before scoring anything
    tasks = [check_task(t) for t in args.tasks] if args.tasks else discover_tasks(args.generations, args.model, TASK_NAMES)
    cfg = EvaluateSection(runtime=args.runtime, image=args.image, workers=args.workers, unsafe_host=args.unsafe_host,
                          cache=not args.no_cache, cache_dir=args.cache_dir)

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"  {done}/{total} programs", file=sys.stderr)

    def notice(line: str) -> None:
        print(f"mft-hpc: {line}", file=sys.stderr)

    scores = evaluate_tasks(args.generations, args.model, tasks, args.benchmarks, args.out, cfg, progress=progress,
                            limit=args.limit, notice=notice)
    width = max(len(t) for t in scores)
    for task, score in scores.items():
        print(f"{task:<{width}}  pass@1 {score:.4f}")
    print(f"{'mean':<{width}}  pass@1 {sum(scores.values()) / len(scores):.4f}")
    return 0
