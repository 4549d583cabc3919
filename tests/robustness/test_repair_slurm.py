"""`mft-hpc repair` on the real test Slurm cluster: a store broken while the jobs are queued is rebuilt
from the job folders and Slurm accounting, keeps tracking the same jobs, and matches the truth at the end."""

from __future__ import annotations

import time

import pytest
import yaml
from robustness_helpers import checkpoint, corrupt, run_cli

from mft_hpc.config import load_config
from mft_hpc.controller.operations import refresh_run, start_run
from mft_hpc.controller.refresh import in_flight
from mft_hpc.rundir.state import COMPLETED, StateStore


def element_states(root) -> dict[str, tuple]:
    with StateStore.open_reader(root / "state.sqlite") as store:
        return {e.label: (e.state, e.attempts, e.slurm_job_id, e.log_path) for e in store.elements()}


def settle(root, timeout_s: float = 600) -> dict[str, tuple]:
    end = time.monotonic() + timeout_s
    while any(in_flight(e) for e in refresh_run(root)):
        assert time.monotonic() < end, element_states(root)
        time.sleep(2)
    return element_states(root)


@pytest.mark.slurm
@pytest.mark.slow
def test_repair_of_a_queued_slurm_run_tracks_the_same_jobs(tmp_path, tiny_model_dir, benchmarks_dir, slurm_cluster,
                                                           capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({
        "run": {"name": "srepair", "root": str(tmp_path / "runs")},
        "cluster": {"executor": "slurm", "partition": "debug", "time": 10},
        "model": {"path": str(tiny_model_dir)},
        "train": {"enabled": False},
        "generate": {"benchmarks": str(benchmarks_dir), "limit": 4, "shard_size": 2, "tasks": ["mbpp"],
                     "backend": "exact", "dtype": "float32", "max_new_tokens": 8},
        "evaluate": {"enabled": False},
        "submission": {"enabled": False},
    }))
    outcome = start_run(load_config(config))  # everything queued; this "controller" is gone now
    root = tmp_path / "runs" / "srepair"
    submitted = element_states(root)
    checkpoint(root / "state.sqlite")
    corrupt(root / "state.sqlite", "garbage")

    result = run_cli(["repair", str(root)], capsys)
    assert result.code == 0 and "rebuilt state.sqlite: 3 elements" in result.out, result
    rebuilt = element_states(root)
    # the same jobs, attempts and logs; states as Slurm sees them now (queued, running or finished)
    assert {label: (attempts, job, log) for label, (_, attempts, job, log) in rebuilt.items()} == {
        label: (attempts, job, log) for label, (_, attempts, job, log) in submitted.items()}
    assert set(outcome.submitted.values()) == {job for _, _, job, _ in rebuilt.values()}

    final = settle(root)
    assert {state for state, *_ in final.values()} == {COMPLETED}, final
    corrupt(root / "state.sqlite", "truncate")
    assert run_cli(["repair", str(root)], capsys).code == 0
    assert element_states(root) == final
