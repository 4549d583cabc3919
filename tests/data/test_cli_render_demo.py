"""`mft-hpc data render` and `mft-hpc data demo` end to end."""

from __future__ import annotations

import json
import re

import pytest

from mft_hpc.cli.main import main
from mft_hpc.data import ChatMLRenderer, as_codec
from mft_hpc.data.demo import run_asserts
from mft_hpc.data.records import read_task, discover_tasks
from tests.data.conftest import QWEN_TIKTOKEN, chat, write_jsonl

RECORDS = [
    chat(("system", "sys"), ("human", "hi"), ("bot", "hello <|im_end|> world")),
    {"prompt": "p " * 100, "answer": "a " * 100},
    chat(("user", "unicode ✓"), ("assistant", "")),
]


@pytest.mark.parametrize("kind", ["tiny", "qwen"])
def test_render_cli(tmp_path, tiny_model_dir, kind, capsys):
    if kind == "tiny":
        tok_dir = tiny_model_dir
    else:
        tok_dir = tmp_path / "qwen1"
        tok_dir.mkdir()
        (tok_dir / "qwen.tiktoken").symlink_to(QWEN_TIKTOKEN)
    src = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    out = tmp_path / "out.jsonl"
    assert main(["data", "render", "--tokenizer", str(tok_dir), "--in", str(src), "--out", str(out),
                 "--seq-length", "60"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3
    assert lines[1]["status"] == "dropped" and lines[1]["input_ids"] == []
    assert f"{src}:2: dropped" in capsys.readouterr().err
    for line in (lines[0], lines[2]):
        assert len(line["input_ids"]) == len(line["loss_mask"]) and line["loss_mask"][-1] == 1
    if kind == "qwen":
        assert lines[0]["input_ids"][0] == 151644 and lines[0]["input_ids"][-1] == 151645
        assert lines[0]["input_ids"].count(151645) == 3  # the literal one in content stayed text


def test_render_cli_bad_input_writes_nothing(tmp_path, tiny_model_dir, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [RECORDS[0], '{"chat_rounds": oops}'])
    out = tmp_path / "out.jsonl"
    assert main(["data", "render", "--tokenizer", str(tiny_model_dir), "--in", str(src), "--out", str(out)]) == 2
    assert f"{src}:2: bad JSON" in capsys.readouterr().err and not out.exists()


def test_run_asserts_isolated_with_timeout():
    tests = ["assert f(2) == 4", "assert f(3) == 6"]
    assert run_asserts(["def f(x): return 2 * x", "def f(x): return x * x", "def f(x):\n  while True: pass",
                        "raise SystemExit"], tests) == [[True, True], [True, False], None, [False, False]]


@pytest.mark.slow
def test_demo_from_mbpp_train_only(tmp_path, benchmarks_dir, tiny_tokenizer):
    out = tmp_path / "demo"
    assert main(["data", "demo", "--benchmarks", str(benchmarks_dir), "--out", str(out), "--limit", "12"]) == 0
    tasks = discover_tasks([str(out / "code-synthesis"), str(out / "code-repair")])
    assert [t.name for t in tasks] == ["code-synthesis", "code-repair"]
    repairs = [json.loads(line) for line in (out / "code-repair" / "train.jsonl").read_text().splitlines()]
    synth = [json.loads(line) for line in (out / "code-synthesis" / "train.jsonl").read_text().splitlines()]
    assert len(synth) == 12 and len(repairs) >= 8
    assert all(601 <= r["task_id"] <= 974 for r in synth + repairs)
    problems = {json.loads(l)["task_id"]: json.loads(l) for l in (benchmarks_dir / "mbpp" / "mbpp.jsonl").open()}
    for record in repairs[:4]:  # the shown bug really fails the shown assert; the answer passes all
        prompt, answer = record["chat_rounds"][1]["content"], record["chat_rounds"][2]["content"]
        mutant = prompt.split("```python\n")[1].split("\n```")[0]
        fixed = answer.split("```python\n")[1].split("\n```")[0]
        failing = prompt.split("\n")[2]
        tests = problems[record["task_id"]]["test_list"]
        assert failing in tests and mutant != fixed
        assert run_asserts([mutant, fixed], [failing] + tests) == [[False] + run_asserts([mutant], tests)[0],
                                                                    [True] * (len(tests) + 1)]
    for task in tasks:  # valid, renderable records
        assert not read_task(task).errors
    renderer = ChatMLRenderer(as_codec(tiny_tokenizer))
    assert all(r.status == "ok" for r in renderer.render_many([rec.turns for rec in read_task(tasks[1]).records]))


def test_stats_cli_reports_counts_and_fill(tmp_path, tiny_model_dir, capsys):
    long = chat(("human", "q " * 300), ("bot", "a " * 300))
    data = write_jsonl(tmp_path / "task.jsonl", [chat(("human", f"q{i}"), ("bot", f"a{i}")) for i in range(9)] + [long])
    config = tmp_path / "run.yaml"
    config.write_text(f"run:\n  name: t\nmodel:\n  path: {tiny_model_dir}\n"
                      f"data:\n  paths: [{data}]\n  seq_length: 64\n  overlong: drop\n")
    assert main(["data", "stats", str(config), "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    match = re.search(r"task task: 10 records, 0 invalid, 0 truncated, 1 dropped; rows train (\d+) / valid 1", out)
    assert match and 1 < int(match.group(1)) <= 4  # 8 short train samples packed into a few rows of 64
    fill = float(re.search(r"row fill: train ([0-9.]+)", out).group(1))
    assert 0.5 < fill <= 1.0
