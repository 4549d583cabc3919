"""Fixtures for the container tests: the real runtimes over the cached evaluation image (tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def apptainer_runtime(evaluation_image, tmp_path_factory):
    from mft_hpc.evaluate.runtime import make_runtime

    runtime = make_runtime("apptainer", str(evaluation_image))
    runtime.probe()
    return runtime


@pytest.fixture(scope="session")
def bwrap_runtime(evaluation_image, tmp_path_factory):
    from mft_hpc.evaluate.image import build_sandbox
    from mft_hpc.evaluate.runtime import make_runtime

    if shutil.which("bwrap") is None:
        pytest.skip("bwrap not installed")
    runtime = make_runtime("bwrap", str(build_sandbox(Path(evaluation_image))))
    runtime.probe()
    return runtime


@pytest.fixture(params=["apptainer", "bwrap"])
def sandbox_runtime(request):
    return request.getfixturevalue(f"{request.param}_runtime")
