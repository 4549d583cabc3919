"""Expand a config's ``sweep`` block into member configs (the cartesian product)."""

from __future__ import annotations

import copy
import itertools
from typing import Any


def member_name(assignment: dict[str, Any]) -> str:
    """A short, filesystem- and model-name-safe member name, e.g. ``lr2e-4-rank16``."""
    if not assignment:
        return "main"
    parts = []
    for key, value in assignment.items():
        short = key.rsplit(".", 1)[-1].replace("_", "")
        short = {"learningrate": "lr", "lorarank": "rank", "loraalpha": "alpha"}.get(short, short)
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{short}{text}".replace("_", "").replace("/", "").replace("+", ""))
    return "-".join(parts)


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise KeyError(dotted)
    node[keys[-1]] = value


def expand(raw: dict) -> list[tuple[str, dict]]:
    """Return ``[(member_name, raw_member_config), ...]``; one ``("main", raw)`` without a sweep.

    Each member config is the raw tree with the sweep values assigned and no ``sweep`` key.
    """
    sweep = raw.get("sweep") or {}
    base = {k: v for k, v in raw.items() if k != "sweep"}
    if not sweep:
        return [("main", copy.deepcopy(base))]
    keys = list(sweep)
    members = []
    for values in itertools.product(*(sweep[k] for k in keys)):
        assignment = dict(zip(keys, values))
        tree = copy.deepcopy(base)
        for key, value in assignment.items():
            set_dotted(tree, key, value)
        members.append((member_name(assignment), tree))
    return members
