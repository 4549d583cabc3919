"""Fake run directories and generations folders (our own file formats, written small)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mft_hpc.tasks.names import PROBLEM_COUNTS, TASK_NAMES


def write_generations(folder: Path, model: str, limit: int | None = None) -> Path:
    """A generations_{model}/ folder as the generate stage writes it (with .done markers beside files)."""
    folder.mkdir(parents=True, exist_ok=True)
    for task in TASK_NAMES:
        count = PROBLEM_COUNTS[task] if limit is None else min(limit, PROBLEM_COUNTS[task])
        path = folder / f"generations_{task}_{model}.json"
        path.write_text(json.dumps([[f"# {task} problem {i}\n"] for i in range(count)]))
        (folder / f"{path.name}.done").write_text("{}")
    return folder


def write_run(root: Path, members: tuple[str, ...] = ("main",), limit: int | None = None,
              generate_overrides: dict | None = None) -> Path:
    """runs/<name>/ with a resolved config.yaml and each member's generations."""
    run = root / "runs" / "demo"
    generate = {"tasks": list(TASK_NAMES), "limit": limit, "do_sample": False, "num_beams": 1,
                "num_return_sequences": 1, **(generate_overrides or {})}
    config = {"run": {"name": "demo", "root": str(root / "runs")}, "generate": generate}
    if len(members) > 1:
        config["sweep"] = {"train.learning_rate": [float(m.removeprefix("lr")) for m in members]}
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for member in members:
        write_generations(run / "members" / member / "generate" / f"generations_demo-{member}", f"demo-{member}", limit)
    return run
