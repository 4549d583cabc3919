"""The run-state store: elements, attempts and bulk state updates survive a reopen."""

from __future__ import annotations

import sqlite3

import pytest

from mft_hpc.rundir.state import (
    COMPLETED,
    FAILED,
    PENDING,
    PLANNED,
    RUNNING,
    ElementSpec,
    StateChange,
    StateStore,
)


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "runs" / "demo" / "state.sqlite"


def _plan(store: StateStore) -> list[int]:
    specs = [ElementSpec("train", "main", log_path="/logs/train.out")]
    specs += [ElementSpec("generate", "main", task=task) for task in ("mbpp", "humanevalsynthesize-go")]
    specs += [ElementSpec("evaluate", "main", task="mbpp", element=1)]
    return store.add_elements(specs)


def test_elements_round_trip_through_a_reopen(store_path):
    with StateStore(store_path) as store:
        ids = _plan(store)
        assert store.record_attempt(ids[1], "123_0", log_path="/logs/123_0.out", at=100.0) == 1
        store.update_states([StateChange("123_0", RUNNING, at=110.0)])
        store.update_states([StateChange("123_0", FAILED, last_error="Traceback\n  ...\nOSError: disk full\n", at=120.0)])
        assert store.record_attempt(ids[1], "124_0", at=130.0) == 2

    with StateStore(store_path) as store:
        assert store.run == "demo"
        gen = store.element(ids[1])
        assert (gen.stage, gen.member, gen.task, gen.element) == ("generate", "main", "mbpp", 0)
        assert (gen.slurm_job_id, gen.state, gen.attempts) == ("124_0", PENDING, 2)
        assert gen.submitted_at == 130.0 and gen.started_at is None and gen.ended_at is None
        assert gen.log_path == "/logs/123_0.out"
        first, second = store.attempts(ids[1])
        assert (first.slurm_job_id, first.state, first.ended_at, first.last_error) == ("123_0", FAILED, 120.0, "OSError: disk full")
        assert (second.slurm_job_id, second.state) == ("124_0", PENDING)
        assert store.element(ids[0]).state == PLANNED
        assert store.element(ids[0]).log_path == "/logs/train.out"


def test_adding_the_same_elements_again_keeps_their_state(store_path):
    with StateStore(store_path) as store:
        ids = _plan(store)
        store.record_attempt(ids[0], "7")
        assert _plan(store) == ids
        assert store.element(ids[0]).state == PENDING
        assert len(store.elements()) == 4


def test_bulk_update_sets_timestamps_and_counts_changes(store_path):
    with StateStore(store_path) as store:
        ids = _plan(store)
        for index, element_id in enumerate(ids):
            store.record_attempt(element_id, f"200_{index}", at=1.0)
        changed = store.update_states([
            StateChange("200_0", RUNNING, at=5.0),
            StateChange("200_1", COMPLETED, at=6.0),
            StateChange(ids[2], FAILED, last_error="boom", at=7.0),
            StateChange("999_9", RUNNING),          # unknown job id: ignored
        ])
        assert changed == 3
        assert store.update_states([StateChange("200_0", RUNNING, at=8.0)]) == 0  # no change
        train, gen_mbpp, gen_go, evaluate = (store.element(i) for i in ids)
        assert (train.state, train.started_at, train.ended_at) == (RUNNING, 5.0, None)
        # completed without having been seen running: started = ended = when we saw it
        assert (gen_mbpp.state, gen_mbpp.started_at, gen_mbpp.ended_at) == (COMPLETED, 6.0, 6.0)
        assert (gen_go.state, gen_go.last_error) == (FAILED, "boom")
        assert evaluate.state == PENDING


def test_listing_filters_and_lookup_by_slurm_id_and_label(store_path):
    with StateStore(store_path) as store:
        ids = _plan(store)
        store.add_elements([ElementSpec("generate", "lr2e-4", task="mbpp")])
        store.record_attempt(ids[3], "300_1")
        assert [e.task for e in store.elements(stage="generate", member="main")] == ["humanevalsynthesize-go", "mbpp"]
        assert [e.stage for e in store.elements(member="main")] == ["train", "generate", "generate", "evaluate"]
        assert [e.id for e in store.elements(states=[PENDING])] == [ids[3]]
        assert store.members() == ["lr2e-4", "main"]
        assert store.element("300_1").id == ids[3]
        assert store.element("evaluate/main/mbpp/1").id == ids[3]
        assert store.element("generate/main/mbpp").id == ids[1]
        assert store.element("nothing/here") is None


def test_bad_stage_or_state_is_refused(store_path):
    with StateStore(store_path) as store:
        with pytest.raises(ValueError, match="unknown stage"):
            store.add_elements([ElementSpec("deploy", "main")])
        with pytest.raises(ValueError, match="unknown state"):
            store.update_states([StateChange(1, "exploded")])
        assert store.elements() == []  # the failed transaction left nothing behind


def test_file_is_in_wal_mode_and_readable_while_another_connection_writes(store_path):
    with StateStore(store_path) as writer:
        _plan(writer)
        with StateStore(store_path) as reader:
            writer.update_states([StateChange(1, RUNNING)])
            assert reader.element(1).state == RUNNING
    mode = sqlite3.connect(store_path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_open_existing_does_not_create_a_file(tmp_path):
    assert StateStore.open_existing(tmp_path / "missing.sqlite") is None
    assert not (tmp_path / "missing.sqlite").exists()


def test_slurm_states_map_onto_ours():
    from mft_hpc.rundir.state import CANCELLED, STATES, TIMEOUT, from_slurm_state
    from mft_hpc.slurm.job_states import normalize_state

    assert from_slurm_state(normalize_state("CANCELLED by 0")) == CANCELLED
    assert from_slurm_state("OUT_OF_MEMORY") == FAILED and from_slurm_state("NODE_FAIL") == FAILED
    assert from_slurm_state("TIMEOUT") == TIMEOUT and from_slurm_state("COMPLETING") == RUNNING
    assert from_slurm_state("REQUEUED") == PENDING and from_slurm_state("completed") == COMPLETED
    assert from_slurm_state("SOMETHING_NEW") is None
    assert {from_slurm_state(s) for s in ("PENDING", "RUNNING", "COMPLETED", "FAILED")} <= set(STATES)
