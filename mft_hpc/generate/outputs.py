"""The harness's generation files: generations_{model}/generations_{task}_{model}.json."""

from __future__ import annotations

import json
from pathlib import Path

from mft_hpc.config.sections.generate import check_model_name
from mft_hpc.errors import UserError
from mft_hpc.rundir import atomic_write_text, mark_done
from mft_hpc.rundir.layout import generations_file_name, generations_folder_name
from mft_hpc.tasks.names import IM_END
from mft_hpc.tasks.postprocess import harness_output


def valid_model_name(name: str | None) -> str:
    try:
        return check_model_name(name or "")
    except ValueError as err:
        raise UserError(f"model name: {err}") from None


def generations_path(out_dir: str | Path, task: str, model: str) -> Path:
    model = valid_model_name(model)
    return Path(out_dir) / generations_folder_name(model) / generations_file_name(task, model)


def serialize(generations: list[str]) -> str:
    """As the harness's json.dump: a list of one-string lists, default separators, ASCII."""
    return json.dumps([[text] for text in generations])


def harness_strings(task: str, docs: list[dict], records: dict[int, dict], source: str, style: str = "competition",
                    system_prompt: str | None = None, eos: str = IM_END,
                    assistant_newline: bool = False) -> list[str]:
    """Post-processed strings in dataset order for problems 0..len(docs)-1; all must be present."""
    missing = [i for i in range(len(docs)) if i not in records]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise UserError(f"{source}: {task}: {len(missing)} problem(s) missing from the raw completions: {shown}")
    return [harness_output(task, doc, records[i]["completion"], style, system_prompt, eos, assistant_newline)
            for i, doc in enumerate(docs)]


def write_generations(path: Path, generations: list[str], info: dict | None = None) -> None:
    """Atomic write, then the .done marker: a partial file never looks finished."""
    atomic_write_text(path, serialize(generations))
    mark_done(path, info or {"problems": len(generations)})
