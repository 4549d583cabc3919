"""Turn a RunView into rich tables: coloured for a terminal, plain ASCII when there is none.

The same table builders serve both; ``plain`` swaps the glyphs for ASCII letters, drops colour and
uses an ASCII box, so logs and CI output stay readable and stable.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mft_hpc.dashboard.snapshot import TASK_STAGES, UNKNOWN, MemberView, RunView
from mft_hpc.report import format as fmt
from mft_hpc.report.summary import cost_summary_line
from mft_hpc.rundir.state import CANCELLED, COMPLETED, FAILED, PENDING, PLANNED, RUNNING, SKIPPED, TIMEOUT
from mft_hpc.submission.competition import BASELINE_DESCRIPTION, BASELINE_MEAN, BASELINE_NAME, BASELINE_PASS1
from mft_hpc.tasks.names import TASK_NAMES

# state -> (rich glyph, style, plain glyph)
GLYPHS = {
    COMPLETED: ("●", "green", "+"),
    SKIPPED: ("●", "green dim", "+"),
    RUNNING: ("◐", "yellow", "R"),
    PENDING: ("○", "cyan", "q"),
    PLANNED: ("·", "dim", "."),
    UNKNOWN: ("·", "dim", "."),
    FAILED: ("✗", "bold red", "X"),
    TIMEOUT: ("◷", "bold red", "T"),
    CANCELLED: ("⊘", "red", "C"),
}
_LEGEND_ORDER = (COMPLETED, RUNNING, PENDING, PLANNED, FAILED, TIMEOUT, CANCELLED)
PLAIN_WIDTH = 200


def _glyph(state: str, plain: bool) -> Text:
    rich_glyph, style, plain_glyph = GLYPHS.get(state, GLYPHS[UNKNOWN])
    return Text(plain_glyph) if plain else Text(rich_glyph, style=style)


def strip(states: dict[str, str], plain: bool) -> Text:
    """One cell per competition task, in task order."""
    return Text("").join(_glyph(states.get(task, UNKNOWN), plain) for task in TASK_NAMES)


def legend(plain: bool) -> Text:
    parts = [_glyph(state, plain) + Text(f" {state}") for state in _LEGEND_ORDER]
    task_order = ", ".join(t.replace("humanevalsynthesize-", "synth-").replace("humanevalfixtests-", "fix-")
                           for t in TASK_NAMES)
    return Text("  ").join(parts) + Text(f"\nstrip order: {task_order}")


def _table(title: str, plain: bool) -> Table:
    return Table(title=title, title_justify="left", box=box.ASCII if plain else box.SIMPLE_HEAVY,
                 show_edge=plain, pad_edge=plain)


def stages_table(view: RunView, plain: bool) -> Table:
    table = _table(f"Stages (collect: {view.collect_state})", plain)
    for column in ("member", "train", *TASK_STAGES):
        table.add_column(column, no_wrap=True)
    for member in view.members:
        train = _glyph(member.train_state, plain) + Text(f" {member.train_state}")
        if member.train is not None:
            total = f"/{member.train.total_steps}" if member.train.total_steps else ""
            train += Text(f" step {member.train.step}{total}")
        table.add_row(member.name, train, *(strip(member.task_states[stage], plain) for stage in TASK_STAGES))
    return table


def training_table(view: RunView, plain: bool) -> Table | None:
    members = [m for m in view.members if m.train is not None]
    if not members:
        return None
    table = _table("Training", plain)
    for column in ("member", "step", "loss", "trend", "tokens/s", "lr", "ETA"):
        table.add_column(column, no_wrap=True, justify="left" if column in ("member", "trend") else "right")
    for member in members:
        train = member.train
        step = f"{train.step}/{train.total_steps}" if train.total_steps else str(train.step)
        table.add_row(member.name, step, "—" if train.loss is None else f"{train.loss:.4f}",
                      Text(fmt.sparkline(train.losses), style="" if plain else "magenta"),
                      fmt.rate(train.tokens_per_s), "—" if train.lr is None else f"{train.lr:.2e}",
                      "done" if train.total_steps and train.step >= train.total_steps else fmt.duration(train.eta_s))
    return table


def generation_table(view: RunView, plain: bool) -> Table | None:
    if not any(m.generation_progress for m in view.members):
        return None
    table = _table("Generation progress", plain)
    table.add_column("task", no_wrap=True)
    for member in view.members:
        table.add_column(member.name, justify="right", no_wrap=True)
    for task in TASK_NAMES:
        cells = []
        for member in view.members:
            done_total = member.generation_progress.get(task)
            if done_total is None:
                cells.append(Text("—", style="" if plain else "dim"))
                continue
            done, total = done_total
            style = "" if plain else ("green" if done >= total else "yellow")
            cells.append(Text(f"{done}/{total} {100 * done // max(total, 1):3d}%", style=style))
        table.add_row(task, *cells)
    return table


def _delta_text(value: float | None, plain: bool) -> Text:
    if value is None or plain:
        return Text(fmt.delta(value))
    return Text(fmt.delta(value), style="green" if value > 0 else "red" if value < 0 else "")


def _best_member(members: list[MemberView]) -> str | None:
    complete = [m for m in members if m.scores.mean is not None]
    return max(complete, key=lambda m: m.scores.mean).name if complete else None


def scores_table(view: RunView, plain: bool) -> Table | None:
    if not any(m.scores.scores for m in view.members):
        return None
    best = _best_member(view.members)
    table = _table(f"pass@1 (vs {BASELINE_DESCRIPTION}, mean {BASELINE_MEAN:.4f})", plain)
    table.add_column("task", no_wrap=True)
    table.add_column(BASELINE_NAME, justify="right")
    for member in view.members:
        table.add_column(member.name + (" *best*" if plain and member.name == best else " ★" if member.name == best
                                        else ""), justify="right", no_wrap=True)
        table.add_column("Δ", justify="right", no_wrap=True)
    for task in TASK_NAMES:
        row: list = [task, fmt.score(BASELINE_PASS1[task])]
        for member in view.members:
            value = member.scores.scores.get(task)
            row += [Text(fmt.score(value), style="" if plain or value is not None else "dim"),
                    _delta_text(None if value is None else value - BASELINE_PASS1[task], plain)]
        table.add_row(*row)
    mean_row: list = [Text("mean (13 tasks)", style="" if plain else "bold"), fmt.score(BASELINE_MEAN)]
    for member in view.members:
        mean = member.scores.mean
        label = fmt.score(mean) if mean is not None else f"missing {len(member.scores.missing)}"
        mean_row += [Text(label, style="" if plain else "bold"),
                     _delta_text(None if mean is None else mean - BASELINE_MEAN, plain)]
    table.add_section()
    table.add_row(*mean_row)
    return table


def failures_table(view: RunView, plain: bool) -> Table | None:
    if not view.failures:
        return None
    table = _table("Failed elements", plain)
    for column in ("element", "state", "slurm job", "attempts", "last error"):
        table.add_column(column, no_wrap=column != "last error")
    for element in view.failures:
        table.add_row(element.label, _glyph(element.state, plain) + Text(f" {element.state}"),
                      element.slurm_job_id or "—", str(element.attempts),
                      Text(element.last_error or "(no error line recorded)", style="" if plain else "red"))
    return table


_STAGE_ORDER = ("train", "generate", "evaluate", "collect")


def counts_table(view: RunView, plain: bool) -> Table:
    """Elements per stage and state: the large-sweep view (one row per stage, not per member)."""
    agg = view.aggregate
    table = _table(f"Stages of {agg.members} members (collect: {view.collect_state})", plain)
    states = [s for s in _LEGEND_ORDER + (SKIPPED,) if any(agg.counts.get((st, s)) for st in _STAGE_ORDER)]
    table.add_column("stage", no_wrap=True)
    for state in states:
        table.add_column(_glyph(state, plain) + Text(f" {state}"), justify="right", no_wrap=True)
    table.add_column("total", justify="right")
    for stage in _STAGE_ORDER:
        row = [agg.counts.get((stage, state), 0) for state in states]
        if sum(row):
            table.add_row(stage, *(str(n) if n else "·" for n in row), str(sum(row)))
    return table


def top_table(view: RunView, plain: bool) -> Table | None:
    agg = view.aggregate
    if not agg.top:
        return None
    table = _table(f"Top {len(agg.top)} members by mean pass@1 (baseline {fmt.score(BASELINE_MEAN)})", plain)
    for column in ("#", "member", "mean pass@1", "Δ", "tasks"):
        table.add_column(column, justify="left" if column == "member" else "right", no_wrap=True)
    for rank, (member, mean, tasks) in enumerate(agg.top, 1):
        table.add_row(str(rank), member, fmt.score(mean), _delta_text(mean - BASELINE_MEAN, plain), str(tasks))
    return table


def failed_members_table(view: RunView, plain: bool) -> Table | None:
    agg = view.aggregate
    if not agg.failed_members and not agg.collect_error:
        return None
    more = agg.failed_member_count - len(agg.failed_members)
    title = f"Members with failures ({agg.failed_member_count}" + (f", first {len(agg.failed_members)} shown)" if more
                                                                  else ")")
    table = _table(title, plain)
    for column in ("member", "failed", "first error"):
        table.add_column(column, no_wrap=column != "first error")
    for member, count, error in agg.failed_members:
        table.add_row(member, str(count), Text(error or "(no error line recorded)", style="" if plain else "red"))
    if agg.collect_error:
        table.add_row("(collect)", "1", Text(agg.collect_error, style="" if plain else "red"))
    return table


def render(view: RunView, plain: bool = False) -> RenderableType:
    header = Text(f"run {view.name}  ({view.root})", style="" if plain else "bold")
    if view.state_problem:
        header += Text("\nstate.sqlite unreadable: states inferred from output files")
    elif not view.has_state_store:
        header += Text("\nno state.sqlite yet: states inferred from output files")
    report_line = cost_summary_line(view.root)
    if report_line:
        header += Text(f"\n{report_line}")
    if view.waves:
        header += Text(f"\n{view.waves}")
    parts: list[RenderableType] = [header]
    if view.aggregate is not None:
        tables = (counts_table(view, plain), top_table(view, plain), failed_members_table(view, plain))
    else:
        if not view.members:
            parts.append(Text("no members yet"))
        tables = (stages_table(view, plain), training_table(view, plain), generation_table(view, plain),
                  scores_table(view, plain), failures_table(view, plain))
    for table in tables:
        if table is not None:
            parts.append(table)
    parts.append(legend(plain))
    return Group(*parts)


def render_plain(view: RunView) -> str:
    """The dashboard as plain text (no colour, ASCII glyphs and borders): what a non-TTY gets."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=PLAIN_WIDTH, color_system=None, force_terminal=False,
                      no_color=True, highlight=False, emoji=False, soft_wrap=False)
    console.print(render(view, plain=True))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
