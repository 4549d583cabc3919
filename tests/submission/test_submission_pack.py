"""`mft-hpc pack`: what it writes, and every way a submission is refused (exit 2, saying why)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from submission_fakes import write_generations, write_run

from mft_hpc.cli.main import main
from mft_hpc.tasks.names import PROBLEM_COUNTS, TASK_NAMES

MODEL = "demo-main"


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _zip_from(folder: Path, out: Path, drop: str | None = None, rename: tuple[str, str] | None = None) -> Path:
    """Someone else's zip of a generations folder, optionally with one file dropped or renamed."""
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.glob("generations_*.json")):
            name = path.name
            if name == drop:
                continue
            if rename and name == rename[0]:
                name = rename[1]
            archive.write(path, f"{folder.name}/{name}")
    return out


def test_pack_full_run_writes_13_files_in_one_folder_and_checks_it(full_run, tmp_path, capsys):
    out = tmp_path / "sub.zip"
    code, stdout, stderr = _run_cli(capsys, "pack", str(full_run), "--out", str(out))
    assert code == 0, stderr
    assert "written and checked" in stdout and "13/13 tasks" in stdout and "2632/2632" not in stdout
    assert f"{sum(PROBLEM_COUNTS.values())}/{sum(PROBLEM_COUNTS.values())} problems" in stdout
    with zipfile.ZipFile(out) as archive:
        files = sorted(i.filename for i in archive.infolist() if not i.is_dir())
        assert files == sorted(f"generations_{MODEL}/generations_{t}_{MODEL}.json" for t in TASK_NAMES)
        assert archive.comment == b""
        mbpp = json.loads(archive.read(f"generations_{MODEL}/generations_mbpp_{MODEL}.json"))
        assert len(mbpp) == 500 and mbpp[3] == ["# mbpp problem 3\n"]
    code, stdout, _ = _run_cli(capsys, "pack", "--check", str(out))
    assert code == 0 and "ok" in stdout and "PARTIAL" not in stdout


def test_pack_is_reproducible_and_defaults_to_the_collect_dir(full_run, capsys):
    assert _run_cli(capsys, "pack", str(full_run))[0] == 0
    first = (full_run / "collect" / f"generations_{MODEL}.zip").read_bytes()
    assert _run_cli(capsys, "pack", str(full_run))[0] == 0
    assert (full_run / "collect" / f"generations_{MODEL}.zip").read_bytes() == first


def test_check_refuses_a_zip_with_12_files(full_run, tmp_path, capsys):
    folder = full_run / "members/main/generate" / f"generations_{MODEL}"
    bad = _zip_from(folder, tmp_path / "twelve.zip", drop=f"generations_mbpp_{MODEL}.json")
    code, _, stderr = _run_cli(capsys, "pack", "--check", str(bad))
    assert code == 2
    assert "has 12 files, expected exactly 13" in stderr
    assert f"generations_mbpp_{MODEL}.json: missing (task mbpp)" in stderr
    assert "Traceback" not in stderr


def test_check_refuses_a_misnamed_file_and_suggests_the_right_name(full_run, tmp_path, capsys):
    folder = full_run / "members/main/generate" / f"generations_{MODEL}"
    wrong = f"generations_humanevalsynthesize-javascript_{MODEL}.json"
    bad = _zip_from(folder, tmp_path / "misnamed.zip",
                    rename=(f"generations_humanevalsynthesize-js_{MODEL}.json", wrong))
    code, _, stderr = _run_cli(capsys, "pack", "--check", str(bad))
    assert code == 2
    assert f"{wrong}: unexpected file name (did you mean generations_humanevalsynthesize-js_{MODEL}.json?)" in stderr


def test_pack_refuses_a_wrong_length_list(full_run, tmp_path, capsys):
    path = full_run / "members/main/generate" / f"generations_{MODEL}" / f"generations_humanevalfixtests-go_{MODEL}.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:-1]))
    code, _, stderr = _run_cli(capsys, "pack", str(full_run), "--out", str(tmp_path / "x.zip"))
    assert code == 2
    assert f"generations_humanevalfixtests-go_{MODEL}.json: 163 entries, expected 164" in stderr
    assert not (tmp_path / "x.zip").exists()


def test_pack_refuses_entries_that_are_not_one_string(full_run, tmp_path, capsys):
    path = full_run / "members/main/generate" / f"generations_{MODEL}" / f"generations_mbpp_{MODEL}.json"
    entries = json.loads(path.read_text())
    entries[7] = ["a", "b"]  # two samples: not greedy n_samples=1
    path.write_text(json.dumps(entries))
    code, _, stderr = _run_cli(capsys, "pack", str(full_run), "--out", str(tmp_path / "x.zip"))
    assert code == 2 and "entry 7 must be a list holding exactly one string" in stderr


def test_pack_refuses_a_sampling_run(tmp_path, capsys):
    run = write_run(tmp_path, generate_overrides={"do_sample": True, "temperature": 0.2})
    code, _, stderr = _run_cli(capsys, "pack", str(run), "--out", str(tmp_path / "x.zip"))
    assert code == 2
    assert "do_sample: True" in stderr and "greedy" in stderr and "config.yaml" in stderr
    run2 = write_run(tmp_path / "beams", generate_overrides={"num_beams": 4})
    assert _run_cli(capsys, "pack", str(run2), "--out", str(tmp_path / "y.zip"))[0] == 2


