"""Which files are the worker: what the image copies to /opt/mft-hpc/worker, hashes and fingerprints."""

from __future__ import annotations

import os

WORKER_DIR = os.path.dirname(os.path.abspath(__file__))
NOT_SOURCES = ("__pycache__", "prebuilt")   # bytecode, and what --prebuild makes in the image


def source_files(folder: str = WORKER_DIR) -> list[str]:
    """The worker's files in ``folder``, as sorted names (it is flat: no sub-folders besides NOT_SOURCES)."""
    return sorted(name for name in os.listdir(folder)
                  if name not in NOT_SOURCES and not name.endswith(".pyc") and os.path.isfile(os.path.join(folder, name)))
