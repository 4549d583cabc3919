"""The verdict cache on real files: keys that separate environments and limits, corrupt entries
ignored with a warning, concurrent writers in separate processes, flaky markers, pruning."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time

import pytest

from mft_hpc.cli.main import main
from mft_hpc.evaluate.cache import VerdictCache, image_identity, key_digest, verdict_key
from mft_hpc.evaluate.known_broken import FLAKY

ENV = {"runtime": "apptainer", "image": "file:aaaa", "sandbox": "f1", "limits": {"root": True, "toolchain": {},
                                                                              "memory_mb_per_worker": 3072}}


def _job(index=0, source="print(1)", task="humanevalsynthesize-python", timeout=10.0):
    return {"id": index, "task": task, "index": index, "lang": "python", "source": source, "test": "assert True",
            "timeout": timeout, "compile_timeout": 0.0}


def _record(verdict="pass", reason=""):
    return {"id": 0, "verdict": verdict, "reason": reason, "seconds": 0.25}


def test_round_trip_and_key_fields(tmp_path):
    cache = VerdictCache(tmp_path)
    key = verdict_key(_job(), ENV)
    assert cache.get(key) is None
    assert cache.put(key, _record("fail", "AssertionError")) is None
    entry = cache.get(key)
    assert (entry.verdict, entry.reason, entry.seconds, entry.flaky) == ("fail", "AssertionError", 0.25, None)
    assert cache.path(key_digest(key)).is_file()
    assert cache.size()["entries"] == 1


@pytest.mark.parametrize("change", [
    {"image": "file:bbbb"},                                                    # another image build
    {"sandbox": "f2"},                                                         # other worker / toolchains
    {"runtime": "bwrap"},
    {"limits": {**ENV["limits"], "memory_mb_per_worker": 1024}},               # other sandbox limits
])
def test_entry_from_another_environment_is_never_used(tmp_path, change):
    cache = VerdictCache(tmp_path)
    cache.put(verdict_key(_job(), ENV), _record("pass"))
    assert cache.get(verdict_key(_job(), {**ENV, **change})) is None


@pytest.mark.parametrize("job", [_job(timeout=3.0), _job(source="print(2)"), _job(index=1),
                                 _job(task="humanevalfixtests-python"), {**_job(), "test": "assert False"}])
def test_entry_for_other_limits_program_problem_or_test_is_never_used(tmp_path, job):
    cache = VerdictCache(tmp_path)
    cache.put(verdict_key(_job(), ENV), _record("pass"))
    assert cache.get(verdict_key(job, ENV)) is None


def test_image_identity_changes_with_head_or_tail(tmp_path):
    image = tmp_path / "x.sif"
    image.write_bytes(b"h" * 3_000_000)
    first = image_identity(str(image))
    with open(image, "r+b") as handle:
        handle.seek(2_999_000)
        handle.write(b"t")
    assert image_identity(str(image)) != first
    assert image_identity(str(tmp_path)).startswith("dir:")


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b"[]", b'{"verdict": "pass"}'])
def test_corrupt_entry_is_ignored_with_a_warning_and_replaced(tmp_path, caplog, content):
    cache = VerdictCache(tmp_path)
    key = verdict_key(_job(), ENV)
    path = cache.path(key_digest(key))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="mft_hpc.evaluate.cache"):
        assert cache.get(key) is None
    assert "corrupt verdict cache entry" in caplog.text and str(path) in caplog.text
    cache.put(key, _record("fail"))                  # the re-judged verdict replaces the corrupt file
    assert cache.get(key).verdict == "fail"


def test_entry_under_another_keys_name_is_not_trusted(tmp_path, caplog):
    cache = VerdictCache(tmp_path)
    passing, other = verdict_key(_job(), ENV), verdict_key(_job(source="print(2)"), ENV)
    cache.put(passing, _record("pass"))
    target = cache.path(key_digest(other))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cache.path(key_digest(passing)).read_bytes())    # copied over / misplaced
    assert cache.get(other) is None
    assert "does not match" in caplog.text


def test_unreadable_entry_is_ignored_with_a_warning(tmp_path, caplog):
    cache = VerdictCache(tmp_path)
    key = verdict_key(_job(), ENV)
    cache.path(key_digest(key)).mkdir(parents=True)        # reading it fails (EISDIR), whoever we are
    assert cache.get(key) is None
    assert "unreadable verdict cache entry" in caplog.text
    assert cache.put(key, _record("pass")) is None           # cannot be replaced either: a warning, no error
    assert "cannot write" in caplog.text


def test_unwritable_cache_warns_once_and_evaluation_goes_on(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    cache = VerdictCache(tmp_path / "file" / "cache")          # its parent is a file: nothing can be created
    for i in range(5):
        assert cache.put(verdict_key(_job(index=i), ENV), _record("pass")) is None
    assert caplog.text.count("cannot write") == 1 and cache.write_failures == 5


def _writer(root: str, worker: int, n: int, start) -> None:
    start.wait()
    cache = VerdictCache(root)
    for i in range(n):
        shared = verdict_key(_job(index=i), ENV)
        cache.put(shared, _record("pass" if i % 10 else ("pass" if worker == 0 else "fail")))
        cache.put(verdict_key(_job(index=i, source=f"print('w{worker}')"), ENV), _record("fail", f"w{worker}"))


def test_concurrent_writers_lose_nothing_and_corrupt_nothing(tmp_path):
    """Four processes write 200 entries each at once; half the keys are written by all four (a tenth
    of those with disagreeing pass/fail verdicts, as a flaky problem would give)."""
    n, workers = 100, 4
    context = multiprocessing.get_context("fork")
    start = context.Event()
    procs = [context.Process(target=_writer, args=(str(tmp_path), w, n, start)) for w in range(workers)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    cache = VerdictCache(tmp_path)
    assert cache.size() == {"entries": n + n * workers, "bytes": cache.size()["bytes"], "temporary_files": 0}
    for i in range(n):
        entry = cache.get(verdict_key(_job(index=i), ENV))
        if i % 10:
            assert (entry.verdict, entry.flaky) == ("pass", None)
        else:                     # pass and fail were both written: never a plain verdict
            assert entry.flaky and "disagreement" in entry.flaky
        for w in range(workers):
            entry = cache.get(verdict_key(_job(index=i, source=f"print('w{w}')"), ENV))
            assert (entry.verdict, entry.reason) == ("fail", f"w{w}")


def test_documented_flaky_problem_is_stored_with_its_marker(tmp_path):
    task, index = next(iter(FLAKY))
    cache = VerdictCache(tmp_path)
    key = verdict_key(_job(index=index, task=task), ENV)
    assert cache.put(key, _record("pass")) == FLAKY[(task, index)]
    assert cache.get(key).flaky == FLAKY[(task, index)]
    stored = json.loads(cache.path(key_digest(key)).read_text())
    assert stored["flaky"] == FLAKY[(task, index)]


def test_prune_by_age_size_and_stale_temporary_files(tmp_path):
    cache = VerdictCache(tmp_path)
    keys = [verdict_key(_job(index=i), ENV) for i in range(6)]
    now = time.time()
    for age, key in zip((10, 9, 8, 3, 2, 1), keys):                 # days old
        cache.put(key, _record())
        os.utime(cache.path(key_digest(key)), (now - age * 86400,) * 2)
    stale = cache.path(key_digest(keys[0])).with_name(".dead-writer.tmp")
    stale.write_text("{")
    os.utime(stale, (now - 7200,) * 2)
    assert cache.prune(older_than_s=5 * 86400)["removed"] == 4        # three old entries + the temp file
    assert [cache.get(k) is not None for k in keys] == [False, False, False, True, True, True]
    one = cache.path(key_digest(keys[5])).stat().st_size
    cache.prune(max_bytes=one)                                         # the newest one stays
    assert [cache.get(k) is not None for k in keys] == [False] * 5 + [True]


def test_verdict_cache_cli(tmp_path, capsys):
    cache = VerdictCache(tmp_path)
    for i in range(3):
        cache.put(verdict_key(_job(index=i), ENV), _record())
    assert main(["verdict-cache", "size", str(tmp_path)]) == 0
    assert "3 verdicts" in capsys.readouterr().out
    assert main(["verdict-cache", "prune", str(tmp_path), "--max-mb", "0"]) == 0
    assert "removed 3 files" in capsys.readouterr().out
    assert main(["verdict-cache", "size", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
