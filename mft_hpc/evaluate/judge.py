"""Judge a list of jobs through the verdict cache: reuse what was judged, run the rest once.

Identical jobs (the same cache key) in one call are run once. Every record handed to
``on_result`` carries ``cached`` (the verdict was not judged by this call's sandbox: a cache hit
or a duplicate of a job judged here) and ``flaky`` (the marker of a flaky problem, else None).
"""

from __future__ import annotations

from typing import Callable

from mft_hpc.evaluate.batch import run_jobs
from mft_hpc.evaluate.cache import VerdictCache, cacheable, environment_of, key_digest, verdict_key
from mft_hpc.evaluate.known_broken import FLAKY
from mft_hpc.evaluate.runtime import Runtime


def judge(runtime: Runtime, jobs: list[dict], workers: int, on_result: Callable[[dict], None],
          cache: VerdictCache | None = None, reuse: bool = True) -> dict:
    """Every job gets exactly one record; returns counts: judged, reused (cache hits), duplicates.

    ``reuse=False`` judges every job again but still records the verdicts (and so detects flaky
    problems by disagreement with what the cache held).
    """
    by_id = {job["id"]: job for job in jobs}
    if cache is None:
        def plain(record: dict) -> None:
            job = by_id[record["id"]]
            on_result({**record, "cached": False, "flaky": FLAKY.get((job.get("task"), job.get("index")))})

        run_jobs(runtime, jobs, workers, plain)
        return {"judged": len(jobs), "reused": 0, "duplicates": 0}
    environment = environment_of(runtime)
    keys = {job["id"]: verdict_key(job, environment) for job in jobs}
    followers: dict[str, list[dict]] = {}      # digest -> jobs with that key, the first one is judged
    reused = 0
    for job in jobs:
        entry = cache.get(keys[job["id"]]) if reuse else None
        if entry is not None:
            reused += 1
            on_result({"id": job["id"], "verdict": entry.verdict, "reason": entry.reason, "seconds": entry.seconds,
                       "cached": True, "flaky": entry.flaky})
        else:
            followers.setdefault(key_digest(keys[job["id"]]), []).append(job)

    def judged(record: dict) -> None:
        key = keys[record["id"]]
        flaky = cache.put(key, record) if cacheable(record) else FLAKY.get((key["task"], key["problem"]))
        for i, job in enumerate(followers[key_digest(key)]):
            on_result({**record, "id": job["id"], "cached": i > 0, "flaky": flaky})

    firsts = [group[0] for group in followers.values()]
    if firsts:
        run_jobs(runtime, firsts, workers, judged)
    return {"judged": len(firsts), "reused": reused, "duplicates": sum(len(g) - 1 for g in followers.values())}

