"""What a run consists of: per sweep member, where each stage reads and writes, and when it is done.

The plan is derived from the config alone, so `status`, `retry` and `resume` can rebuild it from
the run directory (``config.yaml``) without the process that submitted the run.

An element is named by an ``ElementKey`` (mft_hpc.runplan.key): its stage, member, task, and shard for
one shard of a generation task split by ``generate.shard_size``. Several generation keys may share
one array element (``generate.tasks_per_element``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mft_hpc.config.schema import Config
from mft_hpc.generate.rawfile import raw_name
from mft_hpc.generate.shards import n_shards, pack, task_size
from mft_hpc.rundir import MemberDir, RunDir, done_problem
from mft_hpc.rundir.done import DONE_SUFFIX
from mft_hpc.rundir.layout import generations_file_name, generations_folder_name, metrics_file_name, metrics_folder_name
from mft_hpc.runplan.key import ElementKey

# Keys whose values are paths: made absolute at submission, because jobs may run elsewhere.
_PATH_KEYS = (("model", "path"), ("model", "import_cache"), ("generate", "benchmarks"), ("evaluate", "image"),
              ("evaluate", "cache_dir"), ("run", "root"))


def resolve_paths(config: Config, base: Path | None = None) -> Config:
    """A copy of ``config`` with every relative path made absolute against ``base`` (default: cwd)."""
    base = (base or Path.cwd()).resolve()
    data = config.model_dump()
    for section, key in _PATH_KEYS:
        value = data[section][key]
        if value:
            data[section][key] = str((base / value).resolve())
    data["data"]["paths"] = [str((base / p).resolve()) for p in data["data"]["paths"]]
    return Config.model_validate(data)


def model_name_for(config: Config, member: str, is_sweep: bool) -> str:
    """The name in ``generations_{model}``: configured, else the run name (+ member in a sweep)."""
    from mft_hpc.generate.outputs import valid_model_name

    name = config.generate.model_name or (f"{config.run.name}-{member}" if is_sweep else config.run.name)
    return valid_model_name(name)


@dataclass(frozen=True)
class MemberPlan:
    name: str
    config: Config
    dir: Path
    model_name: str

    @property
    def paths(self) -> MemberDir:
        """Every file of the member (mft_hpc.rundir.layout)."""
        return MemberDir(self.dir)

    # Output paths of the refresh are built as strings (os.path.join over the layout's names) in one
    # place: a 1,000-member sweep has 27,000 of them per refresh, and pathlib costs ~10x more per path.
    @cached_property
    def _root(self) -> str:
        return str(self.dir)

    def output_str(self, stage: str, task: str = "", shard: int | None = None) -> str:
        join, model = os.path.join, self.model_name
        if stage == "train":
            return join(self._root, "train", "merged")
        if stage == "generate":
            if shard is None:
                return join(self._root, "generate", generations_folder_name(model), generations_file_name(task, model))
            return join(self._root, "generate", "raw", raw_name(task, shard))
        if stage == "evaluate":
            return join(self._root, "evaluate", metrics_folder_name(model), metrics_file_name(task, model))
        raise ValueError(stage)

    @property
    def merged_model(self) -> Path:
        return self.paths.merged_model

    @property
    def model_dir(self) -> Path:
        """What generation loads: the merged fine-tuned model, or the base model without training."""
        return self.merged_model if self.config.train.enabled else Path(self.config.model.path)

    @property
    def generate_dir(self) -> Path:
        return self.paths.generate

    @property
    def generations_dir(self) -> Path:
        return self.paths.generations_dir(self.model_name)

    @property
    def evaluate_dir(self) -> Path:
        return self.paths.evaluate

    @property
    def tasks(self) -> list[str]:
        return list(self.config.generate.tasks) if self.config.generate.enabled else []

    @property
    def eval_tasks(self) -> list[str]:
        return self.tasks if self.config.evaluate.enabled else []

    @cached_property
    def _shard_counts(self) -> dict[str, int]:
        gen = self.config.generate
        return {task: n_shards(task_size(task, gen.limit), gen.shard_size) for task in self.tasks}

    def shard_count(self, task: str) -> int:
        """Generation elements of ``task``: 1 (one element, the whole task) or its number of shards."""
        if task in self._shard_counts:
            return self._shard_counts[task]
        gen = self.config.generate
        return n_shards(task_size(task, gen.limit), gen.shard_size)

    # Keys are made once per member and shared: a 1,000-member sweep has 27,000 of them, looked up in
    # sets many times per submission (the same object matches without a field comparison). One tuple
    # and one dict per member hold them: each long-lived object adds to the garbage collector's work.
    @cached_property
    def train_key(self) -> ElementKey:
        return ElementKey("train", self.name)

    @cached_property
    def _generate_keys(self) -> tuple[ElementKey, ...]:
        return tuple(key for task in self.tasks for key in self._task_generate_keys(task))

    def _task_generate_keys(self, task: str) -> list[ElementKey]:
        count = self.shard_count(task)
        if count == 1:
            return [ElementKey("generate", self.name, task)]
        return [ElementKey("generate", self.name, task, shard) for shard in range(count)]

    def generate_keys(self, task: str | None = None) -> list[ElementKey]:
        """The generation elements of one task (or of all tasks, in task order)."""
        if task is None:
            return list(self._generate_keys)
        if task in self._shard_counts:
            return [key for key in self._generate_keys if key.task == task]
        return self._task_generate_keys(task)

    @cached_property
    def _evaluate_keys(self) -> dict[str, ElementKey]:
        return {task: ElementKey("evaluate", self.name, task) for task in self.tasks}

    def evaluate_key(self, task: str) -> ElementKey:
        return self._evaluate_keys.get(task) or ElementKey("evaluate", self.name, task)

    def generate_groups(self, keys: list[ElementKey]) -> list[list[ElementKey]]:
        """Generation keys packed into array elements, ``generate.tasks_per_element`` per element (one
        model load each); every key keeps its own state, progress and resume point."""
        return pack(keys, self.config.generate.tasks_per_element)

    def generation_file(self, task: str) -> Path:
        return Path(self.output_str("generate", task))

    def metrics_file(self, task: str) -> Path:
        return Path(self.output_str("evaluate", task))

    def output_of(self, stage: str, task: str = "", shard: int | None = None) -> Path:
        return Path(self.output_str(stage, task, shard))

    def done_problem(self, stage: str, task: str = "", shard: int | None = None, deep: bool = False) -> str | None:
        """Why the element is not finished (None when it is): its `.done` marker must still match its
        output, and an evaluation's the generations it scored (``deep``: every certified file
        re-hashed). A shard is done when its raw file is, or when the whole task is (its generations file)."""
        if stage == "train" and not self.config.train.enabled:
            return None
        if shard is not None and done_problem(self.generation_file(task), deep=deep) is None:
            return None
        inputs = {"generations": self.generation_file(task)} if stage == "evaluate" else None
        return done_problem(self.output_of(stage, task, shard), inputs, deep=deep)

    def is_done(self, stage: str, task: str = "", shard: int | None = None) -> bool:
        return self.done_problem(stage, task, shard) is None


@dataclass(frozen=True)
class RunPlan:
    run: RunDir
    members: list[MemberPlan]
    verify: bool = False  # re-hash every certified output instead of trusting size + mtime

    @property
    def name(self) -> str:
        return self.members[0].config.run.name

    @property
    def leaderboard(self) -> Path:
        return self.run.collect / "leaderboard.json"

    @cached_property
    def _by_name(self) -> dict[str, MemberPlan]:
        return {member.name: member for member in self.members}

    def member(self, name: str) -> MemberPlan:
        return self._by_name[name]

    def output_of(self, key: ElementKey) -> Path:
        return self.leaderboard if key.stage == "collect" else self.member(key.member).output_of(key.stage, key.task,
                                                                                                 key.shard)

    def done_problem(self, key: ElementKey) -> str | None:
        if key.stage == "collect":
            return done_problem(self.leaderboard, deep=self.verify)
        return self.member(key.member).done_problem(key.stage, key.task, key.shard, deep=self.verify)

    def is_done(self, key: ElementKey) -> bool:
        return self.done_problem(key) is None

    @cached_property
    def _markers(self) -> dict[ElementKey, tuple[str, ...]]:
        return {}

    def _markers_of(self, key: ElementKey) -> tuple[str, ...]:
        """The `.done` markers any of which makes ``key`` done (a shard: its raw file or the whole task)."""
        markers = self._markers.get(key)
        if markers is None:
            if key.stage == "collect":
                paths = [str(self.leaderboard)]
            else:
                plan = self.member(key.member)
                paths = [plan.output_str(key.stage, key.task, key.shard)]
                if key.shard is not None:
                    paths.append(plan.output_str("generate", key.task))
            markers = self._markers[key] = tuple(path + DONE_SUFFIX for path in paths)
        return markers

    def marked_keys(self, keys) -> set[ElementKey]:
        """Which of ``keys`` have a `.done` marker at all (whether it still certifies its output is
        ``done_problem``'s to say), listing each output folder once instead of a stat per key."""
        listings: dict[str, set[str]] = {}
        done = set()
        for key in keys:
            if key.stage == "train" and not self.member(key.member).config.train.enabled:
                done.add(key)
                continue
            for marker in self._markers_of(key):
                folder, name = os.path.split(marker)
                if folder not in listings:
                    try:
                        listings[folder] = set(os.listdir(folder))
                    except OSError:
                        listings[folder] = set()
                if name in listings[folder]:
                    done.add(key)
                    break
        return done

    def done_keys(self, keys) -> set[ElementKey]:
        """Which of ``keys`` are done: their marker exists and certifies their output."""
        return {key for key in self.marked_keys(keys) if self.done_problem(key) is None}

    def key_of(self, element) -> ElementKey:
        """The key of a state-store element (its ``element`` column is the shard of a sharded task)."""
        if element.stage == "generate" and self.member(element.member).shard_count(element.task) > 1:
            return ElementKey("generate", element.member, element.task, element.element)
        return ElementKey(element.stage, element.member, element.task)


def build_plan(run: RunDir, members: list[tuple[str, Config]], is_sweep: bool) -> RunPlan:
    return RunPlan(run, [MemberPlan(name, config, run.member(name).root, model_name_for(config, name, is_sweep))
                         for name, config in members])
