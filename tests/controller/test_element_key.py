"""ElementKey: the name of one DAG element, its state-store columns and its printed form."""

from __future__ import annotations

import dataclasses

import pytest

from mft_hpc.config.schema import Config
from mft_hpc.controller.dag import all_keys, element_specs
from mft_hpc.rundir import RunDir
from mft_hpc.rundir.state import StateStore
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.plan import build_plan


@pytest.mark.parametrize("fields, reason", [
    (("gen", "m0"), "stage 'gen' is not one of train, generate, evaluate, collect"),
    (("train", "m0", "mbpp"), "name a task"),
    (("evaluate", "m0"), "name a task"),
    (("evaluate", "m0", "mbpp", 1), "a shard is a number >= 0 of a generation task"),
    (("generate", "m0", "mbpp", -1), "a shard is a number >= 0"),
    (("generate", "m0", "mbpp", "1"), "a shard is a number >= 0"),
])
def test_a_key_that_names_no_element_is_refused(fields, reason):
    with pytest.raises(ValueError, match=reason):
        ElementKey(*fields)


def test_fields_columns_and_printed_form():
    shard = ElementKey("generate", "m0", "mbpp", 2)
    assert (shard.stage, shard.member, shard.task, shard.shard) == ("generate", "m0", "mbpp", 2)
    assert shard.store_key() == ("generate", "m0", "mbpp", 2)
    assert ElementKey("generate", "m0", "mbpp").store_key() == ("generate", "m0", "mbpp", 0)
    assert ElementKey("train", "m0").store_key() == ("train", "m0", "", 0)
    assert [str(k) for k in (shard, ElementKey("train", "m0"), COLLECT_KEY)] == [
        "generate/m0/mbpp/2", "train/m0", "collect/_run"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        shard.shard = 3  # type: ignore[misc]
    # sorted by stage, member, task, shard (the CLI prints submitted elements in this order)
    keys = [ElementKey("train", "m1"), shard, ElementKey("evaluate", "m0", "mbpp"), ElementKey("generate", "m0", "mbpp", 1)]
    assert [str(k) for k in sorted(keys)] == ["evaluate/m0/mbpp", "generate/m0/mbpp/1", "generate/m0/mbpp/2", "train/m1"]


def test_every_state_store_row_maps_back_to_its_key(tmp_path):
    config = Config.model_validate({
        "run": {"name": "keys", "root": str(tmp_path / "runs")},
        "cluster": {"executor": "slurm", "partition": "debug"},
        "model": {"path": str(tmp_path)},
        "generate": {"benchmarks": str(tmp_path), "tasks": ["mbpp", "humanevalsynthesize-python"], "limit": 4,
                     "shard_size": 2},
        "evaluate": {"enabled": True},
    })
    plan = build_plan(RunDir.create(tmp_path / "runs" / "keys"), [("a", config), ("b", config)], is_sweep=True)
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        rows = store.elements()
    assert sorted(plan.key_of(e) for e in rows) == sorted(all_keys(plan))
    assert {(e.stage, e.member, e.task, e.element) for e in rows} == {k.store_key() for k in all_keys(plan)}
    assert {e.label for e in rows} >= {"generate/a/mbpp/1", "evaluate/b/humanevalsynthesize-python/0"}
