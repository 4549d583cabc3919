"""Option checks shared by the verbs: integer ranges (as argparse types) and output paths, checked
before any work starts so a bad option never costs a run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

from mft_hpc.errors import UserError


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _blocking_file(path: Path) -> Path | None:
    """An existing non-directory among ``path``'s parents (then nothing can be created below it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """A file we are about to write: not a directory, its folder creatable."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{option} {path}: is a directory; give a file path")
    blocking = _blocking_file(out)
    if blocking is not None:
        raise UserError(f"{option} {path}: {blocking} is a file, not a directory")
    return out


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """A folder we are about to write into: a directory or creatable."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {path}: exists and is not a directory")
    blocking = _blocking_file(out)
    if blocking is not None:
        raise UserError(f"{option} {path}: {blocking} is a file, not a directory")
    return out


def check_not_input(out: str | os.PathLike, inputs: list[str | os.PathLike], option: str = "--out") -> None:
    """Writing ``out`` must not replace one of the ``inputs`` (the same file under another name too)."""
    out_path = Path(out)
    for source in inputs:
        source_path = Path(source)
        same = (out_path.exists() and source_path.exists() and os.path.samefile(out_path, source_path)) or (
            out_path.resolve() == source_path.resolve())
        if same:
            raise UserError(f"{option} {out}: is the input {source}; writing it would destroy the input")
