"""Post-processing of crafted completions reproduces the harness (spec §5): one case per pitfall."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mft_hpc.tasks import load_problems
from mft_hpc.tasks.postprocess import harness_output


@pytest.fixture(scope="module")
def docs(benchmarks_dir):
    return lambda task, index=0: load_problems(benchmarks_dir, task)[index]


def out(docs, task, completion, index=0, **kw):
    return harness_output(task, docs(task, index), completion, **kw)


# --- Python (HumanEvalPack): the body ends at the first column-0 line -------------------------------

def test_python_body_kept_and_top_level_helper_dropped(docs):
    d = docs("humanevalsynthesize-python")
    got = out(docs, "humanevalsynthesize-python", "    return helper(numbers)\n\ndef helper(x):\n    return x\n")
    assert got == d["prompt"].rstrip() + "\n    return helper(numbers)\n"


@pytest.mark.parametrize("completion", ["Here is the code:\n    return True\n", "```python\n    return True\n```"])
def test_python_prose_or_fence_first_gives_empty_body(docs, completion):
    d = docs("humanevalsynthesize-python")
    assert out(docs, "humanevalsynthesize-python", completion) == d["prompt"].rstrip()


def test_python_fixtests_returns_declaration_not_buggy_code_or_tests(docs):
    d = docs("humanevalfixtests-python")
    got = out(docs, "humanevalfixtests-python", "    return False\n<|endoftext|>garbage")
    assert got == d["declaration"].rstrip() + "\n    return False\n"
    assert "check(" not in got and d["buggy_solution"].strip() not in got


# --- C-like: brace counting ---------------------------------------------------------------------------

def test_cpp_cuts_after_the_closing_brace_of_the_function(docs):
    d = docs("humanevalsynthesize-cpp")
    got = out(docs, "humanevalsynthesize-cpp", "    if (x) { return 1; }\n    return 0;\n}\n}\nint main(){}\n")
    assert got == d["prompt"].rstrip() + "\n    if (x) { return 1; }\n    return 0;\n}"


def test_js_braces_inside_strings_are_counted(docs):
    d = docs("humanevalsynthesize-js")
    got = out(docs, "humanevalsynthesize-js", '  return "}";\n}\n')
    assert got == d["prompt"].rstrip() + '\n  return "}'


def test_unbalanced_open_braces_cut_after_last_closing(docs):
    d = docs("humanevalsynthesize-rust")
    got = out(docs, "humanevalsynthesize-rust", "    if a {\n        return true;\n    }\n    false\n// trailing")
    assert got == d["prompt"].rstrip() + "\n    if a {\n        return true;\n    }"


def test_rust_endoftext_tail_is_a_stop_word(docs):
    d = docs("humanevalfixtests-rust")
    got = out(docs, "humanevalfixtests-rust", "    true\n}<|endoftext|>fn other() {}")
    assert got == ("fn main(){}\n" + d["declaration"]).rstrip() + "\n    true\n}"


def test_java_completion_must_close_method_and_class(docs):
    d = docs("humanevalsynthesize-java")
    both = out(docs, "humanevalsynthesize-java", "        return true;\n    }\n}\n\npublic class Main {\n}")
    assert both == d["prompt"].rstrip() + "\n        return true;\n    }\n}"
    # stopped after the method: the harness does NOT add the class brace (compile error later)
    method_only = out(docs, "humanevalsynthesize-java", "        return true;\n    }<|im_end|>")
    assert method_only == d["prompt"].rstrip() + "\n        return true;\n    }"
    # one block left open, no closing brace at all: the class brace is appended
    unclosed = out(docs, "humanevalsynthesize-java", "        if (x) {\n            return true;")
    assert unclosed == d["prompt"].rstrip() + "\n        if (x) {\n            return true;\n}"


def test_java_main_method_is_cut(docs):
    d = docs("humanevalsynthesize-java")
    got = out(docs, "humanevalsynthesize-java",
              "        return true;\n    }\n    public static void main(String[] a) {\n        {\n")
    # cut before main, a "}" appended in its place (the class stays at the method's indentation)
    assert got == d["prompt"].rstrip() + "\n        return true;\n    }\n    }"


def test_go_stop_word_inside_a_string_cuts(docs):
    d = docs("humanevalsynthesize-go")
    got = out(docs, "humanevalsynthesize-go", '    s := "a struct here"\n    return len(s) > 0\n}\n')
    assert got == d["prompt"].rstrip() + '\n    s := "a '


def test_go_top_level_helper_is_cut(docs):
    d = docs("humanevalfixtests-go")
    got = out(docs, "humanevalfixtests-go", "    return helper()\n}\nfunc helper() bool {\n    return true\n}\n")
    assert got == d["declaration"].rstrip() + "\n    return helper()\n}"


# --- MBPP: code extraction, stop words, ChatML cleanup -------------------------------------------------

MBPP_PROMPT = '"""\nWrite a python function to remove first and last occurrence of a given character from the string.\nassert remove_Occ("hello","l") == "heo"\n"""\n'


def test_mbpp_fenced_code_keeps_imports_and_drops_prose(docs):
    completion = "\nSure:\n```python\nimport re\ndef remove_Occ(s, ch):\n    return re.sub(ch, '', s)\n```\nThis works.<|im_end|>"
    assert out(docs, "mbpp", completion) == MBPP_PROMPT + "import re\ndef remove_Occ(s, ch):\n    return re.sub(ch, '', s)\n\n"


def test_mbpp_without_fence_drops_imports_and_ends_at_top_level_code(docs):
    completion = "\nimport re\ndef remove_Occ(s, ch):\n    return s\nprint(remove_Occ('a', 'b'))\n"
    assert out(docs, "mbpp", completion) == MBPP_PROMPT + "def remove_Occ(s, ch):\n    return s\n"


def test_mbpp_stop_word_inside_fence_truncates(docs):
    completion = "\n```python\ndef remove_Occ(s, ch):\n    return s\nif __name__ == '__main__':\n    pass\n```"
    assert out(docs, "mbpp", completion) == MBPP_PROMPT + "def remove_Occ(s, ch):\n    return s"


def test_mbpp_endoftext_is_neither_stop_word_nor_removed(docs):
    no_fence = out(docs, "mbpp", "\ndef remove_Occ(s, ch):\n    return s<|endoftext|>")
    assert no_fence == MBPP_PROMPT + "def remove_Occ(s, ch):\n    return s<|endoftext|>\n"
    # a fence line ending in <|endoftext|> does not close the block: everything to the end is kept
    fenced = out(docs, "mbpp", "\n```python\ndef remove_Occ(s, ch):\n    return s\n```<|endoftext|>")
    assert fenced == MBPP_PROMPT + "def remove_Occ(s, ch):\n    return s\n```<|endoftext|>\n"


def test_mbpp_raw_style_has_no_chatml_to_strip(docs):
    got = out(docs, "mbpp", "def remove_Occ(s, ch):\n    return s\n", style="raw")
    # every picked line gets a "\n", the empty last line too
    assert got == MBPP_PROMPT + "def remove_Occ(s, ch):\n    return s\n\n"


def test_chatml_style_on_humanevalpack_adds_the_suffix_newline(docs):
    d = docs("humanevalsynthesize-python")
    got = out(docs, "humanevalsynthesize-python", "    return True\n", style="chatml")
    assert got == d["prompt"].rstrip() + "\n\n    return True"  # the completion is rstripped


# --- CLI ------------------------------------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mft_hpc", "postprocess", *args], capture_output=True, text=True)


def write_raw(path, task, completions):
    path.write_text("".join(json.dumps({"task": task, "index": i, "completion": c, "finish_reason": "stop",
                                        "n_tokens": 3}) + "\n" for i, c in enumerate(completions)))


def test_postprocess_cli_writes_harness_file(benchmarks_dir, tmp_path, docs):
    raw = tmp_path / "raw_humanevalsynthesize-cpp.jsonl"
    write_raw(raw, "humanevalsynthesize-cpp", ["    return 0;\n}\n", "    return {};\n}\n\u00e9"])
    with raw.open("a") as handle:
        handle.write('{"task": "humanevalsynthesize-cpp", "ind')  # a torn last line is ignored
    proc = run_cli("--raw", str(raw), "--benchmarks", str(benchmarks_dir), "--model", "my-model.v2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "generations_my-model.v2" / "generations_humanevalsynthesize-cpp_my-model.v2.json"
    text = path.read_text()
    assert text.isascii() and text.startswith('[["') and '"], ["' in text
    data = json.loads(text)
    assert data == [[docs("humanevalsynthesize-cpp", 0)["prompt"].rstrip() + "\n    return 0;\n}"],
                    [docs("humanevalsynthesize-cpp", 1)["prompt"].rstrip() + "\n    return {};\n}"]]
    assert (path.parent / (path.name + ".done")).exists()


@pytest.mark.parametrize("model, message", [("bad_name", "no '_'"), ("a/b", "bad model name 'a/b'")])
def test_postprocess_cli_rejects_bad_model_names(benchmarks_dir, tmp_path, model, message):
    raw = tmp_path / "raw.jsonl"
    write_raw(raw, "mbpp", ["def f(): pass"])
    proc = run_cli("--raw", str(raw), "--benchmarks", str(benchmarks_dir), "--model", model, "--out", str(tmp_path))
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_postprocess_cli_reports_missing_problems(benchmarks_dir, tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text(json.dumps({"task": "mbpp", "index": 2, "completion": "", "finish_reason": "stop", "n_tokens": 0}) + "\n")
    proc = run_cli("--raw", str(raw), "--benchmarks", str(benchmarks_dir), "--model", "m", "--out", str(tmp_path))
    assert proc.returncode == 2 and "2 problem(s) missing" in proc.stderr and "0, 1" in proc.stderr
