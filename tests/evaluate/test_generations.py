"""Bad generations folders are errors naming the file (exit 2), never a shrunk denominator."""

import json

import pytest

from mft_hpc.cli.main import main
from mft_hpc.errors import UserError
from mft_hpc.evaluate.evaluate import prepare_jobs
from mft_hpc.evaluate.generations import discover_tasks
from mft_hpc.tasks.names import TASK_NAMES


def write(folder, task, data, model="m"):
    path = folder / f"generations_{task}_{model}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("data, message", [
    ([["x"]] * 163, "has 163 entries, the task has 164"),
    ([["x"]] * 163 + ["x"], "entry 163 is str"),
    ([["x"]] * 163 + [[]], "entry 163 is an empty list"),
    ({"a": 1}, "expected a JSON list"),
])
def test_bad_generations_name_the_file(tmp_path, benchmarks_dir, data, message):
    path = write(tmp_path, "humanevalsynthesize-js", data)
    with pytest.raises(UserError) as err:
        prepare_jobs(tmp_path, "m", ["humanevalsynthesize-js"], benchmarks_dir)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unknown_task_file_is_an_error(tmp_path):
    write(tmp_path, "humanevalsynthesize-cobol", [["x"]])
    with pytest.raises(UserError, match="unknown task 'humanevalsynthesize-cobol'"):
        discover_tasks(tmp_path, "m", TASK_NAMES)


def test_cli_exit_2_without_traceback(tmp_path, benchmarks_dir, capsys):
    write(tmp_path, "mbpp", [["x"]] * 10)
    code = main(["evaluate", "--generations", str(tmp_path), "--model", "m", "--benchmarks", str(benchmarks_dir),
                 "--out", str(tmp_path / "out"), "--runtime", "host", "--unsafe-host"])
    err = capsys.readouterr().err
    assert code == 2 and "generations_mbpp_m.json: has 10 entries" in err and "Traceback" not in err


def test_host_runtime_needs_explicit_flag(tmp_path, benchmarks_dir, capsys):
    write(tmp_path, "mbpp", [["x"]] * 500)
    code = main(["evaluate", "--generations", str(tmp_path), "--model", "m", "--benchmarks", str(benchmarks_dir),
                 "--out", str(tmp_path / "out"), "--runtime", "host"])
    assert code == 2 and "--unsafe-host" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_image_is_a_clear_error(tmp_path, benchmarks_dir, capsys):
    write(tmp_path, "mbpp", [["x"]] * 500)
    code = main(["evaluate", "--generations", str(tmp_path), "--model", "m", "--benchmarks", str(benchmarks_dir),
                 "--out", str(tmp_path / "out"), "--image", str(tmp_path / "missing.sif")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "missing.sif not found" in err or "no apptainer binary found" in err


def test_starvation_markers_match_any_case():
    """Go prints 'resource temporarily unavailable', libc 'Resource temporarily unavailable': both re-run."""
    from mft_hpc.evaluate.batch import _starved

    assert _starved("go: error obtaining buildID for go tool vet: fork/exec /usr/lib/go-1.19/pkg/tool/"
                    "linux_amd64/vet: resource temporarily unavailable")
    assert _starved("BlockingIOError: [Errno 11] Resource temporarily unavailable")
    assert not _starved("AssertionError: expected 3")
