"""Slurm-layer test helpers: job functions travel by value, so jobs need not import tests/."""

from __future__ import annotations

import cloudpickle
import pytest

import slurm_layer_jobs
from mft_hpc.config.sections.cluster import ClusterSection

cloudpickle.register_pickle_by_value(slurm_layer_jobs)


@pytest.fixture
def cluster() -> ClusterSection:
    return ClusterSection(executor="slurm", partition="debug", time=5, cpus_per_task=1, array_parallelism=4)

