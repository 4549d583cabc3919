"""Problems whose canonical solution fails in the grader too, by
(task, index in the generations file). Flaky ones may pass or fail from run to run."""

from __future__ import annotations

KNOWN_BROKEN: dict[tuple[str, int], str] = {
    ("humanevalfixtests-python", 142): "stray quote in the declaration: SyntaxError (unsolvable)",
    ("humanevalsynthesize-js", 162): "canonical requires js-md5, not installed in the grader's image either",
    ("humanevalfixtests-js", 162): "canonical requires js-md5, not installed in the grader's image either",
    ("humanevalfixtests-cpp", 38): "declaration holds half of decode_cyclic: unbalanced braces (unsolvable)",
    ("humanevalsynthesize-go", 27): "prompt imports strings, canonical never uses it: imported and not used",
    ("humanevalsynthesize-go", 72): "auxiliary func isPalindrome cut by the \\nfunc stop word",
    ("humanevalsynthesize-go", 90): "canonical contains `struct`, cut by the struct stop word",
    ("humanevalsynthesize-go", 158): "canonical contains `struct`, cut by the struct stop word",
    ("humanevalfixtests-go", 10): "declaration lacks IsPalindrome used by the tests (unsolvable)",
    ("humanevalfixtests-go", 32): "declaration lacks Poly used by the tests (unsolvable)",
    ("humanevalfixtests-go", 38): "declaration lacks EncodeCyclic used by the tests (unsolvable)",
    ("humanevalfixtests-go", 50): "declaration lacks EncodeShift used by the tests (unsolvable)",
    ("humanevalfixtests-go", 72): "auxiliary func isPalindrome cut by the \\nfunc stop word",
    ("humanevalfixtests-go", 90): "canonical contains `struct`, cut by the struct stop word",
    ("humanevalfixtests-go", 158): "canonical contains `struct`, cut by the struct stop word",
    ("humanevalsynthesize-rust", 137): "return type RtnType defined after the function, cut by post-processing",
    ("humanevalsynthesize-rust", 145): "auxiliary fn sum_of_digits after the target is cut",
    ("humanevalfixtests-rust", 137): "return type RtnType defined after the function, cut by post-processing",
    ("humanevalfixtests-rust", 145): "auxiliary fn sum_of_digits after the target is cut",
    ("mbpp", 331): "task 342: the \\nclass stop word truncates the class-based solution",
    ("mbpp", 356): "task 367: asserts use root/root1/root2 from test_setup_code, which is never run",
}

# pass or fail from run to run in the grader as well
FLAKY: dict[tuple[str, int], str] = {
    ("humanevalsynthesize-go", 95): "canonical depends on Go's random map iteration order",
    ("humanevalfixtests-go", 95): "canonical depends on Go's random map iteration order",
    ("humanevalsynthesize-rust", 32): "Newton's method on random polynomials may not converge (timeout)",
    ("humanevalfixtests-rust", 32): "Newton's method on random polynomials may not converge (timeout)",
    ("mbpp", 112): "task 123: correct but ~2.5-3.4 s CPU against the 3 s limit (load-dependent)",
}
