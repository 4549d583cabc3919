"""The run directory: the one contract between stages, and the one place its paths are spelled.

    runs/<name>/
        config.yaml            resolved config (sweep expanded into members)
        run.json               members, sweep or not, executor (what was submitted)
        state.sqlite           controller state
        logs/                  submitit/Slurm logs, one folder per job
        cache/data/            tokenized training data, shared by the members
        members/<member>/      one per sweep member ("main" without a sweep): ``MemberDir``
            config.yaml train/ generate/ evaluate/
        collect/               leaderboard, submission, report.html + report.json
        verdict-cache/         evaluation verdicts shared by every member (unless evaluate.cache_dir)

Stages only read and write files below it; the controller and dashboard only read it. Every path is
a property or method here (as submitit's ``JobPaths``); the harness's file names are the functions
below, because stages also write them into folders outside a run (``mft-hpc evaluate --out``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STAGES = ("train", "generate", "evaluate")


def generations_folder_name(model: str) -> str:
    return f"generations_{model}"


def generations_file_name(task: str, model: str) -> str:
    return f"generations_{task}_{model}.json"


def metrics_folder_name(model: str) -> str:
    return f"metrics_{model}"


def metrics_file_name(task: str, model: str) -> str:
    return f"metrics_{task}_{model}.json"


def results_file_name(task: str, model: str) -> str:
    return f"results_{task}_{model}.jsonl"


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run directory (made by `mft-hpc run`, or a copy of one): it has members,
    a state store or a resolved config."""
    path = Path(path)
    return path.is_dir() and ((path / "members").is_dir() or (path / "state.sqlite").is_file()
                              or (path / "config.yaml").is_file())


@dataclass(frozen=True)
class MemberDir:
    """``members/<name>/``: every file of one sweep member."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        """The member's resolved config (sweep applied, paths absolute)."""
        return self.root / "config.yaml"

    def stage(self, stage: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        return self.root / stage

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def train_metrics(self) -> Path:
        return self.train / "metrics.jsonl"

    @property
    def train_result(self) -> Path:
        """Written after the merge: best step, last step, early stop (``mft_hpc.train.member``)."""
        return self.train / "result.json"

    @property
    def adapter(self) -> Path:
        """The final adapter; its ``.done`` marker holds the same facts as ``train_result``."""
        return self.train / "adapter"

    @property
    def merged_model(self) -> Path:
        return self.train / "merged"

    @property
    def data_cache(self) -> Path:
        """Members of one run share the tokenized data (keyed by tokenizer + data hash); a member folder
        outside a run keeps its own."""
        if self.root.parent.name == "members":
            return self.root.parent.parent / "cache" / "data"
        return self.train / "data_cache"

    @property
    def generate(self) -> Path:
        return self.root / "generate"

    def generations_dir(self, model: str) -> Path:
        return self.generate / generations_folder_name(model)

    def generations_file(self, task: str, model: str) -> Path:
        return self.generations_dir(model) / generations_file_name(task, model)

    @property
    def evaluate(self) -> Path:
        return self.root / "evaluate"

    def metrics_dir(self, model: str) -> Path:
        return self.evaluate / metrics_folder_name(model)

    def metrics_file(self, task: str, model: str) -> Path:
        return self.metrics_dir(model) / metrics_file_name(task, model)


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
    def run_file(self) -> Path:
        return self.root / "run.json"

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
        """Evaluation verdicts shared by every member (unless ``evaluate.cache_dir``)."""
        return self.root / "verdict-cache"

    @property
    def members_dir(self) -> Path:
        return self.root / "members"

    def member(self, name: str) -> MemberDir:
        return MemberDir(self.members_dir / name)

    def member_names(self) -> list[str]:
        """The members with a folder, sorted (run.json holds the submitted order)."""
        if not self.members_dir.is_dir():
            return []
        return sorted(path.name for path in self.members_dir.iterdir() if path.is_dir())
