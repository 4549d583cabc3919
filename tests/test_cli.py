"""Every verb's --help works; the CLI exits 2 on bad usage."""

from __future__ import annotations

import subprocess
import sys

from mft_hpc.cli.main import VERB_MODULES, build_parser


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mft_hpc", *args], capture_output=True, text=True)


def _verb_paths(parser, prefix=()):
    """All (sub)command paths of the argparse tree."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _verb_paths(sub, prefix + (name,))


def test_top_level_help_lists_every_verb():
    result = run("--help")
    assert result.returncode == 0
    paths = [p for p in _verb_paths(build_parser()) if len(p) == 1]
    assert len(paths) >= len(VERB_MODULES)
    for (verb,) in paths:
        assert verb in result.stdout


def test_every_verb_help_works():
    # in-process: one interpreter for all verbs keeps this fast
    import contextlib
    import io

    import pytest

    for path in _verb_paths(build_parser()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*path, "--help"])
        assert exit_info.value.code == 0, path
        assert "usage: mft-hpc " + " ".join(path) in out.getvalue()


def test_unknown_verb_exits_2():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
