"""The run directory: the one contract between stages.

    runs/<name>/
        config.yaml            resolved config (sweep expanded into members)
        state.sqlite           controller state
        logs/                  submitit/Slurm logs, one folder per job
        members/<member>/      one per sweep member ("main" without a sweep)
            train/ generate/ evaluate/
        collect/               leaderboard, submission, report.html + report.json
        verdict-cache/         evaluation verdicts shared by every member (unless evaluate.cache_dir)

Stages only read and write files below it; the controller and dashboard only read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STAGES = ("train", "generate", "evaluate")


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def create(cls, root: str | Path) -> "RunDir":
        run = cls(Path(root).resolve())
        for sub in (run.logs, run.collect):
            sub.mkdir(parents=True, exist_ok=True)
        return run

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state_db(self) -> Path:
        return self.root / "state.sqlite"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def collect(self) -> Path:
        return self.root / "collect"

    @property
    def leaderboard(self) -> Path:
        return self.collect / "leaderboard.json"

    @property
    def report_html(self) -> Path:
        return self.collect / "report.html"

    @property
    def report_json(self) -> Path:
        return self.collect / "report.json"

    @property
    def verdict_cache(self) -> Path:
        return self.root / "verdict-cache"

    def member(self, member: str) -> Path:
        return self.root / "members" / member

    def stage(self, member: str, stage: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        path = self.member(member) / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def stage_dir(self, member: str, stage: str) -> Path:
        """Like ``stage`` for readers: the folder is not created."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        return self.member(member) / stage

    def train_metrics(self, member: str) -> Path:
        return self.stage_dir(member, "train") / "metrics.jsonl"

    def train_result(self, member: str) -> Path:
        """Written after the merge: best step, last step, early stop (``mft_hpc.train.member``)."""
        return self.stage_dir(member, "train") / "result.json"

    def train_adapter(self, member: str) -> Path:
        """The final adapter; its ``.done`` marker holds the same facts as ``train_result``."""
        return self.stage_dir(member, "train") / "adapter"
