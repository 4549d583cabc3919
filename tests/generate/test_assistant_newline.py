"""generate.assistant_newline: the ChatML suffix ends "assistant\\n" as MFTCoder's training renders it.

Off (the default) the model input is the competition's byte for byte (the other prompt tests); on, only
ChatML-wrapped tasks change, post-processing still yields the harness's strings, and every record of
the run says which input was used.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.generate import run_task
from mft_hpc.generate.outputs import generations_path
from mft_hpc.generate.rawfile import raw_path, read_raw
from mft_hpc.rundir import done_marker
from mft_hpc.tasks import load_problems
from mft_hpc.tasks.names import TASK_NAMES
from mft_hpc.tasks.postprocess import harness_output
from mft_hpc.tasks.prompts import model_input, prefix_suffix, task_prompt

HEADER = "<|im_end|>\n<|im_start|>assistant"


@pytest.fixture(scope="module")
def mbpp(benchmarks_dir):
    return load_problems(benchmarks_dir, "mbpp")


# --- model input -----------------------------------------------------------------------------------------

def test_option_adds_exactly_the_header_newline_to_chatml_inputs(mbpp, benchmarks_dir):
    for d in mbpp[:20]:
        plain = model_input("mbpp", d)
        assert plain.endswith(HEADER)  # the competition's input: no newline after "assistant"
        assert model_input("mbpp", d, assistant_newline=True) == plain + "\n"
    cpp = load_problems(benchmarks_dir, "humanevalsynthesize-cpp")[3]
    chat = model_input("humanevalsynthesize-cpp", cpp, "chatml", "Be brief.", assistant_newline=True)
    assert chat == model_input("humanevalsynthesize-cpp", cpp, "chatml", "Be brief.") + "\n"
    assert chat.endswith(HEADER + "\n") and chat.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


@pytest.mark.parametrize("which", ["tiny", "qwen"])
def test_input_ends_with_the_tokens_training_puts_before_an_answer(tiny_model_dir, mbpp, which):
    """Token level: the option's input ends with the exact ids the training renderer writes between the
    user turn and the assistant content ("<|im_end|>", "\\n", "<|im_start|>", "assistant\\n")."""
    from pathlib import Path

    import dashscope
    from transformers import AutoTokenizer

    from mft_hpc.data import ChatMLRenderer, as_codec, qwen1_tiktoken

    if which == "tiny":
        tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    else:  # Qwen-1's real BPE; the harness's tokenizer reads the ChatML markers in the text as specials
        tokenizer = qwen1_tiktoken(Path(dashscope.__file__).parent / "resources" / "qwen.tiktoken")
        encode = lambda text: tokenizer.encode(text, allowed_special="all")  # noqa: E731
    codec = as_codec(tokenizer)
    renderer = ChatMLRenderer(codec)
    header = [codec.im_end] + renderer.newline + renderer.marker["bot"]
    for d in mbpp[:5]:
        on, off = encode(model_input("mbpp", d, assistant_newline=True)), encode(model_input("mbpp", d))
        assert on[-len(header):] == header
        assert off == on[:-1]  # by default exactly that last "\n" token is missing


@pytest.mark.parametrize("task, style", [(t, "competition") for t in TASK_NAMES if t != "mbpp"]
                         + [("mbpp", "raw"), ("humanevalfixtests-go", "raw")])
def test_option_is_a_no_op_without_chatml(benchmarks_dir, task, style):
    d = load_problems(benchmarks_dir, task)[0]
    assert model_input(task, d, style, assistant_newline=True) == model_input(task, d, style)
    assert prefix_suffix(task, style, assistant_newline=True) == ("", "")


def test_section_resolves_the_effective_setting_per_task():
    section = GenerateSection(assistant_newline=True, prompt_style_per_task={"humanevalsynthesize-go": "chatml"},
                              assistant_newline_per_task={"humanevalsynthesize-go": False})
    assert section.prompt_settings("mbpp") == {"style": "competition", "system_prompt": None, "assistant_newline": True}
    # global true on a task without ChatML: a no-op, recorded as what really happened (False)
    assert section.assistant_newline_of("humanevalsynthesize-cpp") is False
    assert section.assistant_newline_of("humanevalsynthesize-go") is False  # per-task override
    assert GenerateSection().assistant_newline_of("mbpp") is False  # default: the competition's input
    chat = GenerateSection(prompt_style="chatml", assistant_newline_per_task={"humanevalsynthesize-cpp": True})
    assert chat.assistant_newline_of("humanevalsynthesize-cpp") and not chat.assistant_newline_of("mbpp")


def test_prompts_cli_shows_the_newline(benchmarks_dir, tmp_path):
    rows = {}
    for flag in ([], ["--assistant-newline"]):
        out = tmp_path / f"p{len(flag)}.jsonl"
        proc = subprocess.run([sys.executable, "-m", "mft_hpc", "prompts", "--benchmarks", str(benchmarks_dir),
                               "--tasks", "mbpp", "humanevalsynthesize-go", "--limit", "2", "--out", str(out), *flag],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        rows[bool(flag)] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows[True]) == len(rows[False]) == 4
    for off, on in zip(rows[False], rows[True]):
        assert (off["task"], off["index"]) == (on["task"], on["index"])
        if on["task"] == "mbpp":
            assert on["text"].endswith(HEADER + "\n") and on["text"] == off["text"] + "\n"
        else:
            assert on["text"] == off["text"]


# --- post-processing: the option's output equals the competition path's for the same answer ----------

# Assistant answers as a fine-tuned model writes them after "assistant\n". On the competition path the
# same model first has to produce that newline itself, so its completion is "\n" + answer.
ANSWERS = [
    "```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n```",
    "Sure, here it is:\n```python\nimport re\ndef remove_Occ(s, ch):\n    return re.sub(ch, '', s)\n```\nDone.<|im_end|>",
    "def remove_Occ(s, ch):\n    return s\nprint(remove_Occ('a', 'b'))\n",
    "import re\n\ndef remove_Occ(s, ch):\n    return s\n\ndef helper():\n    pass\nx = 1\n",
    "```python\ndef remove_Occ(s, ch):\n    return s\nif __name__ == '__main__':\n    pass\n```",
    "```\ndef remove_Occ(s, ch):\n    return s",  # unterminated fence
    "\ndef remove_Occ(s, ch):\n    return s<|endoftext|>",
    "no code at all<|im_end|>",
    "",
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_mbpp_program_identical_to_competition_path(mbpp, answer):
    d = mbpp[0]
    competition = harness_output("mbpp", d, "\n" + answer)
    option = harness_output("mbpp", d, answer, assistant_newline=True)
    assert option == competition
    if "<|endoftext|>" not in answer:  # kept by the harness on both paths (spec §4): never valid Python
        compile(option, "<mbpp>", "exec")  # a valid program (the prompt's docstring + the picked code)


def test_mbpp_reference_solutions_survive_the_longer_suffix(mbpp):
    """All 500 problems: the reference code, fenced and bare, gives the same program both ways (the
    harness's stop words may cut a reference solution, e.g. at a column-0 ``if``: on both paths alike)."""
    without_def = []
    for d in mbpp:
        code = d["code"].replace("\r\n", "\n")
        for answer in (f"```python\n{code}\n```", code):
            option = harness_output("mbpp", d, answer, assistant_newline=True)
            assert option == harness_output("mbpp", d, "\n" + answer), d["task_id"]
            if "def " not in option[len(task_prompt("mbpp", d)):]:
                without_def.append(d["task_id"])
    assert len(without_def) < 10, without_def  # the comparison is not between two empty programs


@pytest.mark.parametrize("task, body", [("humanevalsynthesize-python", "    return True\n"),
                                        ("humanevalsynthesize-cpp", "    return 0;\n}\nint main(){}\n")])
def test_chatml_humanevalpack_differs_by_one_blank_line_only(benchmarks_dir, task, body):
    """HumanEvalPack keeps the text between stub and body, so the competition path's extra newline stays
    as one more blank line there (harmless in every language); the code is the same."""
    d = load_problems(benchmarks_dir, task)[0]
    stub = d["prompt"].rstrip()
    option = harness_output(task, d, body, "chatml", assistant_newline=True)
    competition = harness_output(task, d, "\n" + body, "chatml")
    assert option.startswith(stub + "\n\n") and competition == stub + "\n" + option[len(stub):]


def write_raw(path, task, completions):
    path.write_text("".join(json.dumps({"task": task, "index": i, "completion": c, "finish_reason": "stop",
                                        "n_tokens": 3}) + "\n" for i, c in enumerate(completions)))


def test_postprocess_cli_option_and_recorded_settings(benchmarks_dir, tmp_path, mbpp):
    answers = ANSWERS[:3]
    write_raw(tmp_path / "raw_on.jsonl", "mbpp", answers)
    write_raw(tmp_path / "raw_off.jsonl", "mbpp", ["\n" + a for a in answers])
    made = {}
    for name, flag in (("on", ["--assistant-newline"]), ("off", [])):
        proc = subprocess.run([sys.executable, "-m", "mft_hpc", "postprocess", "--raw", str(tmp_path / f"raw_{name}.jsonl"),
                               "--benchmarks", str(benchmarks_dir), "--model", name, "--out", str(tmp_path), *flag],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        path = generations_path(tmp_path, "mbpp", name)
        made[name] = (path.read_text(), json.loads(done_marker(path).read_text()))
    assert made["on"][0] == made["off"][0]  # byte-identical harness files
    assert made["on"][1]["prompt"] == {"style": "competition", "system_prompt": None, "assistant_newline": True}
    assert made["off"][1]["prompt"]["assistant_newline"] is False


# --- a real run on the tiny model ------------------------------------------------------------------------

def test_run_feeds_the_newline_and_records_it(tiny_model_dir, benchmarks_dir, tmp_path, mbpp):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mft_hpc.generate.hf_backend import generate_with

    cfg = GenerateSection(benchmarks=str(benchmarks_dir), limit=3, max_new_tokens=8, dtype="float32",
                          backend="exact", shard_size=2, assistant_newline=True)
    for shard in (0, 1):
        run_task(tiny_model_dir, "mbpp", tmp_path, cfg, shard=shard, model_name="tiny")
    records = read_raw(raw_path(tmp_path, "mbpp"))
    settings = {"style": "competition", "system_prompt": None, "assistant_newline": True}
    for path in (raw_path(tmp_path, "mbpp", 0), raw_path(tmp_path, "mbpp", 1), raw_path(tmp_path, "mbpp"),
                 generations_path(tmp_path, "mbpp", "tiny")):
        assert json.loads(done_marker(path).read_text())["prompt"] == settings, path

    # the backend really saw "assistant\n": its completions are those of the newline inputs, not the plain ones
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    by_input = {}
    for newline in (True, False):
        out = []
        generate_with(model, tokenizer, "mbpp", {i: model_input("mbpp", d, assistant_newline=newline)
                                                 for i, d in enumerate(mbpp[:3])}, cfg, out.append)
        by_input[newline] = {r["index"]: r["completion"] for r in out}
    assert {i: r["completion"] for i, r in records.items()} == by_input[True]
    assert by_input[True] != by_input[False]  # the check above can tell the two inputs apart
    written = json.loads(generations_path(tmp_path, "mbpp", "tiny").read_text())
    assert written == [[harness_output("mbpp", d, records[i]["completion"], assistant_newline=True)]
                       for i, d in enumerate(mbpp[:3])]


def test_run_config_records_the_option(tmp_path):
    from mft_hpc.config import dump_config, load_config

    path = tmp_path / "run.yaml"
    path.write_text(f"run: {{name: x}}\nmodel: {{path: {tmp_path}}}\ngenerate:\n  assistant_newline: true\n"
                    "  prompt_style_per_task: {humanevalsynthesize-go: chatml}\n"
                    "  assistant_newline_per_task: {humanevalsynthesize-go: false}\n")
    (_, member), = load_config(path, check_paths=False).members
    written = dump_config(member)  # what the run directory's config.yaml holds
    assert "  assistant_newline: true\n" in written and "humanevalsynthesize-go: false" in written
    (tmp_path / "again.yaml").write_text(written)
    assert load_config(tmp_path / "again.yaml", check_paths=False).members[0][1].generate == member.generate
