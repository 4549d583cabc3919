"""Model input = the harness's (spec §3): hand-picked problems per task, then the whole suite."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mft_hpc.errors import UserError
from mft_hpc.tasks import TASK_NAMES, language_of, load_problems
from mft_hpc.tasks.prompts import model_input

CHATML_PREFIX = "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n"
CHATML_SUFFIX = "<|im_end|>\n<|im_start|>assistant"


def doc(benchmarks_dir, task, index):
    return load_problems(benchmarks_dir, task)[index]


def test_registry_names_languages_and_sizes(benchmarks_dir):
    assert len(TASK_NAMES) == 13 and TASK_NAMES[0] == "humanevalsynthesize-python" and TASK_NAMES[-1] == "mbpp"
    assert [language_of(t) for t in TASK_NAMES[:6]] == ["python", "java", "js", "cpp", "go", "rust"]
    assert language_of("mbpp") == "python"
    sizes = {t: len(load_problems(benchmarks_dir, t)) for t in TASK_NAMES}
    assert sum(sizes.values()) == 2468 and sizes["mbpp"] == 500
    mbpp = load_problems(benchmarks_dir, "mbpp")
    assert mbpp[0]["task_id"] == 11 and mbpp[-1]["task_id"] == 510
    assert doc(benchmarks_dir, "humanevalsynthesize-rust", 163)["task_id"] == "Rust/163"


def test_registry_errors_name_the_task_and_file(tmp_path):
    with pytest.raises(UserError, match="unknown task 'humaneval-cobol'"):
        load_problems(tmp_path, "humaneval-cobol")
    with pytest.raises(UserError, match=r"humanevalpack/go\.jsonl: benchmark file not found"):
        load_problems(tmp_path, "humanevalfixtests-go")
    (tmp_path / "mbpp").mkdir()
    (tmp_path / "mbpp" / "mbpp.jsonl").write_text('{"task_id": 11}\n{oops\n')
    with pytest.raises(UserError, match=r"mbpp\.jsonl:2: not valid JSON"):
        load_problems(tmp_path, "mbpp")


def test_synthesize_go_0_matches_spec_rendering(benchmarks_dir):
    text = model_input("humanevalsynthesize-go", doc(benchmarks_dir, "humanevalsynthesize-go", 0))
    assert text.startswith(
        "Write a Go function `func HasCloseElements(numbers []float64, threshold float64) bool` to solve the "
        "following problem:\nCheck if in given list of numbers, are any two numbers closer to each other than "
        "given threshold.\n>>> HasCloseElements([]float64{1.0, 2.0, 3.0}, 0.5)\nfalse\n"
    )
    assert "true\n\nimport (\n    \"math\"\n)\n\n// Check if" in text
    assert text.endswith("func HasCloseElements(numbers []float64, threshold float64) bool {\n")
    assert "package main" not in text


@pytest.mark.parametrize("lang", ["python", "java", "js", "cpp", "go", "rust"])
@pytest.mark.parametrize("index", [0, 37, 163])
def test_synthesize_is_instruction_blank_line_stub(benchmarks_dir, lang, index):
    task = f"humanevalsynthesize-{lang}"
    d = doc(benchmarks_dir, task, index)
    expected = (d["instruction"].strip() + "\n\n" + d["prompt"]).strip() + "\n"
    assert model_input(task, d) == expected
    assert model_input(task, d).count(d["prompt"].strip()) >= 1


def test_fixtests_python_0_ends_as_spec(benchmarks_dir):
    text = model_input("humanevalfixtests-python", doc(benchmarks_dir, "humanevalfixtests-python", 0))
    assert text.endswith(
        "check(has_close_elements)\nFix bugs in has_close_elements.\n\nfrom typing import List\n\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    )
    assert '"""' not in text  # no docstring in fix prompts


