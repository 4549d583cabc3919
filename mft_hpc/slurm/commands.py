"""Run Slurm client commands, counting every call (the bench and tests read the counts)."""

from __future__ import annotations

import collections
import re
import subprocess
from dataclasses import dataclass, field

# Slurm's default MaxArraySize; used when `scontrol show config` cannot be read
DEFAULT_MAX_ARRAY_SIZE = 1001
_MAX_ARRAY = re.compile(r"^MaxArraySize\s*=\s*(\d+)", re.MULTILINE)


def parse_max_array_size(config_text: str) -> int:
    match = _MAX_ARRAY.search(config_text)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


@dataclass
class SlurmCommands:
    """One instance per controller/process: it holds the call counts and the cached cluster config.

    ``calls["sbatch"]`` is incremented by the submitter (submitit runs sbatch itself).
    """

    timeout_s: float = 60.0
    calls: collections.Counter = field(default_factory=collections.Counter)
    # None: read MaxArraySize from `scontrol show config` on first use (tests may set a smaller one)
    array_size_limit: int | None = None
    _config: dict[str, str] | None = None
    _config_asked: bool = False

    def config(self) -> dict[str, str] | None:
        """``scontrol show config`` as {key: value}, asked once per instance; None when it did not answer."""
        if not self._config_asked:
            self._config_asked = True
            try:
                done = self.run("scontrol", "show", "config")
            except (OSError, subprocess.TimeoutExpired):
                return None
            if done.returncode == 0:
                self._config = {key.strip(): value.strip() for key, sep, value in
                                (line.partition("=") for line in done.stdout.splitlines()) if sep}
        return self._config

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        self.calls[argv[0]] += 1
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=self.timeout_s)

    @property
    def max_array_size(self) -> int:
        """MaxArraySize of the cluster, read once per instance (arrays are split to fit)."""
        if self.array_size_limit is None:
            config = self.config()
            value = (config or {}).get("MaxArraySize", "")
            self.array_size_limit = int(value) if value.isdigit() else DEFAULT_MAX_ARRAY_SIZE
        return self.array_size_limit

    def cancel(self, job_ids: list[str] | set[str]) -> None:
        """One `scancel` for all ids (a run and its pending dependents); unknown ids are ignored."""
        ids = sorted(set(job_ids))
        if ids:
            self.run("scancel", *ids)
