"""The two-task demo set, built from MBPP's train split only (task_ids 601-974; never test problems).

- code-synthesis: the competition's MBPP prompt (description + first assert) -> the reference solution.
- code-repair: a mechanically mutated solution plus an assert it fails -> the reference solution.
  A mutation is kept only if the original passes all asserts and the mutant fails one, both run
  in a fresh interpreter with a timeout.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np

from mft_hpc.errors import UserError
from mft_hpc.rundir import atomic_open, done_marker, is_done, mark_done

TRAIN_IDS = range(601, 975)
TIMEOUT_S = 3  # per candidate program
MAX_TRIES = 12
SWAPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "+": "-", "-": "+",
         "*": "+", "//": "/", "and": "or", "or": "and", "True": "False", "False": "True", "min": "max", "max": "min",
         "/": "*", "%": "//", "in": "not in", "reversed": "sorted", "sum": "len", "start": "end", "end": "start",
         "append": "insert", "upper": "lower", "lower": "upper", "split": "strip", "reverse": "sort", "sort": "reverse"}
HARNESS = r"""
import json, signal, sys
job = json.load(sys.stdin)

def alarm(signum, frame):
    raise TimeoutError

signal.signal(signal.SIGALRM, alarm)
report = []
for code in job["candidates"]:
    ns = {}
    results = []
    signal.setitimer(signal.ITIMER_REAL, job["timeout"])
    try:
        exec(job["setup"] + "\n" + code, ns)
        for test in job["tests"]:
            try:
                exec(test, ns); results.append(True)
            except TimeoutError:
                raise
            except BaseException:
                results.append(False)
    except TimeoutError:
        results = None
    except BaseException:
        results = [False] * len(job["tests"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    report.append(results)
print(json.dumps(report))
"""


def run_asserts(candidates: list[str], tests: list[str], setup: str = "") -> list[list[bool] | None]:
    """Per candidate program: which asserts pass (None: timed out), all run in one fresh isolated
    interpreter, each candidate in its own namespace under its own timer."""
    job = {"candidates": candidates, "tests": tests, "setup": setup, "timeout": TIMEOUT_S}
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", HARNESS], input=json.dumps(job), capture_output=True,
                              text=True, timeout=TIMEOUT_S * (len(candidates) + 1))
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return [None] * len(candidates)


def mutants(code: str, rng: np.random.Generator):
    """Single-token mutations (operator swap, boolean flip, min/max, integer +1), in random order."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return
    lines = code.splitlines(keepends=True)
    starts = np.cumsum([0] + [len(line) for line in lines])
    sites = []
    for tok in tokens:
        if tok.type in (tokenize.OP, tokenize.NAME) and tok.string in SWAPS:
            sites.append((tok, SWAPS[tok.string]))
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            sites.append((tok, str(int(tok.string) + 1)))
    for index in rng.permutation(len(sites)):
        tok, replacement = sites[index]
        begin = starts[tok.start[0] - 1] + tok.start[1]
        end = starts[tok.end[0] - 1] + tok.end[1]
        yield code[:begin] + replacement + code[end:]


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def synthesis_record(problem: dict, code: str) -> dict:
    prompt = f'"""\n{problem["text"]}\n{problem["test_list"][0]}\n"""\n'
    return {"chat_rounds": [{"role": "system", "content": ""}, {"role": "human", "content": prompt},
                            {"role": "bot", "content": fenced(code)}], "task_id": problem["task_id"]}


def repair_record(problem: dict, code: str, rng: np.random.Generator) -> dict | None:
    setup = problem.get("test_setup_code", "") or ""
    tests = problem["test_list"]
    candidates = []
    for mutant in mutants(code, rng):
        try:
            compile(mutant, "<mutant>", "exec")
        except SyntaxError:
            continue
        candidates.append(mutant)
        if len(candidates) == MAX_TRIES:
            break
    if not candidates:
        return None
    original, *results = run_asserts([code] + candidates, tests, setup)
    if original != [True] * len(tests):
        return None  # the reference itself fails here (e.g. missing setup): no trustworthy label
    for mutant, outcome in zip(candidates, results):
        if outcome is None or all(outcome):
            continue  # timeouts and surviving mutants do not make a verified bug
        failing = tests[outcome.index(False)]
        prompt = (f'"""\nThis function is wrong: it fails the test below. Fix it.\n{failing}\n"""\n'
                  f"{fenced(mutant)}\n")
        return {"chat_rounds": [{"role": "system", "content": ""}, {"role": "human", "content": prompt},
                                {"role": "bot", "content": fenced(code)}], "task_id": problem["task_id"]}
    return None


def load_train_problems(benchmarks: str | Path) -> list[dict]:
    path = Path(benchmarks) / "mbpp" / "mbpp.jsonl"
    if not path.is_file():
        raise UserError(f"--benchmarks {benchmarks}: no mbpp/mbpp.jsonl there")
    problems = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [p for p in problems if p["task_id"] in TRAIN_IDS]


def build_demo(benchmarks: str | Path, out_dir: str | Path, limit: int | None = None, seed: int = 0) -> dict[str, int]:
    """Write ``out_dir/code-synthesis/train.jsonl`` and ``out_dir/code-repair/train.jsonl``; skipped if done."""
    out = Path(out_dir)
    if is_done(out):
        return json.loads(done_marker(out).read_text())["counts"]
    problems = load_train_problems(benchmarks)[:limit]
    synthesis, repair = [], []
    for problem in problems:
        code = problem["code"].replace("\r\n", "\n").rstrip()
        synthesis.append(synthesis_record(problem, code))
        record = repair_record(problem, code, np.random.default_rng([seed, problem["task_id"]]))
        if record is not None:
            repair.append(record)
    counts = {}
    for task, records in (("code-synthesis", synthesis), ("code-repair", repair)):
        with atomic_open(out / task / "train.jsonl") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        counts[task] = len(records)
    mark_done(out, {"counts": counts, "source": "mbpp train split 601-974", "limit": limit, "seed": seed})
    return counts
