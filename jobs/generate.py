"""Compute-node entry of one generation array element (pickled and run by submitit)."""

from __future__ import annotations

import logging


def generate_element(model_dir: str, units: list, out_dir: str, gen_cfg, model_name: str | None = None,
                     trust_remote_code: bool = False) -> list[dict]:
    """Every (task, shard) of ``units`` (a bare task name: the whole task) with one model/engine load."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mft_hpc.generate import run_tasks

    pairs = [(item, None) if isinstance(item, str) else (item[0], item[1]) for item in units]
    return run_tasks(model_dir, pairs, out_dir, gen_cfg, model_name=model_name, trust_remote_code=trust_remote_code)
