"""Execution semantics that decide verdicts exactly as the grader's do (real container)."""

from __future__ import annotations

import pytest

from mft_hpc.evaluate.batch import run_jobs

pytestmark = pytest.mark.container

GO_TEST = 'package main\n\nimport (\n"testing"\n{imports}\n)\n\nfunc TestA(t *testing.T) {{ {body} }}\n'
CASES = [
    # Python/MBPP are exec()'d with fresh globals: __name__ is not "__main__"
    ("python", 'if __name__ == "__main__":\n    raise ValueError("never runs")\n', "pass"),
    ("python", "import sys\nsys.exit(0)\n", "fail"),                  # SystemExit counts as a failure
    ("python", "x = input()\n", "fail"),                               # stdin is not readable
    ("python", "import os\nos.remove('x')\n", "fail"),                 # reliability guard
    ("mbpp", "import numpy as np\nassert np.arange(3).sum() == 3\n", "pass"),
    ("mbpp", "assert 1 == 2\n", "fail"),
    ("js", "console.log('debug')\n", "fail"),                         # any output fails
    ("js", "process.exit(3)\n", "pass"),                               # exit code is ignored
    ("js", "console.assert(1 === 2)\n", "fail"),                       # prints "Assertion failed"
    ("java", "public class Main { public static void main(String[] a) { System.exit(0); } }\n", "pass"),
    ("java", "public class Main { public static void main(String[] a) { throw new AssertionError(); } }\n", "fail"),
    ("java", "public class Main { public static void main(String[] a) { int x = \"s\"; } }\n", "compile_error"),
    ("cpp", "#include <cassert>\nint main() { assert(1 == 2); }\n", "fail"),
    ("cpp", "auto f() { return 1; }\nint main() { return f() - 1; }\n", "compile_error"),  # -std=c++11
    # Go: eight programs, so the batch builds them in one group (test_go_shared_container.py
    # covers which share a binary)
    ("go", GO_TEST.format(imports="", body=""), "pass"),
    ("go", GO_TEST.format(imports="", body='t.Fatal("no")'), "fail"),
    ("go", GO_TEST.format(imports='"fmt"', body='_ = fmt.Sprintf("%d", "s")'), "compile_error"),  # vet
    ("go", GO_TEST.format(imports="", body='var x int = "s"; _ = x'), "compile_error"),
    ("go", GO_TEST.format(imports='"os"', body="os.Exit(0)"), "fail"),      # go test's -test.paniconexit0
    ("go", GO_TEST.format(imports='"github.com/stretchr/testify/assert"', body="assert.Equal(t, 1, 2)"), "fail"),
    ("go", GO_TEST.format(imports='"github.com/stretchr/testify/assert"', body="assert.Equal(t, 1, 1)"), "pass"),
    # a file named on the command line is built whatever its constraints (it fails a group's load)
    ("go", "//go:build ignore\n\n" + GO_TEST.format(imports="", body=""), "pass"),
    ("rust", "fn main(){}\n#[test]\nfn t() { assert_eq!(1, 1); }\n", "pass"),
    ("rust", "fn main(){}\n#[test]\nfn t() { assert_eq!(1, 2); }\n", "fail"),
    ("rust", "fn main(){}\n#[test]\nfn t() { let x: u8 = 255 + 1; }\n", "compile_error"),  # deny lint
    # Rust: eight programs, so the batch compiles the groupable ones two per `rustc` (one module each)
    ("rust", "fn main(){}\nuse super::*;\n#[test]\nfn t() {}\n", "compile_error"),   # valid in a module only
    ("rust", "fn f() -> i32 { 1 }\n#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n"
             "    fn t() { assert_eq!(f(), 1); }\n}\n", "pass"),
    ("rust", "use rand::Rng;\nfn main(){}\n#[test]\nfn t() { assert!(rand::thread_rng().gen_range(0, 10) < 10); }\n",
     "pass"),
    ("rust", "fn main(){}\n#[test]\nfn t() { let s: String = 5; }\n", "compile_error"),
    ("rust", "fn main(){}\n#[test]\nfn t() { panic!(\"no\"); }\n", "fail"),
]


def test_verdict_rules(apptainer_runtime):
    jobs = [{"id": i, "lang": lang, "source": source, "timeout": 10.0, "compile_timeout": 60.0}
            for i, (lang, source, _) in enumerate(CASES)]
    results = {}
    run_jobs(apptainer_runtime, jobs, 2, lambda r: results.__setitem__(r["id"], r))
    got = [(lang, source, results[i]["verdict"]) for i, (lang, source, _) in enumerate(CASES)]
    assert got == CASES
