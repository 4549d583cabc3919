"""`mft-hpc evaluate` end to end in the real container: grader metrics layout, per-problem
results, summary, and reruns that skip finished tasks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mft_hpc.cli.main import main
from mft_hpc.evaluate.canonical import canonical_generation
from mft_hpc.tasks.registry import load_problems

pytestmark = [pytest.mark.container, pytest.mark.slow]
TASK = "humanevalsynthesize-js"


def test_evaluate_cli_writes_grader_metrics(evaluation_image, benchmarks_dir, tmp_path, capsys):
    problems = load_problems(benchmarks_dir, TASK)
    # canonical on even problems, a wrong answer on odd ones; JS/162 (even) is a documented failure
    gens = [[canonical_generation(TASK, doc)] if i % 2 == 0 else ["function broken() { return 0 }"]
            for i, doc in enumerate(problems)]
    gen_dir = tmp_path / "generations_m1"
    gen_dir.mkdir()
    (gen_dir / f"generations_{TASK}_m1.json").write_text(json.dumps(gens))
    args = ["evaluate", "--generations", str(gen_dir), "--model", "m1", "--benchmarks", str(benchmarks_dir),
            "--out", str(tmp_path / "out"), "--image", str(evaluation_image), "--workers", "2"]
    assert main(args) == 0
    folder = tmp_path / "out" / "metrics_m1"
    metrics = json.loads((folder / f"metrics_{TASK}_m1.json").read_text())
    assert metrics[TASK]["pass@1"] == pytest.approx(81 / 164)
    assert metrics["config"]["runtime"] == "apptainer"
    rows = [json.loads(line) for line in (folder / f"results_{TASK}_m1.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(164))
    assert {r["verdict"] for r in rows[1::2]} == {"fail"}       # the test calls an undefined function
    assert rows[162]["verdict"] == "fail" and "js-md5" in rows[162]["reason"]
    assert all(set(r) == {"index", "verdict", "reason", "seconds", "cached", "flaky"} for r in rows)
    assert not any(r["cached"] for r in rows) and metrics["config"]["cache"]["judged"] == 164
    summary = json.loads((folder / "summary_m1.json").read_text())
    assert summary["tasks"][TASK]["verdicts"] == {"pass": 81, "fail": 83}
    assert "0.4939" in capsys.readouterr().out

    before = (folder / f"metrics_{TASK}_m1.json").stat().st_mtime_ns
    assert main(args) == 0                                      # rerun: finished task is skipped
    assert (folder / f"metrics_{TASK}_m1.json").stat().st_mtime_ns == before

    # another output folder sharing the cache: every verdict reused, recorded as such, same results
    def into(out, *extra):
        return args[:args.index("--out") + 1] + [str(tmp_path / out)] + args[args.index("--out") + 2:] + [
            "--cache-dir", str(tmp_path / "out" / "verdict-cache"), *extra]

    assert main(into("again")) == 0
    again = tmp_path / "again" / "metrics_m1"
    rows_again = [json.loads(line) for line in (again / f"results_{TASK}_m1.jsonl").read_text().splitlines()]
    assert all(r["cached"] for r in rows_again)
    assert [(r["verdict"], r["reason"]) for r in rows_again] == [(r["verdict"], r["reason"]) for r in rows]
    assert json.loads((again / f"metrics_{TASK}_m1.json").read_text())["config"]["cache"]["reused"] == 164


def test_singularity_runtime_name_runs_the_same_container(evaluation_image, benchmarks_dir, tmp_path):
    """`--runtime singularity` finds the `singularity` binary (Apptainer's compatibility name, which
    containers/install_apptainer.sh installs as Debian's package does) and gives the same verdicts."""
    task = "humanevalsynthesize-python"
    gens = [[canonical_generation(task, doc)] for doc in load_problems(benchmarks_dir, task)]
    gen_dir = tmp_path / "generations_m1"
    gen_dir.mkdir()
    (gen_dir / f"generations_{task}_m1.json").write_text(json.dumps(gens))
    assert main(["evaluate", "--generations", str(gen_dir), "--model", "m1", "--benchmarks", str(benchmarks_dir),
                 "--out", str(tmp_path / "out"), "--image", str(evaluation_image), "--runtime", "singularity",
                 "--tasks", task]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics_m1" / f"metrics_{task}_m1.json").read_text())
    assert metrics[task]["pass@1"] == 1.0 and metrics["config"]["runtime"] == "singularity"


def test_two_evaluations_writing_one_cache_concurrently(evaluation_image, benchmarks_dir, tmp_path):
    """Two `mft-hpc evaluate` processes judge the same programs at the same time into one cache:
    the same results, every verdict stored once, readable, no temporary file left behind."""
    from mft_hpc.evaluate.cache import VerdictCache

    task = "humanevalsynthesize-python"
    problems = load_problems(benchmarks_dir, task)[:60]
    gens = [[canonical_generation(task, doc)] if i % 3 else ["    return None\n"] for i, doc in enumerate(problems)]
    gen_dir = tmp_path / "generations_m1"
    gen_dir.mkdir()
    (gen_dir / f"generations_{task}_m1.json").write_text(json.dumps(gens))
    cache_dir = tmp_path / "cache"
    args = ["evaluate", "--generations", str(gen_dir), "--model", "m1", "--benchmarks", str(benchmarks_dir),
            "--image", str(evaluation_image), "--workers", "1", "--limit", "60", "--cache-dir", str(cache_dir)]
    procs = [subprocess.Popen([sys.executable, "-m", "mft_hpc", *args, "--out", str(tmp_path / f"out{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        errors.append(err.decode())
        assert proc.returncode == 0, errors[-1]
    rows = [[json.loads(line) for line in (tmp_path / f"out{i}" / "metrics_m1" / f"results_{task}_m1.jsonl")
             .read_text().splitlines()] for i in range(2)]
    assert [(r["verdict"], r["reason"]) for r in rows[0]] == [(r["verdict"], r["reason"]) for r in rows[1]]
    assert sum(r["verdict"] == "pass" for r in rows[0]) == 40
    assert VerdictCache(cache_dir).size() == {"entries": 60, "bytes": VerdictCache(cache_dir).size()["bytes"],
                                              "temporary_files": 0}
    assert not any("corrupt" in text or "cannot write" in text for text in errors)
    # --no-cache judges every program again (and records the verdicts again: nothing disagrees here)
    assert main([*args, "--out", str(tmp_path / "fresh"), "--no-cache"]) == 0
    fresh = tmp_path / "fresh" / "metrics_m1"
    assert json.loads((fresh / f"metrics_{task}_m1.json").read_text())["config"]["cache"]["judged"] == 60
    assert [json.loads(line)["verdict"] for line in (fresh / f"results_{task}_m1.jsonl").read_text().splitlines()] \
        == [r["verdict"] for r in rows[0]]
