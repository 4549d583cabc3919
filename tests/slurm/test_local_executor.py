"""The same Submitter on this machine without Slurm (submitit's local executor)."""

from __future__ import annotations

import functools

import pytest
import slurm_layer_jobs as jobs_fn

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.slurm import Submitter, after_ok
from mft_hpc.slurm.executor import make_executor, slurm_parameters, with_overrides


def test_local_executor_runs_jobs_and_arrays(tmp_path):
    submitter = Submitter(ClusterSection(executor="local", time=2), tmp_path)
    assert submitter.submit(jobs_fn.add, 2, 3).result() == 5
    assert [j.result() for j in submitter.map_array(jobs_fn.square, range(3))] == [0, 1, 4]
    fns = [functools.partial(jobs_fn.add, i, 10) for i in range(2)]
    assert [j.result() for j in submitter.submit_array(fns)] == [10, 11]
    assert submitter.commands.calls["sbatch"] == 0 and not submitter.commands.calls
    with pytest.raises(ValueError, match="local executor has no scheduler dependencies"):
        submitter.submit(jobs_fn.add, 1, 1, after=[after_ok(["123"])])


def test_overrides_are_validated_like_the_config(tmp_path):
    cluster = ClusterSection(executor="slurm", nodes=4, gpus_per_node=8)
    one_node = with_overrides(cluster, nodes=1)
    assert one_node.nodes == 1 and one_node.gpus_per_node == 8 and cluster.nodes == 4
    params = slurm_parameters(one_node, name="generate", sbatch_extra={"dependency": "afterok:1"})
    assert params["ntasks_per_node"] == 8  # default: one task per GPU
    assert params["additional_parameters"] == {"dependency": "afterok:1"}
    with pytest.raises(Exception, match="nodes"):
        with_overrides(cluster, nodes=0)
    local = make_executor(ClusterSection(executor="local"), tmp_path)
    assert type(local).__name__ == "AutoExecutor" and local.cluster == "local"