@pytest.mark.parametrize("lang", ["python", "java", "js", "cpp", "go", "rust"])
@pytest.mark.parametrize("index", [0, 69, 142])
def test_fixtests_has_buggy_code_then_tests_then_instruction(benchmarks_dir, lang, index):
    task = f"humanevalfixtests-{lang}"
    d = doc(benchmarks_dir, task, index)
    base = ("fn main(){}\n" if lang == "rust" else "") + d["declaration"]
    text = model_input(task, d)
    assert text == (base + d["buggy_solution"] + "\n" + d["test"] + "\nFix bugs in " + d["entry_point"]
                    + ".\n\n" + base).strip() + "\n"
    buggy_at, test_at = text.index(d["buggy_solution"].strip()), text.index(d["test"].strip())
    assert buggy_at < test_at < text.index(f"Fix bugs in {d['entry_point']}.")


def test_language_specifics(benchmarks_dir):
    rust = model_input("humanevalfixtests-rust", doc(benchmarks_dir, "humanevalfixtests-rust", 0))
    assert rust.startswith("fn main(){}\n") and rust.count("fn main(){}") == 2  # context and the fresh stub
    assert "#[cfg(test)]" in rust
    java = model_input("humanevalfixtests-java", doc(benchmarks_dir, "humanevalfixtests-java", 0))
    assert "public class Main {" in java and java.rstrip().endswith("{")
    go = model_input("humanevalfixtests-go", doc(benchmarks_dir, "humanevalfixtests-go", 0))
    assert "func TestHasCloseElements(t *testing.T)" in go


def test_mbpp_chatml_wrapping(benchmarks_dir):
    d = doc(benchmarks_dir, "mbpp", 0)
    assert d["task_id"] == 11
    assert model_input("mbpp", d) == (
        CHATML_PREFIX + '"""\nWrite a python function to remove first and last occurrence of a given character '
        'from the string.\nassert remove_Occ("hello","l") == "heo"\n"""\n' + CHATML_SUFFIX
    )


def test_prompt_styles(benchmarks_dir):
    d = doc(benchmarks_dir, "humanevalsynthesize-cpp", 3)
    competition = model_input("humanevalsynthesize-cpp", d)
    chat = model_input("humanevalsynthesize-cpp", d, "chatml", "Be brief.")
    assert chat == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n" + competition + CHATML_SUFFIX
    m = doc(benchmarks_dir, "mbpp", 5)
    assert model_input("mbpp", m, "raw") == model_input("mbpp", m)[len(CHATML_PREFIX):-len(CHATML_SUFFIX)]


def test_whole_suite_cli(benchmarks_dir, tmp_path):
    out = tmp_path / "prompts.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mft_hpc", "prompts", "--benchmarks", str(benchmarks_dir),
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    docs = {task: load_problems(benchmarks_dir, task) for task in TASK_NAMES}
    assert len(rows) == 2468
    assert [r["task"] for r in rows] == [t for t in TASK_NAMES for _ in range(500 if t == "mbpp" else 164)]
    for row in rows:
        d = docs[row["task"]][row["index"]]
        text = row["text"]
        if row["task"] == "mbpp":
            assert text.startswith(CHATML_PREFIX + '"""\n' + d["text"] + "\n")
            assert text.endswith(d["test_list"][0] + '\n"""\n' + CHATML_SUFFIX)
        else:
            # one trailing newline after the stripped stub, nothing after it
            stub = d["prompt"] if "synthesize" in row["task"] else d["declaration"]
            assert text.endswith(stub.strip() + "\n") and not text.endswith("\n\n")
            assert not text[0].isspace()


@pytest.mark.parametrize("args, message", [
    (["--tasks", "mbpp", "nope"], "unknown task 'nope'"),
    (["--benchmarks", "/nonexistent"], "/nonexistent/humanevalpack/python.jsonl: benchmark file not found"),
])
def test_cli_errors_exit_2(benchmarks_dir, tmp_path, args, message):
    argv = ["--benchmarks", str(benchmarks_dir), "--out", str(tmp_path / "p.jsonl"), *args]
    proc = subprocess.run([sys.executable, "-m", "mft_hpc", "prompts", *argv], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "p.jsonl").exists()
