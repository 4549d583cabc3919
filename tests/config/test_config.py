"""Config loading: typed validation, errors that name file:line: key, sweeps, path checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mft_hpc.config import load_config
from mft_hpc.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    bench = tmp_path / "bench"
    bench.mkdir(exist_ok=True)
    path = tmp_path / "cfg.yaml"
    path.write_text(text.replace("MODEL", str(model)).replace("BENCH", str(bench)))
    return path


BASE = """\
run:
  name: t1
model:
  path: MODEL
generate:
  benchmarks: BENCH
"""


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mft_hpc", "config", "check", str(path)],
                          capture_output=True, text=True, cwd=REPO)


def test_minimal_config_loads_with_defaults(tmp_path):
    loaded = load_config(write(tmp_path, BASE))
    assert loaded.config.cluster.executor == "local"
    assert loaded.config.train.adam_betas == (0.9, 0.95)
    assert [name for name, _ in loaded.members] == ["main"]


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, BASE + "train:\n  learnig_rate: 1e-4\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}:8: train.learnig_rate: unknown key (did you mean 'learning_rate'?)"]


def test_unknown_section_suggests_closest(tmp_path):
    path = write(tmp_path, BASE + "clustr:\n  nodes: 2\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:7: clustr: unknown key \(did you mean 'cluster'\?\)"):
        load_config(path)


def test_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path, BASE + "cluster:\n  nodes: many\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:8: cluster.nodes: .*integer.*'many'"):
        load_config(path)


def test_missing_required_path(tmp_path):
    path = write(tmp_path, BASE.replace("MODEL", str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match=r"cfg.yaml:4: model.path: model directory does not exist: .*nope"):
        load_config(path)


def test_missing_required_key(tmp_path):
    path = write(tmp_path, "run:\n  name: t1\n")
    with pytest.raises(ConfigError, match=r"model: required key is missing"):
        load_config(path)


def test_sampling_is_a_config_error(tmp_path):
    path = write(tmp_path, BASE + "  do_sample: true\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:7: generate.do_sample"):
        load_config(path)


def test_sweep_expands_to_members(tmp_path):
    path = write(tmp_path, BASE + "sweep:\n  train.learning_rate: [1.0e-4, 2.0e-4]\n  train.lora_rank: [8, 16]\n")
    loaded = load_config(path)
    assert loaded.is_sweep
    values = [(m.train.learning_rate, m.train.lora_rank) for _, m in loaded.members]
    assert values == [(1e-4, 8), (1e-4, 16), (2e-4, 8), (2e-4, 16)]
    names = [name for name, _ in loaded.members]
    assert len(set(names)) == 4 and all("_" not in n and "/" not in n for n in names)


def test_empty_sweep_list(tmp_path):
    path = write(tmp_path, BASE + "sweep:\n  train.learning_rate: []\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:8: sweep.train.learning_rate: empty sweep list"):
        load_config(path)


def test_sweep_of_unknown_key_suggests(tmp_path):
    path = write(tmp_path, BASE + "sweep:\n  train.lora_rnak: [8]\n")
    with pytest.raises(ConfigError, match=r"not a config key \(did you mean 'lora_rank'\?\)"):
        load_config(path)


def test_sweep_value_of_wrong_type_names_member(tmp_path):
    path = write(tmp_path, BASE + "sweep:\n  train.lora_rank: [8, -1]\n")
    with pytest.raises(ConfigError, match=r"train.lora_rank: .*greater than 0.*\[sweep member rank-1\]"):
        load_config(path)


def test_bracketed_data_paths_string(tmp_path):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir(), d2.mkdir()
    path = write(tmp_path, BASE + f'data:\n  paths: "[{d1},{d2}]"\n')
    assert load_config(path).config.data.paths == [str(d1), str(d2)]


def test_invalid_yaml_names_line(tmp_path):
    path = write(tmp_path, BASE + "train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:\d+: invalid YAML"):
        load_config(path)


@pytest.mark.parametrize("body,expected", [
    ("train:\n  learnig_rate: 1e-4\n", "did you mean 'learning_rate'"),
    ("cluster:\n  nodes: many\n", "cluster.nodes"),
    ("sweep:\n  train.learning_rate: []\n", "empty sweep list"),
])
def test_cli_config_check_exits_2_without_traceback(tmp_path, body, expected):
    result = check(write(tmp_path, BASE + body))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_path_exits_2(tmp_path):
    result = check(write(tmp_path, BASE.replace("MODEL", "/no/such/model")))
    assert result.returncode == 2 and "model.path: model directory does not exist" in result.stderr


def test_cli_missing_config_file_exits_2(tmp_path):
    result = check(tmp_path / "absent.yaml")
    assert result.returncode == 2 and "cannot read config" in result.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_example_configs_validate(name):
    loaded = load_config(REPO / "configs" / name, check_paths=False)
    assert loaded.members


def test_docs_config_reference_is_current():
    from mft_hpc.config.reference import render_reference

    page = (REPO / "docs" / "config-reference.md").read_text()
    start, end = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"
    assert start in page and end in page, "docs/config-reference.md lacks the config reference markers"
    embedded = page.split(start, 1)[1].split(end, 1)[0].strip()
    assert embedded == render_reference().strip(), \
        "run `mft-hpc config reference` and paste it into docs/config-reference.md"
