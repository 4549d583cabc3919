"""Program assembly follows the grader's per-language rules (harness_spec.md §6.3)."""

from mft_hpc.evaluate.assemble import CPP_IMPORTS, PYTHON_IMPORTS, RUST_MAIN, program
from mft_hpc.tasks.registry import load_problems


def test_python_gets_import_helper_and_test(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "humanevalsynthesize-python")[0]
    text = program("humanevalsynthesize-python", doc, "def f():\n    return 1\n\n")
    assert text.startswith("\n".join(PYTHON_IMPORTS) + "\ndef f():\n    return 1")
    assert text.endswith("\n\n" + doc["test"])


def test_mbpp_runs_all_three_asserts_without_setup(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "mbpp")[0]
    text = program("mbpp", doc, "CODE")
    assert text == "CODE\n" + "\n".join(doc["test_list"])
    assert len(doc["test_list"]) == 3


def test_cpp_drops_everything_from_int_main(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "humanevalsynthesize-cpp")[0]
    text = program("humanevalsynthesize-cpp", doc, "int f(){return 1;}\nint main(){return 2;}")
    assert text.startswith("\n".join(CPP_IMPORTS))
    assert "return 2" not in text.split(doc["test"])[0]


def test_java_removes_empty_main_class(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "humanevalsynthesize-java")[0]
    text = program("humanevalsynthesize-java", doc, "class Solution {}\npublic class Main {\n    }\n")
    assert text.startswith("class Solution {}\n\n")
    assert text.count("public class Main") == doc["test"].count("public class Main")


def test_go_setup_dedup_and_auto_imports(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "humanevalsynthesize-go")[1]
    gen = 'import (\n    "testing"\n)\nfunc F() string { return strings.ToUpper(fmt.Sprint(1)) }\n'
    text = program("humanevalsynthesize-go", doc, gen)
    head = text.split("func F")[0]
    assert head.count('"testing"') == 1                       # removed from test_setup, kept in gen
    assert '"strings"' in head and '"fmt"' in head              # used but not imported: auto-added
    assert '"math"' not in head                                 # not used


def test_go_commented_use_is_not_an_import(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "humanevalsynthesize-go")[1]
    text = program("humanevalsynthesize-go", doc, "// uses strings.ToUpper\nfunc F() {}\n")
    assert '"strings"' not in text.split("func F")[0]


def test_rust_adds_main_and_missing_declaration_lines(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "humanevalsynthesize-rust")[0]
    gen = "fn has_close_elements(numbers:Vec<f32>, threshold: f32) -> bool{ false }"
    text = program("humanevalsynthesize-rust", doc, gen)
    assert text.startswith(RUST_MAIN)
    assert "use regex::Regex;" in text                          # declaration line merged in
    assert text.count("fn has_close_elements(") == 1            # signature already present: skipped


def test_rust_cuts_at_second_main(benchmarks_dir):
    doc = load_problems(benchmarks_dir, "humanevalsynthesize-rust")[0]
    text = program("humanevalsynthesize-rust", doc, "fn main(){}\nfn a(){}\nfn main(){ boom }")
    assert "boom" not in text and not text.startswith(RUST_MAIN + RUST_MAIN)
