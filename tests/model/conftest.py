"""Fixtures for the model-import tests: the Qwen-1 fixture checkpoint and its native import."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(os.environ.get("MFT_HPC_FIXTURES", REPO.parent / "shared" / "fixtures")) / "qwen1-tiny"


@pytest.fixture(scope="session")
def qwen1_fixture() -> Path:
    """Qwen-1 in its published layout with Qwen-1's own logits and greedy tokens."""
    if not (FIXTURE / "reference.safetensors").is_file():
        pytest.skip(f"Qwen-1 fixture not found at {FIXTURE}")
    return FIXTURE


@pytest.fixture(scope="session")
def imported_fixture(qwen1_fixture, tmp_path_factory) -> Path:
    """The fixture after `mft-hpc model import` (through the CLI), shared by the session."""
    from mft_hpc.cli.main import main

    out = tmp_path_factory.mktemp("imported") / "qwen1-tiny-native"
    assert main(["model", "import", str(qwen1_fixture), str(out)]) == 0
    return out
