"""Shared fixtures: the tiny offline model and the real test Slurm cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(os.environ.get("MFT_HPC_BENCHMARKS", REPO.parent / "shared" / "benchmarks"))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    if not (BENCHMARKS / "mbpp" / "mbpp.jsonl").exists():
        pytest.skip(f"benchmark data not found at {BENCHMARKS}")
    return BENCHMARKS


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Qwen2 + ChatML tokenizer built locally (no Hub), shared by the whole session."""
    from mft_hpc.model.tiny import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("models") / "tiny-qwen2")


def _slurm_answers() -> bool:
    if shutil.which("scontrol") is None:
        return False
    try:
        return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The real test cluster (tests/cluster/up.sh). Skips without one, unless CI requires it."""
    if not _slurm_answers():
        if os.environ.get("MFT_HPC_REQUIRE_SLURM") == "1":
            pytest.fail("MFT_HPC_REQUIRE_SLURM=1 but no Slurm cluster answers `scontrol ping`")
        pytest.skip("no Slurm cluster (run tests/cluster/up.sh as root)")


def _apptainer_binary() -> str | None:
    for path in (os.environ.get("APPTAINER"), shutil.which("apptainer"), "/opt/apptainer/bin/apptainer"):
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def evaluation_image() -> Path:
    """The evaluation image (layer 2: toolchains + worker) for the current definitions and worker.

    Layer 2 is built here when missing (~20 s); the toolchain layer (~11 min) never is:
    without it the container tests fail under MFT_HPC_REQUIRE_CONTAINER=1 and skip otherwise.
    """
    from mft_hpc.evaluate.image import build_worker_layer, default_image, toolchain_image

    def missing(reason: str):
        if os.environ.get("MFT_HPC_REQUIRE_CONTAINER") == "1":
            pytest.fail(f"MFT_HPC_REQUIRE_CONTAINER=1 but {reason}")
        pytest.skip(reason)

    if _apptainer_binary() is None:
        missing("apptainer is not installed (run containers/install_apptainer.sh as root)")
    image = default_image()
    if not image.exists():
        base = toolchain_image()
        if not base.exists():
            missing(f"the toolchain image {base} is not built "
                    "(`mft-hpc container build` or containers/setup.sh, ~11 min)")
        build_worker_layer(base, image)
    return image


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium over the DevTools pipe (tests/chromium.py). Skips without one, unless CI requires it."""
    from chromium import Browser, chromium_binary

    if chromium_binary() is None:
        if os.environ.get("MFT_HPC_REQUIRE_BROWSER") == "1":
            pytest.fail("MFT_HPC_REQUIRE_BROWSER=1 but chromium is not installed (tests/report/install_chromium.sh)")
        pytest.skip("chromium is not installed (run tests/report/install_chromium.sh as root)")
    with Browser() as running:
        yield running
