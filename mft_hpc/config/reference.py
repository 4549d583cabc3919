"""The config reference as Markdown, generated from the schema (README embeds it; a test keeps them equal)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mft_hpc.config.schema import Config


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, tuple):
        value = list(value)
    return "`" + json.dumps(value) + "`"


def _type(field: Any) -> str:
    text = str(field.annotation).replace("typing.", "")
    for noise in ("<class '", "'>"):
        text = text.replace(noise, "")
    return text.replace("|", "\\|")


def render_reference() -> str:
    lines = []
    for section, field in Config.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            lines += [f"### `{section}`", "", "Dotted key → list of values; the cartesian product becomes "
                      "one member per combination (a training job array).", ""]
            continue
        doc = (model.__doc__ or "").strip().splitlines()
        lines += [f"### `{section}`", ""]
        if doc and not doc[0].startswith("A base"):
            lines += [doc[0], ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for key, sub in model.model_fields.items():
            lines.append(f"| `{key}` | {_type(sub)} | {_default(sub)} | {sub.description or ''} |")
        lines.append("")
    return "\n".join(lines)
