"""The generate config section: greedy only, known tasks, valid model names — exit 2 naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mft_hpc.config.sections.generate import GenerateSection


@pytest.mark.parametrize("line, key, words", [
    ("do_sample: true", "generate.do_sample", "greedy only"),
    ("num_beams: 4", "generate.num_beams", "greedy only"),
    ("num_return_sequences: 5", "generate.num_return_sequences", "greedy only"),
    ("temperature: 0.2", "generate.temperature", "greedy only"),
    ("tasks: [mbpp, humaneval-cobol]", "generate.tasks", "unknown task(s) humaneval-cobol"),
    ("model_name: my_model", "generate.model_name", "no '_'"),
    ("prompt_style_per_task: {mbpp: raw, nope: chatml}", "generate.prompt_style_per_task", "unknown task(s) nope"),
    ("assistant_newline_per_task: {mbpp: true, humanevalsynthesize-go: true}", "generate.assistant_newline_per_task",
     "humanevalsynthesize-go (prompt style competition)"),
    ("assistant_newline: 1.5", "generate.assistant_newline", "valid boolean"),
])
def test_bad_generate_settings_exit_2_naming_the_key(tmp_path, line, key, words):
    path = tmp_path / "run.yaml"
    path.write_text(f"run: {{name: x}}\nmodel: {{path: {tmp_path}}}\ngenerate:\n  enabled: true\n  {line}\n")
    proc = subprocess.run([sys.executable, "-m", "mft_hpc", "config", "check", str(path), "--no-path-check"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{path}:5: {key}:" in proc.stderr and words in proc.stderr and "Traceback" not in proc.stderr


def test_greedy_defaults_and_per_task_style():
    section = GenerateSection(prompt_style_per_task={"humanevalsynthesize-python": "chatml"})
    assert (section.do_sample, section.num_beams, section.num_return_sequences) == (False, 1, 1)
    assert section.style_of("humanevalsynthesize-python") == "chatml" and section.style_of("mbpp") == "competition"
    assert section.max_length_generation == 2000 and section.eos == "<|im_end|>"
