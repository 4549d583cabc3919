"""`mft-hpc config check|show FILE`: validate a config, print the resolved members."""

from __future__ import annotations

import argparse

from mft_hpc.config import dump_config, load_config


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("config", help="validate or show a config file")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a config as `run` does; exit 2 with file:line: key: reason")
    check.add_argument("file")
    check.add_argument("--no-path-check", action="store_true",
                       help="skip checking that input paths exist and the generation backend is installed")
    check.set_defaults(func=_check)
    show = actions.add_parser("show", help="print the resolved config of every sweep member and the "
                                           "resources of each stage's jobs")
    show.add_argument("file")
    show.set_defaults(func=_show)
    reference = actions.add_parser("reference", help="print the config reference (Markdown)")
    reference.set_defaults(func=_reference)


def _check(args: argparse.Namespace) -> int:
    from mft_hpc.controller.operations import validate_members

    loaded = load_config(args.file, check_paths=not args.no_path_check)
    validate_members(loaded, check_paths=not args.no_path_check)  # exactly what `mft-hpc run` checks
    names = ", ".join(name for name, _ in loaded.members)
    print(f"{args.file}: ok ({len(loaded.members)} member{'s' if len(loaded.members) != 1 else ''}: {names})")
    return 0


def _show(args: argparse.Namespace) -> int:
    from mft_hpc.config.stages import STAGES, describe, resolve_stage, stages_to_run

    loaded = load_config(args.file, check_paths=False)
    for name, member in loaded.members:
        print(f"# member: {name}")
        print(dump_config(member))
    # comments, so that the output stays valid YAML; members share one cluster section
    cluster = loaded.members[0][1].cluster
    running = stages_to_run([member for _, member in loaded.members])
    print(f"# resources per stage (executor: {cluster.executor}; cluster.stages and stage defaults applied):")
    for stage in STAGES:
        note = "" if stage in running else "  (not run: disabled)"
        print(f"#   {stage:<9} {describe(resolve_stage(cluster, stage))}{note}")
    return 0


def _reference(args: argparse.Namespace) -> int:
    from mft_hpc.config.reference import render_reference

    print(render_reference())
    return 0
