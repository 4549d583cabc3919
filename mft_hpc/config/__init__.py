"""Typed, validated YAML config with sweeps; see ``load_config``."""

from mft_hpc.config.load import LoadedConfig, dump_config, load_config
from mft_hpc.config.schema import Config

__all__ = ["Config", "LoadedConfig", "dump_config", "load_config"]
