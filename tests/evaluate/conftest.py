"""Fixtures for the container tests: the real Apptainer and the cached evaluation image."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def _apptainer() -> str | None:
    for path in (os.environ.get("APPTAINER"), shutil.which("apptainer"), "/opt/apptainer/bin/apptainer"):
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def evaluation_image() -> Path:
    """The cached image for the current definition; built here (minutes) when missing."""
    from mft_hpc.evaluate.image import build_image, default_image

    if _apptainer() is None:
        if os.environ.get("MFT_HPC_REQUIRE_CONTAINER") == "1":
            pytest.fail("MFT_HPC_REQUIRE_CONTAINER=1 but apptainer is not installed (containers/install_apptainer.sh)")
        pytest.skip("apptainer not installed (run containers/install_apptainer.sh as root)")
    image = default_image()
    if not image.exists():
        build_image(image)
    return image


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
