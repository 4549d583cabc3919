"""Go programs sharing one test binary (worker/go.py build_go_shared) get exactly the verdicts they
get built alone, as the grader builds them; programs that would mean something else there are
built alone (real container)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from mft_hpc.evaluate.batch import run_jobs

pytestmark = pytest.mark.container


def go(decls: str, imports: str = "") -> str:
    return f'package main\n\nimport (\n    "testing"\n{imports})\n\n{decls}\n'


# (what it is, source, verdict); the first ones share the binary, the rest are built alone
CASES = [
    ("passes", go('func TestA(t *testing.T) { if 1+1 != 2 { t.Fatal("x") } }'), "pass"),
    ("fails", go('func TestA(t *testing.T) { t.Fatal("no") }'), "fail"),
    ("second test fails", go('func TestA(t *testing.T) {}\nfunc TestB(t *testing.T) { t.Error("b") }'), "fail"),
    ("no tests", go("func Helper(t *testing.T) {}"), "pass"),
    ("Testfoo is not a test", go('func Testfoo(t *testing.T) { t.Fatal("not a test") }'), "pass"),
    ("a method is not a test", go('type s struct{}\n\nfunc (s) TestX(t *testing.T) { t.Fatal("no") }'), "pass"),
    ("parallel tests", go("func TestA(t *testing.T) { t.Parallel() }\nfunc TestB(t *testing.T) { t.Parallel() }"),
     "pass"),
    ("os.Exit(0) in a test", go("func TestA(t *testing.T) { os.Exit(0) }", '    "os"\n'), "fail"),
    ("loops", go("func TestA(t *testing.T) { for {} }"), "timeout"),
    ("vet: printf", go('func TestA(t *testing.T) { _ = fmt.Sprintf("%d", "s") }', '    "fmt"\n'), "compile_error"),
    ("type error", go('func TestA(t *testing.T) { var x int = "s"; _ = x }'), "compile_error"),
    # built alone: they would run code for every program of a binary, or mean something else there
    ("init exits", go('func init() { os.Exit(0) }\n\nfunc TestA(t *testing.T) { t.Fatal("no") }', '    "os"\n'), "pass"),
    ("initialiser panics", go('var table = build()\n\nfunc build() []int { panic("boom") }\n\n'
                              "func TestA(t *testing.T) { _ = table }"), "fail"),
    ("initialiser draws", go("var r = rand.Intn(10)\n\nfunc TestA(t *testing.T) { _ = r }", '    "math/rand"\n'), "pass"),
    ("wrong test signature", go("func TestA(b *testing.B) {}"), "compile_error"),
    ("generic test", go("func TestG[T any](t *testing.T) {}"), "compile_error"),
    ("TestMain never runs the tests", go('func TestMain(m *testing.M) {}\n\nfunc TestA(t *testing.T) { t.Fatal("no") }'),
     "pass"),
    ("example output differs", go('func TestA(t *testing.T) {}\n\nfunc ExampleA() {\n    fmt.Println("x")\n    // Output: y\n}',
                                      '    "fmt"\n'), "fail"),
    ("declares main", go("var main = 1\n\nfunc TestA(t *testing.T) {}"), "compile_error"),
    ("imports unsafe", go("var _ = unsafe.Sizeof(0)\n\nfunc TestA(t *testing.T) {}", '    "unsafe"\n'), "pass"),
    ("build constraint", "//go:build ignore\n\n" + go("func TestA(t *testing.T) {}"), "pass"),
]
SHARED = 9          # CASES[:SHARED] are taken into a shared binary (two of the rest are rejected by vet)


def _jobs() -> list[dict]:
    # each program's tests get names of their own (TestA -> TestA<i>): a name two programs share
    # keeps the second out of the shared binary (the last test below)
    return [{"id": i, "lang": "go", "source": source.replace("func TestA(", f"func TestA{i}(").replace(
             "func TestB(", f"func TestB{i}("), "timeout": 3.0 if name == "loops" else 10.0, "compile_timeout": 60.0}
            for i, (name, source, _) in enumerate(CASES)]


def _in_container(runtime, tmp_path, argv: list[str]) -> str:
    scratch = tmp_path / "scratch"
    runtime.prepare_scratch(scratch)
    cmd = runtime.argv(scratch, 1, [])
    image_at = cmd.index(str(runtime.image))
    return subprocess.run(cmd[:image_at + 1] + argv, check=True, capture_output=True, text=True).stdout


def test_shared_and_alone_verdicts_are_the_grader_s(apptainer_runtime):
    jobs = _jobs()
    grouped, alone = {}, {}
    run_jobs(apptainer_runtime, jobs, 2, lambda r: grouped.__setitem__(r["id"], r))
    for job in jobs:    # a batch of one program builds it alone, as the grader does
        run_jobs(apptainer_runtime, [job], 1, lambda r: alone.__setitem__(r["id"], r))
    expected = [(name, verdict) for name, _, verdict in CASES]
    assert [(name, alone[i]["verdict"]) for i, (name, _, _) in enumerate(CASES)] == expected
    assert [(name, grouped[i]["verdict"]) for i, (name, _, _) in enumerate(CASES)] == expected
    # a failing program in the shared binary reports what its own binary does: its test's name, file and line
    def reason(record: dict) -> str:
        return re.sub(r"\(\d+\.\d+s\)", "(time)", record["reason"])
    assert "--- FAIL: TestA1 (time)\n    main_test.go:7: no" in reason(alone[1])
    # (a panic's trace differs between any two builds: goroutine numbers, addresses)
    assert [reason(grouped[i]) for i in (1, 2)] == [reason(alone[i]) for i in (1, 2)]


def test_which_programs_share_a_binary(apptainer_runtime, tmp_path):
    # build_go_shared's split of one group: the shareable programs are in the binary, the two vet
    # rejects are reported, the others (and a second program with the tests' names of the first)
    # are left to be built as before
    jobs = _jobs()
    jobs.append({**jobs[2], "id": len(jobs)})
    script = (
        "import io, json, os, sys\n"
        "sys.path.insert(0, '/opt/mft-hpc')\n"
        "from worker.batch import Batch\n"
        "from worker.go import build_go_shared\n"
        f"jobs = {jobs!r}\n"
        "batch = Batch({'nonce': 'n', 'jobs': jobs, 'workers': 1}, '/scratch', io.StringIO())\n"
        "runner = batch.runners['go']\n"
        "for job in jobs:\n"
        "    os.makedirs(f\"/scratch/g/p{job['id']}\")\n"
        "    open(f\"/scratch/g/p{job['id']}/main_test.go\", 'w').write(job['source'])\n"
        "shared, rejected = build_go_shared(jobs, '/scratch/g', batch.tool, runner.gocache)\n"
        "print(json.dumps({'shared': sorted(shared), 'rejected': sorted(rejected),\n"
        "                  'run': shared.get(2), 'binary': os.path.isfile('/scratch/g/shared.test')}))\n"
    )
    got = json.loads(_in_container(apptainer_runtime, tmp_path, ["python3", "-I", "-c", script]).splitlines()[-1])
    vet_rejects = [i for i, (_, _, verdict) in enumerate(CASES[:SHARED + 2]) if verdict == "compile_error"]
    assert got["rejected"] == vet_rejects == [SHARED, SHARED + 1]
    assert got["shared"] == list(range(SHARED)) and got["binary"]
    assert got["run"] == "-test.run=^(TestA2|TestB2)$"      # exactly its own tests, by their own names
