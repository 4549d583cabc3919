"""Reading partitions from sinfo and checking each stage against them; the real cluster's answer too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.slurm.site import gpu_count, parse_sinfo, read_partitions, stage_fit_problems

# `sinfo -h -N -o '%P|%N|%c|%m|%G|%f|%a'` on a site with typed GPUs and a CPU partition
SITE = """\
gpu*|g01|64|512000|gpu:a100:8(S:0-1)|a100,ib|up
gpu*|g02|64|512000|gpu:a100:8(S:0-1)|a100,ib|up
cpu|c01|128|256000|(null)|(null)|up
cpu|c02|128|256000|(null)|(null)|up
old|o01|16|64000|gpu:v100:2,gpu:k80:2|v100|down
"""


def test_gres_strings_give_gpu_counts():
    assert [gpu_count(g) for g in ("gpu:2", "gpu:a100:4(S:0-1)", "gpu:a:2,gpu:b:2", "(null)", "", "mps:100")] == \
        [2, 4, 4, 0, 0, 0]


def test_sinfo_rows_become_partitions():
    parts = parse_sinfo(SITE)
    assert list(parts) == ["gpu", "cpu", "old"]  # the default first, then by name
    assert parts["gpu"].default and not parts["cpu"].default
    assert (parts["gpu"].max_gpus, parts["cpu"].max_gpus, parts["old"].max_gpus) == (8, 0, 4)
    assert parts["gpu"].features == {"a100", "ib"} and len(parts["cpu"].nodes) == 2


@pytest.mark.parametrize("cluster, stage, expected", [
    (dict(partition="gpux"), "train",
     [(("cluster", "partition"), "train stage: partition 'gpux' does not exist (sinfo lists: gpu, cpu, old)")]),
    (dict(gpus_per_node=8, stages={"evaluate": {"partition": "cpu", "gpus_per_node": 1}}), "evaluate",
     [(("cluster", "stages", "evaluate", "gpus_per_node"),
       "evaluate stage: asks for 1 GPU(s) per node, but partition 'cpu' has no GPUs (no gpu GRES on its nodes)")]),
    (dict(gpus_per_node=16), "train",
     [(("cluster", "gpus_per_node"), "train stage: asks for 16 GPUs per node; nodes of partition 'gpu' have at most 8")]),
    (dict(gpus_per_node=8, nodes=3), "train",
     [(("cluster", "nodes"), "train stage: asks for 3 nodes; partition 'gpu' has 2 that fit the job")]),
    (dict(stages={"collect": {"partition": "cpu", "mem": "300G"}}), "collect",
     [(("cluster", "stages", "collect", "mem"),
       "collect stage: asks for 307200 MB per node; nodes of partition 'cpu' have at most 256000 MB")]),
    (dict(cpus_per_task=16, gpus_per_node=8), "train",
     [(("cluster", "cpus_per_task"), "train stage: asks for 128 CPUs per node (tasks_per_node x cpus_per_task); "
                                     "nodes of partition 'gpu' have at most 64")]),
    (dict(constraint="a100&nvlink"), "train",
     [(("cluster", "constraint"), "train stage: node feature(s) nvlink not found in partition 'gpu' "
                                  "(features: a100, ib)")]),
    (dict(partition="old"), "collect",
     [(("cluster", "partition"), "collect stage: partition 'old' is down, jobs would not start")]),
    (dict(gpus_per_node=8, mem="400G", stages={"evaluate": {"partition": "cpu"}}), "evaluate", []),
    (dict(gpus_per_node=8, mem="400G"), "generate", []),
])
def test_stage_fit(cluster, stage, expected):
    assert stage_fit_problems(ClusterSection(executor="slurm", **cluster), stage, parse_sinfo(SITE)) == expected


@pytest.mark.slurm
def test_test_cluster_offers_gpu_gres_and_a_cpu_partition(slurm_cluster):
    parts = read_partitions()
    assert parts["debug"].default and parts["debug"].max_gpus == 2
    assert parts["gpu"].max_gpus == 2 and {n.name for n in parts["gpu"].nodes} == {"n1", "n2"}
    assert parts["cpu"].max_gpus == 0 and parts["cpu"].features == {"cpunode"}
    doctor = subprocess.run([sys.executable, "-m", "mft_hpc", "doctor"], capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "accounting on (accounting_storage/slurmdbd)" in doctor.stdout and "MaxArraySize=" in doctor.stdout
    rows = {line.split()[1]: line for line in doctor.stdout.splitlines() if "node" in line and "CPUs" in line}
    assert "GPUs gpu:2" in rows["debug*"] and "no GPUs" in rows["cpu"]
