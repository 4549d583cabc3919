"""Stage selection from the command line (``run --only/--skip``): a stage left out is disabled.

A selection becomes ``<stage>.enabled: false`` overrides applied when the config is loaded, so the
run directory's config records it and ``resume``/``retry`` follow it. It narrows the config's own
``*.enabled`` keys and never turns a disabled stage on.
"""

from __future__ import annotations

import difflib

from mft_hpc.config.schema import Config
from mft_hpc.config.stages import STAGES
from mft_hpc.errors import UserError


def parse_stages(option: str, text: str) -> list[str]:
    """'generate,evaluate' -> ['generate', 'evaluate'], or UserError naming the unknown stage."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError(f"{option}: give one or more stages: {', '.join(STAGES)}")
    for name in names:
        if name not in STAGES:
            close = difflib.get_close_matches(name, STAGES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"{option}: unknown stage '{name}'{hint}; stages: {', '.join(STAGES)}")
    return names


def selected_stages(only: str | None, skip: str | None) -> list[str]:
    """The stages a run may run, in pipeline order."""
    if only is not None and skip is not None:
        raise UserError("--only and --skip exclude each other: give one")
    if only is not None:
        chosen = set(parse_stages("--only", only))
        return [stage for stage in STAGES if stage in chosen]
    skipped = set(parse_stages("--skip", skip)) if skip is not None else set()
    return [stage for stage in STAGES if stage not in skipped]


def disabled_overrides(selected: list[str]) -> dict[str, bool]:
    """``load_config`` overrides that switch off every stage not selected."""
    return {f"{stage}.enabled": False for stage in STAGES if stage not in selected}


def check_selection(config: Config, only: list[str] | None, selected: list[str], source) -> None:
    """Against the config as written: a stage named by ``--only`` must be enabled there, and
    evaluate/collect cannot run without this run's generations."""
    for stage in only or []:
        if not getattr(config, stage).enabled:
            raise UserError(f"{source}: {stage}.enabled is false: --only cannot select the {stage} stage "
                            "(set it to true in the config)")
    running = [stage for stage in selected if getattr(config, stage).enabled]
    if not running:
        raise UserError(f"{source}: no enabled stage is selected: nothing to run")
    needing = [stage for stage in ("evaluate", "collect") if stage in running]
    if config.generate.enabled and "generate" not in running and needing:
        raise UserError(f"{' and '.join(needing)} read this run's generations: select generate too "
                        "(to score an existing model, point model.path at it and use --skip train)")
