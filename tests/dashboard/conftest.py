"""Fixtures: fake run directories (see dashboard_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fakes import build_run


@pytest.fixture
def fake_run(tmp_path) -> Path:
    return build_run(tmp_path)
