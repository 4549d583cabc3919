"""A Qwen-1 model.path is imported once into a content-keyed cache; concurrent imports share one copy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from mft_hpc.rundir import is_done

IMPORT_IN_CHILD = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "from mft_hpc.model.import_cache import import_cached\n"
    "print('RESULT', import_cached(sys.argv[1], sys.argv[2]))\n"
)


def test_concurrent_imports_convert_once_and_share_the_copy(qwen1_fixture, tmp_path):
    cache = tmp_path / "cache"
    children = [subprocess.Popen([sys.executable, "-c", IMPORT_IN_CHILD, str(qwen1_fixture), str(cache)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    results = {line.split()[1] for out, _ in outputs for line in out.splitlines() if line.startswith("RESULT")}
    assert len(results) == 1
    conversions = sum(err.count("importing Qwen-1 checkpoint") for _, err in outputs)
    assert conversions == 1, outputs  # the other waited on the lock and reused the copy
    (native,) = [p for p in cache.iterdir() if p.is_dir()]
    assert str(native) in results and is_done(native) and native.name.startswith("qwen1-")
    provenance = json.loads((native / "mft-hpc-import.json").read_text())
    assert native.name == "qwen1-" + provenance["content_sha256"][:16]
    assert provenance["source"] == str(qwen1_fixture)
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]


def test_cache_key_follows_content_not_path(qwen1_fixture, tmp_path):
    from mft_hpc.model.import_cache import cached_import_path
    from mft_hpc.model.qwen1_import import inspect_qwen1

    copy = tmp_path / "copy"
    shutil.copytree(qwen1_fixture, copy)
    original, _ = cached_import_path(tmp_path / "cache", inspect_qwen1(qwen1_fixture))
    assert cached_import_path(tmp_path / "cache", inspect_qwen1(copy))[0] == original
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 0x01  # one bit of one weight
    (copy / "model.safetensors").write_bytes(bytes(weights))
    assert cached_import_path(tmp_path / "cache", inspect_qwen1(copy))[0] != original


def _config(tmp_path, model_path):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "train.jsonl").write_text(json.dumps({"chat_rounds": [
        {"role": "human", "content": "hi"}, {"role": "bot", "content": "hello"}]}) + "\n")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({
        "run": {"name": "q", "root": str(tmp_path / "runs")}, "cluster": {"executor": "local"},
        "data": {"paths": [str(data)]}, "model": {"path": str(model_path), "trust_remote_code": True},
        "generate": {"enabled": False}, "evaluate": {"enabled": False}}))
    return path


def test_dry_run_resolves_the_cache_path_without_converting(qwen1_fixture, tmp_path):
    from mft_hpc.config import load_config
    from mft_hpc.controller.operations import _prepared, resolve_models

    loaded = load_config(_config(tmp_path, qwen1_fixture))
    members, written = resolve_models(*_prepared(loaded, None), dry_run=True)
    model = members[0][1].model
    assert model.imported_from == str(qwen1_fixture.resolve()) and not model.trust_remote_code  # config paths are resolved
    assert model.path.startswith(str(tmp_path / "runs" / "model-cache" / "qwen1-"))
    assert written.model.path == model.path
    assert not (tmp_path / "runs" / "model-cache").exists()


def test_config_check_reports_an_unimportable_qwen1_path(qwen1_fixture, tmp_path):
    from mft_hpc.config import load_config
    from mft_hpc.controller.operations import validate_members
    from mft_hpc.errors import ConfigError

    src = tmp_path / "qwen1"
    shutil.copytree(qwen1_fixture, src)
    (src / "qwen.tiktoken").unlink()
    loaded = load_config(_config(tmp_path, src))
    with pytest.raises(ConfigError, match=r"cfg\.yaml:\d+: model\.path: .*qwen1: no qwen\.tiktoken"):
        validate_members(loaded)


def test_rerun_reimports_a_deleted_copy_to_the_same_path(qwen1_fixture, tmp_path):
    from mft_hpc.config.schema import Config
    from mft_hpc.model.import_cache import import_cached
    from mft_hpc.model.resolve import ensure_imported
    from mft_hpc.rundir import done_marker

    native = import_cached(qwen1_fixture, tmp_path / "cache")
    config = Config.model_validate({"run": {"name": "q"}, "model": {"path": str(native), "imported_from": str(qwen1_fixture)}})
    ensure_imported(config)  # present: nothing to do
    shutil.rmtree(native)
    done_marker(native).unlink()
    ensure_imported(config)
    assert is_done(native) and (native / "model.safetensors").is_file()
