"""A runtime probe that passed is remembered per image file and reused only for the same sandbox:
the same image file, runtime binary, command line and limits (real apptainer; the image is a
file that cannot start, so any probe that runs fails, and one that returns facts was remembered)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from mft_hpc.errors import UserError
from mft_hpc.evaluate import runtime as runtime_module
from mft_hpc.evaluate.runtime import PROBE_CACHE_ENV, cgroup_limits_usable, make_runtime, probe_cache_dir

GOOD_FACTS = {"uid": 1001, "interfaces": ["lo"], "writable_root": False, "cap_eff": "0000000000000000",
              "no_new_privs": "1", "python": "3.11.2", "fingerprint": "f" * 64}


@pytest.fixture
def fake_image(tmp_path, monkeypatch):
    """An image file apptainer cannot start, and an empty probe cache of this test's own."""
    try:
        runtime_module.find_apptainer("apptainer")
    except UserError:
        pytest.skip("apptainer not installed")
    monkeypatch.setenv(PROBE_CACHE_ENV, str(tmp_path / "probes"))
    image = tmp_path / "image.sif"
    image.write_bytes(os.urandom(3 << 20))
    return image


def _remember(runtime, facts, key=None) -> None:
    record = probe_cache_dir() / f"{runtime.probe_key()}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"key": key or runtime.probe_key(), "facts": facts}))


def test_probe_key_follows_image_file_and_command_line(fake_image, tmp_path, monkeypatch):
    key = make_runtime("apptainer", str(fake_image)).probe_key()
    assert key is not None and make_runtime("apptainer", str(fake_image)).probe_key() == key
    copy = tmp_path / "copy.sif"
    copy.write_bytes(fake_image.read_bytes())
    assert make_runtime("apptainer", str(copy)).probe_key() != key             # another file
    data = bytearray(fake_image.read_bytes())
    data[-1] ^= 1
    fake_image.write_bytes(bytes(data))                                         # rebuilt in place
    changed = make_runtime("apptainer", str(fake_image)).probe_key()
    assert changed != key
    if cgroup_limits_usable():                                                  # root: cgroup limits in argv
        monkeypatch.setattr(runtime_module, "MEMORY_PER_WORKER_MB", runtime_module.MEMORY_PER_WORKER_MB + 1)
        assert make_runtime("apptainer", str(fake_image)).probe_key() != changed
    bound = make_runtime("apptainer", str(fake_image))
    bound.worker_dir = tmp_path                                                 # a host folder may change
    assert bound.probe_key() is None


def test_a_remembered_probe_starts_no_sandbox(fake_image):
    runtime = make_runtime("apptainer", str(fake_image))
    with pytest.raises(UserError, match="does not start"):                     # nothing remembered: it probes
        runtime.probe()
    assert not list(probe_cache_dir().glob("*.json"))                          # a failed probe is not remembered
    _remember(runtime, GOOD_FACTS)
    assert make_runtime("apptainer", str(fake_image)).probe() == GOOD_FACTS


@pytest.mark.parametrize("record", ["not json", json.dumps({"key": "another", "facts": GOOD_FACTS}),
                                    json.dumps({"facts": {"uid": 1001}}), json.dumps([1, 2])])
def test_a_broken_or_foreign_record_is_ignored_with_a_warning(fake_image, record, caplog):
    runtime = make_runtime("apptainer", str(fake_image))
    path = probe_cache_dir() / f"{runtime.probe_key()}.json"
    path.parent.mkdir(parents=True)
    path.write_text(record)
    with caplog.at_level(logging.WARNING), pytest.raises(UserError, match="does not start"):
        runtime.probe()                                                         # probed again, not trusted
    assert str(path) in caplog.text


def test_remembered_facts_are_checked_again(fake_image):
    runtime = make_runtime("apptainer", str(fake_image))
    _remember(runtime, {**GOOD_FACTS, "interfaces": ["eth0", "lo"]})
    with pytest.raises(UserError, match="network not isolated"):
        runtime.probe()


@pytest.mark.container
def test_the_real_probe_is_remembered_and_reused(evaluation_image, tmp_path, monkeypatch):
    monkeypatch.setenv(PROBE_CACHE_ENV, str(tmp_path / "probes"))
    first = make_runtime("apptainer", str(evaluation_image)).probe()
    records = list(probe_cache_dir().glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["facts"] == first
    assert make_runtime("apptainer", str(evaluation_image)).probe() == first
    sandbox = make_runtime("bwrap", str(evaluation_image.with_suffix(".rootfs"))) \
        if evaluation_image.with_suffix(".rootfs").is_dir() else None
    if sandbox is not None:                                                    # a directory: probed every time
        assert sandbox.probe_key() is None
