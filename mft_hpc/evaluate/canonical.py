"""Canonical (or buggy) solutions wrapped as harness generations, as the grader's own check did:
the reference completion goes through the harness post-processing."""

from __future__ import annotations

from mft_hpc.tasks.postprocess import harness_output


def canonical_completion(task: str, doc: dict, buggy: bool = False) -> str:
    if task == "mbpp":
        return "\n```python\n" + doc["code"] + "\n```"
    return doc["buggy_solution"] if buggy else doc["canonical_solution"]


def canonical_generation(task: str, doc: dict, buggy: bool = False) -> str:
    return harness_output(task, doc, canonical_completion(task, doc, buggy))
