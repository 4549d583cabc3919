"""Atomic writes and .done markers: a partial file never looks finished."""

from __future__ import annotations

import json
import os

import pytest

from mft_hpc.rundir import RunDir, atomic_open, atomic_write_json, done_info, is_done, is_run_dir, mark_done


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"b": 2})
    assert json.loads(target.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp files left behind


def test_failed_write_leaves_old_content_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half-written")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_done_marker_written_last(tmp_path):
    target = tmp_path / "stage"
    target.mkdir()
    assert not is_done(target)
    mark_done(target, {"n": 3})
    assert is_done(target)
    assert done_info(target) == {"n": 3}
    assert json.loads((tmp_path / "stage.done").read_text())["certifies"] == {"kind": "dir", "files": {}}


def test_rundir_layout(tmp_path):
    run = RunDir.create(tmp_path / "runs" / "r1")
    assert run.logs.is_dir() and run.collect.is_dir()
    member = run.member("lr1e-4")
    assert member.stage("generate") == member.generate == run.root / "members" / "lr1e-4" / "generate"
    assert member.generations_file("mbpp", "m") == member.generate / "generations_m" / "generations_mbpp_m.json"
    assert member.metrics_file("mbpp", "m") == member.evaluate / "metrics_m" / "metrics_mbpp_m.json"
    assert member.data_cache == run.root / "cache" / "data"
    with pytest.raises(ValueError):
        member.stage("bogus")
    assert not is_run_dir(run.root) and run.member_names() == []
    member.generate.mkdir(parents=True)
    assert is_run_dir(run.root) and run.member_names() == ["lr1e-4"] and not is_run_dir(member.generate)


def test_atomic_writes_get_the_mode_open_would_give(tmp_path):
    """Not mkstemp's 0600: a run on a shared filesystem is readable as the umask allows."""
    from mft_hpc.rundir.atomic import atomic_write_text

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o640