def test_partial_run_packs_only_with_allow_partial_and_says_so(partial_run, tmp_path, capsys):
    out = tmp_path / "sub.zip"
    code, _, stderr = _run_cli(capsys, "pack", str(partial_run), "--out", str(out))
    assert code == 2 and "--allow-partial" in stderr and "4 entries, expected 164" in stderr
    code, stdout, stderr = _run_cli(capsys, "pack", str(partial_run), "--out", str(out), "--allow-partial")
    assert code == 0
    written = tmp_path / "sub-partial.zip"
    assert written.exists() and not out.exists()
    assert "PARTIAL submission" in stderr and "NOT a valid competition submission" in stderr
    assert f"{4 * len(TASK_NAMES)}/" in stdout

    # A partial zip never passes for a full one.
    code, _, stderr = _run_cli(capsys, "pack", "--check", str(written))
    assert code == 2 and "--allow-partial" in stderr
    assert _run_cli(capsys, "pack", "--check", str(written), "--allow-partial")[0] == 0
    renamed = written.rename(tmp_path / "final.zip")
    code, _, stderr = _run_cli(capsys, "pack", "--check", str(renamed), "--allow-partial")
    assert code == 2 and "does not say 'partial'" in stderr
    assert _run_cli(capsys, "pack", "--check", str(renamed))[0] == 2


def test_partial_files_must_match_the_run_limit(partial_run, tmp_path, capsys):
    path = partial_run / "members/main/generate" / f"generations_{MODEL}" / f"generations_mbpp_{MODEL}.json"
    path.write_text(json.dumps([["x"]] * 3))
    code, _, stderr = _run_cli(capsys, "pack", str(partial_run), "--out", str(tmp_path / "x.zip"), "--allow-partial")
    assert code == 2 and "3 entries, but the run's generate.limit 4 means 4" in stderr


def test_bare_folder_needs_meta_or_assume_greedy(tmp_path, capsys):
    folder = write_generations(tmp_path / "generations_bare", "bare")
    out = tmp_path / "bare.zip"
    code, _, stderr = _run_cli(capsys, "pack", str(folder), "--out", str(out))
    assert code == 2 and "generation_meta.json" in stderr and "--assume-greedy" in stderr
    assert _run_cli(capsys, "pack", str(folder), "--out", str(out), "--assume-greedy")[0] == 0

    (folder / "generation_meta.json").write_text(json.dumps({"do_sample": True, "num_beams": 1,
                                                             "num_return_sequences": 1}))
    code, _, stderr = _run_cli(capsys, "pack", str(folder), "--out", str(out))
    assert code == 2 and "do_sample: True" in stderr
    (folder / "generation_meta.json").write_text(json.dumps({"do_sample": False, "num_beams": 1,
                                                             "num_return_sequences": 1, "limit": None}))
    assert _run_cli(capsys, "pack", str(folder), "--out", str(out))[0] == 0
    with zipfile.ZipFile(out) as archive:  # meta and .done markers stay out of the zip
        assert len([i for i in archive.infolist() if not i.is_dir()]) == 13


def test_check_refuses_files_outside_one_generations_folder(full_run, tmp_path, capsys):
    folder = full_run / "members/main/generate" / f"generations_{MODEL}"
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as archive:
        for path in folder.glob("generations_*.json"):
            archive.write(path, path.name)
    code, _, stderr = _run_cli(capsys, "pack", "--check", str(flat))
    assert code == 2 and "exactly one folder generations_{model}/" in stderr
    wrong_folder = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong_folder, "w") as archive:
        for path in folder.glob("generations_*.json"):
            archive.write(path, f"results/{path.name}")
    code, _, stderr = _run_cli(capsys, "pack", "--check", str(wrong_folder))
    assert code == 2 and "'results' must be named generations_{model}" in stderr
    (tmp_path / "junk.zip").write_text("not a zip")
    code, _, stderr = _run_cli(capsys, "pack", "--check", str(tmp_path / "junk.zip"))
    assert code == 2 and "not a readable zip" in stderr


def test_sweep_run_needs_a_member(tmp_path, capsys):
    run = write_run(tmp_path, members=("lr0.0001", "lr0.0002"))
    code, _, stderr = _run_cli(capsys, "pack", str(run))
    assert code == 2 and "2 members (lr0.0001, lr0.0002); choose one with --member" in stderr
    code, stdout, _ = _run_cli(capsys, "pack", str(run), "--member", "lr0.0002")
    assert code == 0 and "generations_demo-lr0.0002.zip" in stdout and "member lr0.0002" in stdout


@pytest.mark.parametrize("argv", [["pack"], ["pack", "--check", "a.zip", "somewhere"]])
def test_bad_arguments_exit_2(argv, capsys):
    assert _run_cli(capsys, *argv)[0] == 2


def test_a_per_member_resolved_config_is_read_for_the_decoding(full_run, tmp_path, capsys):
    (full_run / "members" / "main" / "config.yaml").write_text(
        "run: {name: demo}\ngenerate: {do_sample: false, num_beams: 3, num_return_sequences: 1}\n")
    code, _, stderr = _run_cli(capsys, "pack", str(full_run), "--out", str(tmp_path / "x.zip"))
    assert code == 2 and "members/main/config.yaml: generate: num_beams: 3" in stderr
