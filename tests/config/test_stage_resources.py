"""Per-stage resources: stage defaults, overrides, validation (file:line: key), `config show`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_config import BASE as MINIMAL
from test_config import write as write_text

from mft_hpc.config import load_config
from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.config.stages import STAGES, resolve_stage
from mft_hpc.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

BASE = MINIMAL + """\
cluster:
  executor: slurm
  partition: gpu
  gpus_per_node: 8
  cpus_per_task: 8
  mem: 400G
  time: 720
"""


def write(tmp_path: Path, extra: str = "") -> Path:
    return write_text(tmp_path, BASE + extra)


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return err.value.problems


def test_stage_defaults_follow_the_cluster_section():
    cluster = ClusterSection(executor="slurm", partition="gpu", gpus_per_node=8, cpus_per_task=8, mem="400G",
                             time=720, constraint="a100", setup=["module load cuda"])
    train, generate, evaluate, collect = (resolve_stage(cluster, stage) for stage in STAGES)
    assert train.model_dump(exclude={"stages"}) == cluster.model_dump(exclude={"stages"})
    # one element = one task of the training node: 1 GPU and that task's share of the node memory
    assert (generate.nodes, generate.tasks_per_node, generate.gpus_per_node, generate.mem) == (1, 1, 1, "50G")
    assert (evaluate.nodes, evaluate.tasks_per_node, evaluate.gpus_per_node, evaluate.mem) == (1, 1, 0, "50G")
    assert (collect.gpus_per_node, collect.cpus_per_task, collect.mem) == (0, 1, "4G")
    # everything else is inherited
    assert {r.partition for r in (generate, evaluate, collect)} == {"gpu"}
    assert {r.constraint for r in (generate, evaluate, collect)} == {"a100"}
    assert evaluate.setup == ["module load cuda"] and evaluate.time == 720


def test_generation_without_gpus_asks_for_none():
    generate = resolve_stage(ClusterSection(executor="slurm", cpus_per_task=2), "generate")
    assert generate.gpus_per_node == 0 and generate.mem is None


def test_stage_keys_override_defaults_and_cluster(tmp_path):
    path = write(tmp_path, """\
  extra: {mail-type: FAIL, comment: all}
  setup: [module load cuda]
  stages:
    evaluate:
      partition: cpu
      mem_per_cpu: 2G
      setup: [module load apptainer]
      extra: {comment: evaluation}
    generate:
      gpus_per_node: 2
      time: 30
""")
    cluster = load_config(path).config.cluster
    evaluate = resolve_stage(cluster, "evaluate")
    assert (evaluate.partition, evaluate.mem, evaluate.mem_per_cpu) == ("cpu", None, "2G")  # one memory key
    assert evaluate.setup == ["module load apptainer"]                                    # setup replaces
    assert evaluate.extra == {"mail-type": "FAIL", "comment": "evaluation"}               # extra merges
    generate = resolve_stage(cluster, "generate")
    assert (generate.gpus_per_node, generate.time, generate.nodes, generate.partition) == (2, 30, 1, "gpu")
    assert resolve_stage(cluster, "collect").setup == ["module load cuda"]


def test_unknown_stage_and_stage_key_are_named_with_suggestions(tmp_path):
    path = write(tmp_path, "  stages:\n    evalute:\n      partition: cpu\n    train:\n      partiton: gpu\n")
    assert sorted(problems(path)) == [
        f"{path}:15: cluster.stages.evalute: unknown key (did you mean 'evaluate'?)",
        f"{path}:18: cluster.stages.train.partiton: unknown key (did you mean 'partition'?)",
    ]


@pytest.mark.parametrize("stage_lines, line, key, reason", [
    ("    train:\n      nodes: 0\n", 16, "cluster.stages.train.nodes", "greater than or equal to 1"),
    ("    generate:\n      gpus_per_node: -1\n", 16, "cluster.stages.generate.gpus_per_node", "greater than or equal to 0"),
    ("    collect:\n      cpus_per_task: 0\n", 16, "cluster.stages.collect.cpus_per_task", "greater than or equal to 1"),
    ("    evaluate:\n      mem: 0\n", 16, "cluster.stages.evaluate.mem", "a positive size"),
    ("    evaluate:\n      mem: -4G\n", 16, "cluster.stages.evaluate.mem", "a positive size"),
    ("    train:\n      time: 0\n", 16, "cluster.stages.train.time", "greater than or equal to 1"),
])
def test_zero_or_negative_resources_name_file_line_and_key(tmp_path, stage_lines, line, key, reason):
    path = write(tmp_path, "  stages:\n" + stage_lines)
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:{line}: {key}: ") and reason in problem, problem


def test_memory_keys_are_exclusive_and_mem_per_gpu_needs_gpus(tmp_path):
    path = write(tmp_path, "  mem_per_cpu: 4G\n")
    assert problems(path) == [f"{path}:14: cluster.mem_per_cpu: mem and mem_per_cpu are exclusive "
                              "(sbatch takes one): keep one"]
    path = write(tmp_path, "  stages:\n    evaluate:\n      mem_per_gpu: 8G\n")
    assert problems(path) == [f"{path}:16: cluster.stages.evaluate.mem_per_gpu: the evaluate stage has no GPUs "
                              "(gpus_per_node: 0): use mem or mem_per_cpu"]


def test_config_show_prints_resolved_resources_per_stage(tmp_path):
    path = write(tmp_path, "  stages:\n    evaluate:\n      partition: cpu\n      mem: 16G\n")
    result = subprocess.run([sys.executable, "-m", "mft_hpc", "config", "show", str(path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("#   ")}
    assert set(lines) == set(STAGES)
    assert "partition=gpu nodes=1 tasks_per_node=8 gpus_per_node=8 cpus_per_task=8 mem=400G time=720min" in lines["train"]
    assert "gpus_per_node=1 cpus_per_task=8 mem=50G" in lines["generate"]
    assert "partition=cpu nodes=1 tasks_per_node=1 gpus_per_node=0 cpus_per_task=8 mem=16G" in lines["evaluate"]
    assert "gpus_per_node=0 cpus_per_task=1 mem=4G" in lines["collect"]
