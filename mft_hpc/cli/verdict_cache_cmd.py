"""`mft-hpc verdict-cache size|prune DIR`: how big an evaluation verdict cache is, and trimming it."""

from __future__ import annotations

import argparse

from mft_hpc.cli.options import non_negative_float


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("verdict-cache", help="size or prune an evaluation verdict cache")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    size = actions.add_parser("size", help="entries and bytes held")
    size.add_argument("dir", help="the cache directory (a run's is <run root>/verdict-cache)")
    size.set_defaults(func=_size)
    prune = actions.add_parser("prune", help="remove old entries (and temporary files left by dead writers)")
    prune.add_argument("dir", help="the cache directory")
    prune.add_argument("--older-than-days", type=non_negative_float, help="remove entries written more than this many days ago")
    prune.add_argument("--max-mb", type=non_negative_float, help="then remove the oldest entries until at most this many MB remain")
    prune.set_defaults(func=_prune)


def _cache(path: str):
    from pathlib import Path

    from mft_hpc.errors import UserError
    from mft_hpc.evaluate.cache import VerdictCache

    if not Path(path).is_dir():
        raise UserError(f"{path}: verdict cache directory not found")
    return VerdictCache(path)


def _size(args: argparse.Namespace) -> int:
    size = _cache(args.dir).size()
    print(f"{args.dir}: {size['entries']} verdicts, {size['bytes'] / 2**20:.1f} MB"
          + (f", {size['temporary_files']} temporary files" if size["temporary_files"] else ""))
    return 0


def _prune(args: argparse.Namespace) -> int:
    cache = _cache(args.dir)
    done = cache.prune(older_than_s=None if args.older_than_days is None else args.older_than_days * 86400,
                       max_bytes=None if args.max_mb is None else int(args.max_mb * 2**20))
    size = cache.size()
    print(f"{args.dir}: removed {done['removed']} files ({done['bytes_freed'] / 2**20:.1f} MB); "
          f"{size['entries']} verdicts, {size['bytes'] / 2**20:.1f} MB left")
    return 0
