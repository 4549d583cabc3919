"""How a batch splits its Go programs into `go test` groups (no container needed: only the plan;
test_semantics_container.py and the hostile tests run grouped Go programs in the real sandbox)."""

from __future__ import annotations

import io

from mft_hpc.evaluate.worker.batch import Batch
from mft_hpc.evaluate.worker.go import GO_GROUP
from mft_hpc.evaluate.worker.rust import RUST_GROUP, rust_groupable


def _plan(langs: list[str], workers: int, tmp_path, sources=None) -> list[tuple[str, list[int]]]:
    (tmp_path / "seed").mkdir(exist_ok=True)
    (tmp_path / "externs.json").write_text("{}")
    jobs = [{"id": i, "lang": lang, "source": (sources or {}).get(i, ""), "timeout": 1.0, "compile_timeout": 1.0}
            for i, lang in enumerate(langs)]
    manifest = {"nonce": "n", "workers": workers, "jobs": jobs,
                "toolchain": {"gocache": str(tmp_path / "seed"), "rust_externs": str(tmp_path / "externs.json")}}
    scratch = tmp_path / f"scratch{len(langs)}-{workers}"
    scratch.mkdir()
    batch = Batch(manifest, str(scratch), io.StringIO())
    def name(function) -> str:   # run_one, or the group build of the language's runner: run_go_group ...
        return "run_one" if function == batch.run_one else f"run_{function.__module__.rsplit('.', 1)[1]}_group"

    return [(name(function), [j["id"] for j in unit] if isinstance(unit, list) else [unit["id"]])
            for function, unit in batch.tasks()]


def test_go_programs_are_grouped_in_input_order_and_others_stay_single(tmp_path):
    langs = ["python"] + ["go"] * 70 + ["js"]
    plan = _plan(langs, 2, tmp_path)
    assert plan[0] == ("run_one", [0]) and plan[-1] == ("run_one", [71])
    groups = [ids for name, ids in plan if name == "run_go_group"]
    # 70 programs need 3 group builds of at most GO_GROUP (one keeps both cores busy: vet and build at
    # once): 3 even groups, not 2 of 32 and a straggler
    assert GO_GROUP == 32 and [len(g) for g in groups] == [24, 24, 22]
    assert sum(groups, []) == list(range(1, 71))          # every Go program exactly once, in order
    assert [len(ids) for _, ids in _plan(["go"] * 164, 2, tmp_path)] == [28] * 5 + [24]


def test_few_go_programs_make_one_group(tmp_path):
    assert [len(ids) for name, ids in _plan(["go"] * 8, 2, tmp_path)] == [8]
    assert [len(ids) for name, ids in _plan(["go"] * 24, 2, tmp_path)] == [24]
    assert [len(ids) for name, ids in _plan(["go"] * 40, 2, tmp_path)] == [20, 20]
    # a lone program (e.g. a re-run after its batch died) is built alone, exactly as the grader does,
    # and so are up to three (a shared binary costs more than three programs built alone)
    assert _plan(["go"], 2, tmp_path) == [("run_one", [0])]
    assert _plan(["go"] * 3, 2, tmp_path) == [("run_one", [0]), ("run_one", [1]), ("run_one", [2])]
    assert _plan(["go"] * 4, 2, tmp_path) == [("run_go_group", [0, 1, 2, 3])]


def test_groupable_rust_programs_are_grouped_and_the_others_compiled_alone(tmp_path):
    langs = ["rust"] * 40 + ["js"]
    plan = _plan(langs, 2, tmp_path, sources={5: "use super::*;\n", 17: "#![no_std]\n"})
    assert ("run_one", [5]) in plan and ("run_one", [17]) in plan and plan[-1] == ("run_one", [40])
    groups = [ids for name, ids in plan if name == "run_rust_group"]
    assert [len(g) for g in groups] == [7, 7, 7, 7, 7, 3] and 5 not in sum(groups, []) and 17 not in sum(groups, [])
    assert max(map(len, groups)) <= RUST_GROUP
    assert sorted(sum(groups, []) + [5, 17]) == list(range(40))


def test_rust_groupable_follows_braces_comments_and_literals():
    assert rust_groupable("fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n")
    assert rust_groupable("fn a<'a>(x: &'a str) { let c = '}'; let s = r#\"}\"#; super::g(); }")
    assert not rust_groupable("fn f() {}\nuse super::*;\n")                 # a root has no super
    assert not rust_groupable("fn f() { let s = \"{\"; }\nuse super::x;")
    assert not rust_groupable("/* { */ use super::x;")
    assert not rust_groupable("#![allow(dead_code)]\nfn f() {}")            # crate-level attributes
    assert not rust_groupable("fn f() {")                                   # not followed: alone
    # code that runs before main would run for every program of a group's binary
    assert not rust_groupable('#[link_section = ".init_array"]\nstatic I: extern "C" fn() = f;\nextern "C" fn f() {}')
