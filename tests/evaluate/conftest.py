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


def judge_cold_then_warm(runtime, jobs: list[dict], cache_dir: Path, workers: int = 2) -> dict[int, dict]:
    """Judge ``jobs`` through a fresh verdict cache (each job twice in the batch: the copy must be
    deduplicated, with the same verdict), then again with the cache warm through a runtime that
    cannot start any sandbox: every verdict and reason must come back identical, from the cache.
    Returns the cold records by job id."""
    import dataclasses

    from mft_hpc.evaluate.cache import EVALUATOR_ERROR, VerdictCache, cacheable
    from mft_hpc.evaluate.judge import judge

    cache = VerdictCache(cache_dir)
    offset = max(job["id"] for job in jobs) + 1
    copies = [{**job, "id": job["id"] + offset} for job in jobs]
    cold: dict[int, dict] = {}
    counts = judge(runtime, jobs + copies, workers, lambda r: cold.__setitem__(r["id"], r), cache)
    assert counts == {"judged": len(jobs), "reused": 0, "duplicates": len(jobs)}
    for job in jobs:
        original, copy = cold[job["id"]], cold[job["id"] + offset]
        assert not original["cached"] and copy["cached"]
        assert (copy["verdict"], copy["reason"]) == (original["verdict"], original["reason"])
    # the warm pass: what was stored comes back unchanged without a sandbox; a verdict that says
    # the evaluator failed (e.g. starved by a neighbour's fork bomb) is never stored
    stored = [job for job in jobs if cacheable(cold[job["id"]])]
    assert all(cold[job["id"]]["reason"].startswith(EVALUATOR_ERROR) for job in jobs if job not in stored)
    dead = dataclasses.replace(runtime, binary="/bin/false")     # any sandbox start would raise
    warm: dict[int, dict] = {}
    assert judge(dead, stored, workers, lambda r: warm.__setitem__(r["id"], r), cache)["reused"] == len(stored)
    assert {i: (r["verdict"], r["reason"], r["cached"]) for i, r in warm.items()} == \
        {job["id"]: (cold[job["id"]]["verdict"], cold[job["id"]]["reason"], True) for job in stored}
    return {job["id"]: cold[job["id"]] for job in jobs}
