"""JavaScript: `node test.js`; the grader's rule is a pass only with empty stdout and stderr."""

from __future__ import annotations

import os

from .runner import Runner
from .steps import base_env, classify, first_lines, run_step


def run_js(job, workdir, tool):
    with open(os.path.join(workdir, "test.js"), "w", encoding="utf-8") as handle:
        handle.write(job["source"])
    step = run_step(["node", "test.js"], workdir, job["timeout"], base_env(workdir), address_space=False,
                    nproc=tool.nproc)
    if step.timed_out:
        return "timeout", "timed out"
    # the grader's rule: pass iff stdout and stderr are both empty, whatever the exit code
    if step.stderr_text or step.stdout_size:
        bad = classify(step)
        if bad and bad[0] in ("oom", "timeout"):
            return bad
        return "fail", first_lines(step.stderr_text or step.stdout_text) or "output on stdout/stderr"
    return "pass", ""


class JsRunner(Runner):
    def run(self, job, workdir):
        return run_js(job, workdir, self.tool)
