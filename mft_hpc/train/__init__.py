"""The training stage: LoRA/QLoRA multi-task fine-tuning with DeepSpeed, exact resume and merge.

``train_member(config, member_dir)`` trains one member and returns its merged model directory;
``validate_train_config(config, source)`` raises ConfigError before anything is submitted.
Heavy imports (torch, transformers) happen inside the functions.
"""

from mft_hpc.train.member import train_member
from mft_hpc.train.validate import validate_train_config

__all__ = ["train_member", "validate_train_config"]
