"""The root config model: one YAML file, every section typed and validated."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mft_hpc.config.sections.base import Section
from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.config.sections.collect import CollectSection
from mft_hpc.config.sections.data import DataSection
from mft_hpc.config.sections.evaluate import EvaluateSection
from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.config.sections.model import ModelSection
from mft_hpc.config.sections.run import RunSection
from mft_hpc.config.sections.submission import SubmissionSection
from mft_hpc.config.sections.train import TrainSection


class Config(Section):
    run: RunSection
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection
    train: TrainSection = Field(default_factory=TrainSection)
    generate: GenerateSection = Field(default_factory=GenerateSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    submission: SubmissionSection = Field(default_factory=SubmissionSection)
    collect: CollectSection = Field(default_factory=CollectSection)
    # dotted key -> list of values; expanded by mft_hpc.config.sweep into member configs
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
