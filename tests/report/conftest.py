"""Fixtures: synthetic runs in the stages' real formats (the browser fixture is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fakes import build_synthetic_run


@pytest.fixture(scope="session")
def demo_like_run(tmp_path_factory, benchmarks_dir) -> Path:
    """One member, the demo's shape: two training tasks, all 13 tasks with generate.limit 3, local executor."""
    root = tmp_path_factory.mktemp("demo-like")
    return build_synthetic_run(root, "demo-like", members=1, limit=3, benchmarks=benchmarks_dir,
                               model=root / "model", steps=30)


@pytest.fixture(scope="session")
def sweep16_run(tmp_path_factory, benchmarks_dir) -> Path:
    """16 members, the full suite (2,468 problems each), 2,000 logged steps with CoBa weights."""
    root = tmp_path_factory.mktemp("sweep16")
    return build_synthetic_run(root, "sweep16", members=16, limit=None, benchmarks=benchmarks_dir,
                               model=root / "model", steps=2000, coba=True)


@pytest.fixture
def broken_run(tmp_path, benchmarks_dir) -> Path:
    from report_fakes import break_run

    run = build_synthetic_run(tmp_path, "broken", members=3, limit=2, benchmarks=benchmarks_dir,
                              model=tmp_path / "model", steps=20)
    break_run(run)
    return run
