"""`mft-hpc container build|path`: the evaluation image, cached by definition hash."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("container", help="build or locate the evaluation image")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="build containers/evaluation.def with apptainer (cached)")
    build.add_argument("--out", help="image path (default: the cache, named by definition hash)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.add_argument("--sandbox", action="store_true", help="also unpack it to a directory for --runtime bwrap")
    build.set_defaults(func=_build)
    path = actions.add_parser("path", help="print the cached image path for the current definition")
    path.add_argument("--sandbox", action="store_true", help="the unpacked directory (bwrap) instead")
    path.set_defaults(func=_path)


def _build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mft_hpc.evaluate.image import build_image, build_sandbox

    sif = build_image(Path(args.out) if args.out else None, force=args.force)
    print(sif)
    if args.sandbox:
        print(build_sandbox(sif))
    return 0


def _path(args: argparse.Namespace) -> int:
    from mft_hpc.evaluate.image import default_image

    print(default_image(sandbox=args.sandbox))
    return 0
