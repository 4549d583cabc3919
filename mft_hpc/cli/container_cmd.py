"""`mft-hpc container build|path`: the evaluation image (toolchains + worker layer), cached by hash."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("container", help="build or locate the evaluation image")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="build the evaluation image with apptainer: containers/evaluation.def (toolchains, "
                      "~11 min) and containers/worker.def over it (the worker, ~20 s), each cached")
    build.add_argument("--out", help="final image path (default: the cache, named by definition and worker hash)")
    build.add_argument("--force", action="store_true", help="rebuild the worker layer even if it exists")
    build.add_argument("--force-toolchains", action="store_true",
                       help="rebuild the toolchain layer too (slow)")
    build.add_argument("--sandbox", action="store_true", help="also unpack it to a directory for --runtime bwrap")
    build.set_defaults(func=_build)
    path = actions.add_parser("path", help="print the cached image path for the current definitions and worker")
    path.add_argument("--sandbox", action="store_true", help="the unpacked directory (bwrap) instead")
    path.set_defaults(func=_path)


def _build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mft_hpc.evaluate.image import build_image, build_sandbox

    sif = build_image(Path(args.out) if args.out else None, force=args.force, force_toolchains=args.force_toolchains)
    print(sif)
    if args.sandbox:
        print(build_sandbox(sif))
    return 0


def _path(args: argparse.Namespace) -> int:
    from mft_hpc.evaluate.image import default_image

    print(default_image(sandbox=args.sandbox))
    return 0
