"""Fixtures for the training tests: demo-like two-task data next to the tiny model."""

from __future__ import annotations

import os

import pytest

from tests.train.helpers import REFERENCE, make_config, write_tasks

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def task_paths(tmp_path_factory) -> list[str]:
    return write_tasks(tmp_path_factory.mktemp("train-data"), n_per_task=8)


@pytest.fixture(scope="session")
def torch_one_thread():
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, tiny_model_dir, task_paths, torch_one_thread):
    """One uninterrupted single-process run of the REFERENCE config: (config, member dir)."""
    from mft_hpc.train import train_member

    config = make_config(tiny_model_dir, task_paths, **REFERENCE)
    member = tmp_path_factory.mktemp("reference") / "member"
    train_member(config, member)
    return config, member
