"""The config reference as Markdown, generated from the schema (docs/config-reference.md embeds it; a test
keeps them equal)."""

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
    if isinstance(value, BaseModel):
        return "see below"
    return "`" + json.dumps(value) + "`"


def _type(field: Any) -> str:
    if _model_of(field) is not None:
        return "mapping"
    text = str(field.annotation).replace("typing.", "")
    for noise in ("<class '", "'>"):
        text = text.replace(noise, "")
    return text.replace("|", "\\|")


def _model_of(field: Any) -> type[BaseModel] | None:
    model = field.annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, sub in model.model_fields.items():
        lines.append(f"| `{key}` | {_type(sub)} | {_default(sub)} | {sub.description or ''} |")
    return lines + [""]


def _nested(section: str, model: type[BaseModel]) -> list[str]:
    """Sub-sections (``cluster.stages``): the first field stands for all (they share one model)."""
    lines = []
    for key, sub in model.model_fields.items():
        nested = _model_of(sub)
        if nested is None:
            continue
        names = [k for k, f in nested.model_fields.items() if _model_of(f)]
        inner = _model_of(nested.model_fields[names[0]]) if names else None
        title = f"{section}.{key}.{{{','.join(names)}}}" if inner else f"{section}.{key}"
        doc = ((inner or nested).__doc__ or "").strip()
        lines += [f"#### `{title}`", "", " ".join(doc.split()), ""] + _table(inner or nested)
    return lines


def render_reference() -> str:
    lines = []
    for section, field in Config.model_fields.items():
        model = _model_of(field)
        if model is None:
            lines += [f"### `{section}`", "", "Dotted key → list of values; the cartesian product becomes "
                      "one member per combination (a training job array).", ""]
            continue
        doc = (model.__doc__ or "").strip().splitlines()
        lines += [f"### `{section}`", ""]
        if doc and not doc[0].startswith("A base"):
            lines += [doc[0], ""]
        lines += _table(model) + _nested(section, model)
    return "\n".join(lines)
