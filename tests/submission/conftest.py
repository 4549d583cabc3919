"""Fixtures: fake run directories (see submission_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from submission_fakes import write_run


@pytest.fixture
def full_run(tmp_path) -> Path:
    return write_run(tmp_path)


@pytest.fixture
def partial_run(tmp_path) -> Path:
    return write_run(tmp_path, limit=4)
