"""Reading and validating task files: every bad line is reported with its line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from mft_hpc.cli.main import main
from mft_hpc.config.sections.data import DataSection
from mft_hpc.data import build_datasets
from mft_hpc.data.records import discover_tasks, read_task
from mft_hpc.errors import UserError
from tests.data.conftest import chat, write_jsonl

BAD = Path(__file__).parent / "fixtures" / "bad" / "mixed.jsonl"
EXPECTED = {  # line -> a word the reason must contain
    2: "bad JSON", 3: "missing content", 4: "unknown role", 5: "no bot turn", 6: "wrong order",
    7: "system turn allowed only", 8: "missing answer", 9: "neither chat_rounds", 10: "non-empty",
    11: "JSON object", 14: "content must be a string",
}


def test_every_bad_line_reported_with_its_number():
    records = read_task(discover_tasks([str(BAD)])[0])
    assert [r.line for r in records.records] == [1, 13]  # line 12 is blank: skipped
    reported = {int(err.split(":")[1]): err for err in records.errors}
    assert sorted(reported) == sorted(EXPECTED)
    for line, word in EXPECTED.items():
        assert reported[line].startswith(f"{BAD}:{line}: ") and word in reported[line], reported[line]


def test_check_cli_lists_all_and_exits_2(capsys, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [chat(("human", "q"), ("bot", "a"))])
    assert main(["data", "check", str(good)]) == 0
    assert main(["data", "check", str(BAD), str(good)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(EXPECTED) and all(line.startswith(f"{BAD}:") for line in out)


def test_training_refuses_invalid_data_unless_skip(tiny_tokenizer, tmp_path):
    cfg = DataSection(paths=[str(BAD)], seq_length=128, valid_ratio=0.0)
    with pytest.raises(UserError) as err:
        build_datasets(cfg, tiny_tokenizer, tmp_path / "cache", show_progress=False)
    assert f"{BAD}:2: bad JSON" in str(err.value) and "skip_invalid" in str(err.value)
    assert not any((tmp_path / "cache").glob("*/tokens.npy"))  # refused before tokenizing anything
    cfg.skip_invalid = True
    bundle = build_datasets(cfg, tiny_tokenizer, tmp_path / "cache", show_progress=False)
    assert bundle.stats.invalid == bundle.stats.skipped == len(EXPECTED)
    assert bundle.train.n_samples == 2


def test_discovery_dirs_files_and_duplicates(tmp_path):
    write_jsonl(tmp_path / "a" / "x.jsonl", [chat(("human", "q"), ("bot", "a"))])
    write_jsonl(tmp_path / "a" / "sub" / "y.jsonl", [chat(("human", "q"), ("bot", "a"))])
    (tmp_path / "a" / "README.md").write_text("not data")
    write_jsonl(tmp_path / "b.jsonl", [chat(("human", "q"), ("bot", "a"))])
    tasks = discover_tasks([str(tmp_path / "a"), str(tmp_path / "b.jsonl")])
    assert [t.name for t in tasks] == ["a", "b"]
    assert sorted(str(f.relative_to(tmp_path / "a")) for f in tasks[0].files) == ["sub/y.jsonl", "x.jsonl"]
    write_jsonl(tmp_path / "other" / "a.jsonl", [chat(("human", "q"), ("bot", "a"))])
    with pytest.raises(UserError, match="task name 'a'"):
        discover_tasks([str(tmp_path / "a"), str(tmp_path / "other" / "a.jsonl")])
    with pytest.raises(UserError, match="does not exist"):
        discover_tasks([str(tmp_path / "missing")])


def test_bracketed_string_paths(tmp_path):
    cfg = DataSection(paths=f"[{tmp_path}/a, {tmp_path}/b.jsonl]")
    assert cfg.paths == [f"{tmp_path}/a", f"{tmp_path}/b.jsonl"]
