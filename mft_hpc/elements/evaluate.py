"""One evaluation element: several tasks of a member in one sandbox batch (one container start)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mft_hpc.config.sections.evaluate import EvaluateSection
from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.elements.generate import merge_finished_shards
from mft_hpc.elements.logs import job_logging


@dataclass(frozen=True)
class EvaluateElement:
    """Score ``tasks`` of the generations in ``generations_dir`` into ``out_dir``; pass@1 per task.

    ``limit``: a partial run's problems per task. With ``generate`` (the member's generate section), a
    sharded task whose shards are all done but whose merge never happened is merged here first.
    """

    generations_dir: str
    model_name: str
    tasks: tuple[str, ...]
    benchmarks_dir: str
    out_dir: str
    config: EvaluateSection
    limit: int | None = None
    generate: GenerateSection | None = None

    def __call__(self) -> dict[str, float]:
        job_logging()
        from mft_hpc.evaluate import evaluate_tasks

        if self.generate is not None:
            merge_finished_shards(Path(self.generations_dir).parent, list(self.tasks), self.generate, self.model_name)
        return evaluate_tasks(self.generations_dir, self.model_name, list(self.tasks), self.benchmarks_dir,
                              self.out_dir, self.config, limit=self.limit)
