"""The log format of every element's job (its stderr is the element's log, `mft-hpc logs`)."""

from __future__ import annotations

import logging


def job_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
