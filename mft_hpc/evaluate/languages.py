"""Per-language limits of the grader (its run timeouts) and ours (compile limits)."""

from __future__ import annotations

from mft_hpc.evaluate.assemble import program, reference
from mft_hpc.tasks.registry import language_of

# wall-clock seconds for running a program (the grader's timeouts)
RUN_TIMEOUT = {"python": 10.0, "mbpp": 3.0, "js": 10.0, "java": 10.0, "cpp": 60.0, "go": 20.0, "rust": 30.0}
# compile steps run separately from the program (warm caches, prebuilt crates) with the grader's
# most generous compile allowance, so a slow compile on a loaded machine cannot flip a verdict
COMPILE_TIMEOUT = {"java": 60.0, "cpp": 60.0, "go": 60.0, "rust": 300.0}


def job_language(task: str) -> str:
    """The worker's language key: mbpp is Python with MBPP's 3 s limit."""
    return "mbpp" if task == "mbpp" else language_of(task)


def job_spec(task: str, index: int, source: str, job_id: int) -> dict:
    lang = job_language(task)
    return {"id": job_id, "lang": lang, "source": source, "timeout": RUN_TIMEOUT[lang],
            "compile_timeout": COMPILE_TIMEOUT.get(lang, 0.0), "task": task, "index": index}


def program_job(task: str, index: int, doc: dict, generation: str, job_id: int) -> dict:
    """The job judging ``generation`` for problem ``doc``; ``test`` (the test code) keys the verdict cache."""
    return {**job_spec(task, index, program(task, doc, generation), job_id), "test": reference(task, doc)}
