"""How the library's log records reach a user of the CLI: warnings as ``mft-hpc: ...`` lines on stderr,
and, for verbs that narrate (``run``), every INFO record of mft_hpc as ``INFO <logger>: ...``.

The library only logs (``logging.getLogger(__name__)``); the handler is installed for one command.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

LIBRARY = "mft_hpc"


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a redirected or captured stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


@contextlib.contextmanager
def library_warnings() -> Iterator[StderrHandler]:
    handler = StderrHandler()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("mft-hpc: %(message)s"))
    library = logging.getLogger(LIBRARY)
    level = library.level
    library.addHandler(handler)
    try:
        yield handler
    finally:
        library.removeHandler(handler)
        library.setLevel(level)


def narrate() -> None:
    """INFO records of the library too, as ``LEVEL logger: message`` (the verbs that report progress)."""
    library = logging.getLogger(LIBRARY)
    library.setLevel(logging.INFO)
    for handler in library.handlers:
        if isinstance(handler, StderrHandler):
            handler.setLevel(logging.INFO)
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
