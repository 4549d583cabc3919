"""Compute-node entry of one generation array element (pickled and run by submitit)."""

from __future__ import annotations

import logging


def generate_element(model_dir: str, task: str, out_dir: str, gen_cfg, shard: int | None = None,
                     model_name: str | None = None, trust_remote_code: bool = False) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mft_hpc.generate import run_task

    return run_task(model_dir, task, out_dir, gen_cfg, shard=shard, model_name=model_name,
                    trust_remote_code=trust_remote_code)
