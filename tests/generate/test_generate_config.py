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


@pytest.mark.parametrize("line", ["tasks_per_element: 0", "vllm: {gpu_memory_utilization: 1.5}",
                                  "vllm: {swap_space: 4}"])
def test_bad_engine_settings_exit_2_naming_the_key(tmp_path, line):
    path = tmp_path / "run.yaml"
    path.write_text(f"run: {{name: x}}\nmodel: {{path: {tmp_path}}}\ngenerate:\n  {line}\n")
    proc = subprocess.run([sys.executable, "-m", "mft_hpc", "config", "check", str(path), "--no-path-check"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and f"{path}:4: generate." in proc.stderr and "Traceback" not in proc.stderr


def test_vllm_backend_without_vllm_is_one_clear_error_before_anything_is_submitted(tmp_path, benchmarks_dir):
    """This test environment has no vllm (it lives in .venv-vllm): config check and run both refuse."""
    import importlib.util

    assert importlib.util.find_spec("vllm") is None
    path = tmp_path / "run.yaml"
    path.write_text(f"run: {{name: x, root: {tmp_path / 'runs'}}}\nmodel: {{path: {tmp_path}}}\ntrain: {{enabled: false}}\n"
                    f"cluster: {{executor: local}}\ngenerate:\n  benchmarks: {benchmarks_dir}\n  backend: vllm\n")
    for verb in (["config", "check"], ["run"]):
        proc = subprocess.run([sys.executable, "-m", "mft_hpc", *verb, str(path)], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert f"{path}:7: generate.backend: vllm is not installed" in line
        assert "pip install 'mft-hpc[vllm]'" in line and "make vllm-env" in line
    assert not (tmp_path / "runs").exists()  # nothing submitted, no run directory


def test_vllm_tensor_parallel_beyond_the_generation_elements_gpus(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"run: {{name: x}}\nmodel: {{path: {tmp_path}}}\ncluster: {{gpus_per_node: 4}}\ngenerate:\n"
                    "  backend: vllm\n  vllm: {tensor_parallel_size: 2}\ntrain: {enabled: false}\n")
    proc = subprocess.run([sys.executable, "-m", "mft_hpc", "config", "check", str(path), "--no-path-check"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}:6: generate.vllm.tensor_parallel_size: 2 GPUs per engine, but a generation element gets 1" \
        in proc.stderr and "cluster.stages.generate.gpus_per_node" in proc.stderr
    path.write_text(path.read_text().replace("{gpus_per_node: 4}", "{gpus_per_node: 4, stages: {generate: "
                                                                   "{gpus_per_node: 2}}}"))
    proc = subprocess.run([sys.executable, "-m", "mft_hpc", "config", "check", str(path), "--no-path-check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
