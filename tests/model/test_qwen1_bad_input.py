"""Bad Qwen-1 input: one clear error naming the file and key, exit 2, and no destination that looks finished."""

from __future__ import annotations

import json
import shutil

import pytest

from mft_hpc.cli.main import main
from mft_hpc.rundir import is_done


def _copy(fixture, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(fixture, src)
    return src


def _edit_config(src, **changes):
    config = json.loads((src / "config.json").read_text())
    config.update(changes)
    (src / "config.json").write_text(json.dumps(config))


def _not_a_model(src):
    shutil.rmtree(src)
    src.mkdir()
    (src / "README.md").write_text("not a model\n")


def _truncate(src):
    weights = src / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])


CASES = {
    "not a model directory": (_not_a_model, r"src: not a model directory \(no config\.json\)"),
    "other model_type": (lambda src: _edit_config(src, model_type="llama"),
                         r"src/config\.json: model_type: 'llama' is not a Qwen-1 checkpoint"),
    "rotary_pct < 1": (lambda src: _edit_config(src, rotary_pct=0.5), r"src/config\.json: rotary_pct: 0\.5 is not supported"),
    "seq_length below max_position_embeddings": (
        lambda src: _edit_config(src, seq_length=2048, max_position_embeddings=8192),
        r"src/config\.json: seq_length: 2048 is below max_position_embeddings 8192: beyond seq_length Qwen-1 rescales"),
    "kv_channels that do not tile hidden_size": (lambda src: _edit_config(src, kv_channels=32),
                                                 r"src/config\.json: kv_channels: 32 x 4 heads must equal hidden_size 64"),
    "biased MLP": (lambda src: _edit_config(src, no_bias=False), r"src/config\.json: no_bias: only no_bias: true"),
    "shape disagreeing with the weights": (lambda src: _edit_config(src, intermediate_size=512),
                                           r"src/model\.safetensors: tensor transformer\.h\.0\.mlp\.w1\.weight: shape \[128, 64\], config\.json implies \[256, 64\]"),
    "truncated safetensors": (_truncate, r"src/model\.safetensors: truncated: tensor .* ends at byte \d+, the file has \d+"),
    "missing qwen.tiktoken": (lambda src: (src / "qwen.tiktoken").unlink(), r"src: no qwen\.tiktoken \(Qwen-1's tokenizer file\)"),
    "corrupt qwen.tiktoken": (lambda src: (src / "qwen.tiktoken").write_text("IQ== 0\nnot base64!! x\n"),
                              r"src/qwen\.tiktoken:2: not a 'base64-token rank' line"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error(case, qwen1_fixture, tmp_path, capsys):
    breaks, expected = CASES[case]
    src = _copy(qwen1_fixture, tmp_path)
    breaks(src)
    dst = tmp_path / "native"
    assert main(["model", "import", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mft-hpc: error: "), err
    assert "Traceback" not in err
    import re

    assert re.search(expected, lines[0]), lines[0]
    assert not dst.exists() and not is_done(dst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no temporary directory left behind


def test_destination_that_is_not_ours_is_refused(qwen1_fixture, tmp_path, capsys):
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "notes.txt").write_text("keep me\n")
    assert main(["model", "import", str(qwen1_fixture), str(dst)]) == 2
    assert "exists and is not an mft-hpc import" in capsys.readouterr().err
    assert (dst / "notes.txt").read_text() == "keep me\n"
