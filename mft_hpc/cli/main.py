"""`mft-hpc` entry point: one verb per module in mft_hpc.cli, each with ``register(subparsers)``.

A verb's handler takes the parsed ``argparse.Namespace`` and returns an exit code (or None for 0).
UserError (bad input) is printed as ``mft-hpc: error: ...`` without a traceback and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mft_hpc import __version__
from mft_hpc.cli.logs import library_warnings
from mft_hpc.errors import UserError

# Verb modules, in the order `mft-hpc --help` lists them. Add one line per new verb module.
VERB_MODULES = (
    "mft_hpc.cli.config_cmd",
    "mft_hpc.cli.run_cmd",
    "mft_hpc.cli.evaluate_cmd",
    "mft_hpc.cli.container_cmd",
    "mft_hpc.cli.verdict_cache_cmd",
    "mft_hpc.cli.data_cmd",
    "mft_hpc.cli.model_cmd",
    "mft_hpc.cli.prompts_cmd",
    "mft_hpc.cli.postprocess_cmd",
    "mft_hpc.cli.pack_cmd",
    "mft_hpc.cli.status_cmd",
    "mft_hpc.cli.logs_cmd",
    "mft_hpc.cli.doctor_cmd",
    "mft_hpc.cli.report_cmd",
    "mft_hpc.cli.repair_cmd",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line (``mft-hpc: error: ...``, exit 2) like every other bad input."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mft-hpc",
        description="Multi-task LoRA fine-tuning, generation and evaluation of code LLMs on Slurm.",
    )
    parser.add_argument("--version", action="version", version=f"mft-hpc {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for module_name in VERB_MODULES:
        importlib.import_module(module_name).register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    with library_warnings():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        code = args.func(args)
    except UserError as err:
        for line in str(err).splitlines() or [type(err).__name__]:
            print(f"mft-hpc: error: {line}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a path the user gave that cannot be read or written (permissions, disk full)
        where = f"{err.filename}: " if err.filename else ""
        print(f"mft-hpc: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mft-hpc: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
