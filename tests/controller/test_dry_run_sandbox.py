"""The sandbox command a dry run prints per evaluation element, rendered without running anything."""

from __future__ import annotations

import logging
import shlex
import sys

import pytest

from test_shard_plan import plan_for

from mft_hpc.config.sections.evaluate import EvaluateSection
from mft_hpc.controller.dag import all_keys, element_specs
from mft_hpc.controller.submit import DagSubmitter
from mft_hpc.errors import UserError
from mft_hpc.evaluate.runtime import MEMORY_PER_WORKER_MB, find_apptainer
from mft_hpc.evaluate.sandbox import evaluation_argv
from mft_hpc.rundir.state import StateStore
from mft_hpc.runplan.key import ElementKey
from mft_hpc.slurm import DryRunLog, Submitter


def dry_dag(tmp_path, evaluate: EvaluateSection, **generate) -> tuple[DagSubmitter, dict]:
    """A dry-run submission of a 2-task run with this evaluate section."""
    plan = plan_for(tmp_path, evaluate=True, limit=4, **generate)
    member = plan.members[0]
    config = member.config.model_copy(update={"evaluate": evaluate})
    plan.members[0] = type(member)(member.name, config, member.dir, member.model_name)
    with StateStore(plan.run.state_db, run=plan.name) as store:
        store.add_elements(element_specs(plan))
        dag = DagSubmitter(plan, store, Submitter(config.cluster, plan.run.logs, dry_run=DryRunLog()))
        submitted = dag.submit_slurm(set(all_keys(plan)))
    return dag, submitted


def test_apptainer_argv_names_the_image_and_no_network(tmp_path):
    try:
        binary = find_apptainer("apptainer")
    except UserError:
        pytest.skip("apptainer not installed")
    image = tmp_path / "eval.sif"
    image.write_bytes(b"")  # only its path matters: nothing runs
    argv = evaluation_argv(EvaluateSection(runtime="apptainer", image=str(image)), workers=3)
    assert argv[:3] == [binary, "-q", "exec"]
    assert argv[argv.index("--network") + 1] == "none" and "--containall" in argv
    assert argv[argv.index(str(image)):] == [str(image), "python3", "-I", "/opt/mft-hpc/worker",
                                              "--scratch", "/scratch"]
    assert not any(a.endswith(":/worker:ro") for a in argv)   # the worker is the image's, not bound
    assert any(a.endswith("/mft-hpc-eval.XXXXXXXX/scratch:/scratch:rw") for a in argv)
    if "--memory" in argv:  # root with usable cgroups: the limit scales with the workers
        assert argv[argv.index("--memory") + 1] == f"{MEMORY_PER_WORKER_MB * 3 + 1024}M"


def test_missing_image_is_the_error_the_element_would_hit(tmp_path):
    with pytest.raises(UserError, match="not found"):
        evaluation_argv(EvaluateSection(runtime="apptainer", image=str(tmp_path / "missing.sif")), workers=1)


def test_host_runtime_renders_the_unsandboxed_worker(caplog):
    with caplog.at_level(logging.WARNING, logger="mft_hpc.evaluate"):
        argv = evaluation_argv(EvaluateSection(runtime="host", unsafe_host=True), workers=2)
    assert argv[0] == sys.executable and argv[-3].endswith("evaluate/worker") and argv[-2] == "--scratch"
    assert [r.levelname for r in caplog.records if "without a sandbox" in r.getMessage()] == ["WARNING"]


def test_dry_run_lists_one_sandbox_command_per_evaluation_element(tmp_path):
    dag, submitted = dry_dag(tmp_path, EvaluateSection(runtime="host", unsafe_host=True))
    text = dag.render_sandbox_commands()
    for task in ("mbpp", "humanevalsynthesize-python"):
        assert f"# evaluate/main/{task}  ({submitted[ElementKey('evaluate', 'main', task)]})" in text
    commands = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(commands) == 2 and shlex.split(commands[0])[0] == sys.executable


def test_dry_run_says_when_the_sandbox_cannot_start(tmp_path):
    dag, _ = dry_dag(tmp_path, EvaluateSection(image=str(tmp_path / "missing.sif")), shard_size=2)
    warnings = [line for line in dag.render_sandbox_commands().splitlines() if "WARNING" in line]
    assert len(warnings) == 2 and all("missing.sif" in w or "apptainer" in w for w in warnings)


def test_every_member_shares_the_runs_verdict_cache_unless_configured(tmp_path):
    dag, _ = dry_dag(tmp_path / "a", EvaluateSection(runtime="host", unsafe_host=True))
    member = dag.plan.members[0]
    eval_cfg = dag._evaluation_element(member, ["mbpp"]).config
    assert eval_cfg.cache_dir == str(dag.plan.run.verdict_cache) and eval_cfg.cache
    shared = str(tmp_path / "shared-cache")
    dag, _ = dry_dag(tmp_path / "b", EvaluateSection(runtime="host", unsafe_host=True, cache_dir=shared))
    assert dag._evaluation_element(dag.plan.members[0], ["mbpp"]).config.cache_dir == shared
