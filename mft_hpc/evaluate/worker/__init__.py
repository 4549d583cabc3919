"""Evaluation worker: runs a batch of programs inside the sandbox and streams one verdict per program.

Self-contained (standard library only): the image's python3 runs this folder, copied to
/opt/mft-hpc/worker (containers/worker.def), as ``python3 -I /opt/mft-hpc/worker``. Protocol: a JSON
manifest on stdin
    {"nonce": str, "workers": int, "jobs": [{"id": int, "lang": str, "source": str,
     "timeout": float, "compile_timeout": float}], "toolchain": {...paths...}}
and lines ``<nonce> <json>`` on stdout: {"id", "event": "start"} when a program starts and
{"id", "verdict", "reason", "seconds"} when it ends. Programs never see the worker's stdout,
and the worker is made non-dumpable, so a program cannot forge lines for the host.

Verdicts: pass, fail, compile_error, timeout, oom, error. Execution mirrors the grader:
Python/MBPP are exec()'d in a forked child under the grader's reliability guard (numpy and the
import helper's modules pre-imported), JS passes only with empty stdout and stderr, the
compiled languages pass on exit code 0. One module per language (``RUNNERS`` in runners.py),
each behind the ``Runner`` interface (runner.py); ``Batch`` (batch.py) schedules them.
"""


