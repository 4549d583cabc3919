"""The interface every language implements, and the compile-then-run shape most of them share."""

from __future__ import annotations

import os

from .steps import classify, run_step


class Runner:
    """One language's way of judging programs in a batch.

    Made once per batch for a language the batch holds (``Runner(batch)``: per-batch setup such as a
    warm cache or a compile server goes in ``__init__``, its teardown in ``close``). ``run`` judges one
    program in its own empty ``workdir`` and returns (verdict, reason). A runner whose ``group_size`` is
    above 1 can also build several programs at once: ``run_group`` (which hands each program back to
    ``batch.run_one``) and ``run_built`` for a program whose group build left its binary in ``workdir``.
    """

    group_size = 1
    group_cores = 1   # the cores one group build keeps busy
    group_min = 2     # the fewest programs worth a group build

    def __init__(self, batch):
        self.batch = batch
        self.tool = batch.tool

    def run(self, job: dict, workdir: str) -> tuple[str, str]:
        raise NotImplementedError

    def fits_group(self, job: dict) -> bool:
        """Whether ``job`` may be built together with others (only asked when ``group_size`` > 1)."""
        return True

    def run_group(self, jobs: list[dict]) -> None:
        raise NotImplementedError

    def run_built(self, job: dict, workdir: str) -> tuple[str, str]:
        raise NotImplementedError

    def close(self) -> None:
        """End what ``__init__`` started."""


def run_compiled(job, workdir, tool, filename, compile_argv, run_argv, env, *, jvm=False, compile_env=None):
    with open(os.path.join(workdir, filename), "w", encoding="utf-8") as handle:
        handle.write(job["source"])
    with tool.compile_slots:
        step = run_step(compile_argv, workdir, job["compile_timeout"], compile_env or env, address_space=not jvm,
                        nproc=tool.nproc)
    bad = classify(step, compile_step=True)
    if bad:
        return bad
    step = run_step(run_argv, workdir, job["timeout"], env, address_space=not jvm, nproc=tool.nproc)
    return classify(step) or ("pass", "")
