"""`mft-hpc run|resume|retry|cancel`: submit a run's DAG and act on it later from its directory."""

from __future__ import annotations

import argparse

from mft_hpc.cli.logs import narrate
from mft_hpc.cli.options import at_least
from mft_hpc.config import LoadedConfig, load_config


def _submission_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config")
    parser.add_argument("--executor", choices=("slurm", "local"), help="override cluster.executor")
    parser.add_argument("--dry-run", action="store_true",
                        help="print every sbatch script and sandbox command; submit nothing")


def register(verbs: argparse._SubParsersAction) -> None:
    run = verbs.add_parser("run", help="submit the whole pipeline of a config (train → generate → evaluate → collect)",
                           description="Submit the run's DAG through Slurm in one pass (the command then exits), "
                                       "or, with the local executor, run it here stage by stage. "
                                       "Evaluate an existing model (model.path): run CONFIG --skip train.")
    _submission_options(run)
    selection = run.add_mutually_exclusive_group()
    selection.add_argument("--only", metavar="STAGES", help="run only these stages, e.g. train or generate,evaluate "
                                                            "(stages: train, generate, evaluate, collect)")
    selection.add_argument("--skip", metavar="STAGES", help="run every enabled stage but these, e.g. train")
    run.set_defaults(func=_run)

    train = verbs.add_parser("train", help="submit the training only (= run CONFIG --only train)",
                             description="Train every sweep member (one Slurm array) in a new run directory; "
                                         "generate/evaluate/collect are not submitted.")
    _submission_options(train)
    train.set_defaults(func=_run, only="train", skip=None)

    resume = verbs.add_parser("resume", help="re-submit every element whose output is not finished")
    resume.add_argument("run", metavar="RUN", help="run directory (runs/<name>)")
    resume.add_argument("--rebuild-state", action="store_true",
                        help="first rebuild state.sqlite from the run directory (as `mft-hpc repair`)")
    resume.add_argument("--verify", action="store_true",
                        help="re-hash every finished output against its .done marker (default: size + mtime)")
    resume.set_defaults(func=_resume)

    retry = verbs.add_parser("retry", help="re-submit failed elements only (capped attempts)")
    retry.add_argument("run", metavar="RUN")
    retry.add_argument("--force", action="store_true", help="also retry elements that raised an exception")
    retry.add_argument("--max-attempts", type=at_least(1), default=3, help="per element (default 3)")
    retry.set_defaults(func=_retry)

    cancel = verbs.add_parser("cancel", help="cancel every queued or running job of a run")
    cancel.add_argument("run", metavar="RUN")
    cancel.set_defaults(func=_cancel)


PER_ELEMENT_LINES = 60  # above this many submitted elements, one line per stage instead


def _print_outcome(outcome) -> None:
    if len(outcome.submitted) > PER_ELEMENT_LINES:
        by_stage: dict[str, list[str]] = {}
        for key, job_id in outcome.submitted.items():
            by_stage.setdefault(key.stage, []).append(job_id)
        for stage, ids in by_stage.items():
            arrays = sorted({i.split("_")[0] for i in ids}, key=lambda i: (len(i), i))
            print(f"submitted {stage:<9} {len(ids):>6} elements in {len(arrays)} job(s): {' '.join(arrays)}")
    else:
        for key, job_id in sorted(outcome.submitted.items()):
            task = key.task + (f" shard {key.shard}" if key.shard is not None else "")
            print(f"submitted {key.stage:<9} {key.member:<20} {task:<28} {job_id}")
    if outcome.submitted:
        print(f"{len(outcome.submitted)} elements, {outcome.sbatch_calls} sbatch call(s)")
    for note in outcome.notes:
        print(note)
    for key, why in sorted(outcome.skipped.items()):
        print(f"not retried {key.stage} {key.member} {key.task}{'' if key.shard is None else f' {key.shard}'}: {why}")
    if not outcome.submitted and not outcome.skipped:
        print("nothing to submit: every element is finished, queued or running")


def load_selected(path: str, only: str | None, skip: str | None) -> LoadedConfig:
    """The config with the stages left out by ``--only``/``--skip`` disabled (mft_hpc.config.selection)."""
    from mft_hpc.config.selection import check_selection, disabled_overrides, parse_stages, selected_stages

    if only is None and skip is None:
        return load_config(path)
    selected = selected_stages(only, skip)
    as_written = load_config(path, check_paths=False).config
    check_selection(as_written, parse_stages("--only", only) if only is not None else None, selected, path)
    return load_config(path, overrides=disabled_overrides(selected))


def _run(args: argparse.Namespace) -> int:
    from mft_hpc.controller.operations import start_run

    narrate()
    loaded = load_selected(args.config, args.only, args.skip)
    outcome = start_run(loaded, executor=args.executor, dry_run=args.dry_run)
    if outcome.dry_run is not None:
        print(outcome.dry_run)
        print(f"# dry run: {len(outcome.submitted)} elements in {outcome.sbatch_calls} sbatch call(s) would be "
              "submitted; nothing was submitted")
        return 0
    _print_outcome(outcome)
    name = loaded.config.run.name
    print(f"watch it with: mft-hpc status {loaded.config.run.root}/{name} --watch")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from mft_hpc.controller.operations import resume

    _print_outcome(resume(args.run, rebuild_state=args.rebuild_state, announce=print, verify=args.verify))
    return 0


def _retry(args: argparse.Namespace) -> int:
    from mft_hpc.controller.operations import retry

    _print_outcome(retry(args.run, force=args.force, max_attempts=args.max_attempts))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from mft_hpc.controller.operations import cancel

    ids = cancel(args.run)
    shown = ids if len(ids) <= PER_ELEMENT_LINES else sorted({i.split("_")[0] for i in ids}, key=lambda i: (len(i), i))
    print(f"cancelled {len(ids)} job(s)" + (f": {' '.join(shown)}" if ids else "")
          + (" (arrays)" if shown is not ids else ""))
    return 0
