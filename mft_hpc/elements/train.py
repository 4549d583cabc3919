"""One sweep member's training: an array element, possibly multi-node (every task runs it)."""

from __future__ import annotations

from dataclasses import dataclass

from submitit.helpers import Checkpointable

from mft_hpc.config.schema import Config
from mft_hpc.elements.logs import job_logging


@dataclass(frozen=True)
class TrainElement(Checkpointable):
    """Train the member in ``member_dir`` (its ``train/``); returns the merged model directory.

    On preemption or time limit the training checkpoints after the current optimizer step, then
    submitit calls ``checkpoint`` and requeues this same element, which resumes from that checkpoint.
    """

    config: Config
    member_dir: str

    def __call__(self) -> str:
        job_logging()
        from mft_hpc.train import train_member

        return str(train_member(self.config, self.member_dir))
