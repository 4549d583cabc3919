"""The report as one self-contained HTML page: inline CSS and SVG, no script, no external resource.

Drawn from the report dict (``report.build``) alone. A section whose data is absent says so.
"""

from __future__ import annotations

import time
from html import escape

from mft_hpc.collect.leaderboard import short_task
from mft_hpc.evaluate.evaluate import VERDICTS
from mft_hpc.report import svg
from mft_hpc.rundir.layout import STAGES
from mft_hpc.rundir.states import COLLECT_MEMBER

STAGE_ORDER = (*STAGES, "collect")
COLLECT_LABEL = "(run: collect)"
VERDICT_COLORS = {"pass": "#2ca02c", "fail": "#d62728", "compile_error": "#ff7f0e", "timeout": "#9467bd",
                  "oom": "#8c564b", "error": "#7f7f7f"}
BAR_COLORS = {"completed": "#2ca02c", "skipped": "#98df8a", "running": "#1f77b4", "pending": "#aec7e8",
              "planned": "#dddddd", "requeued": "#ff7f0e", "failed": "#d62728", "timeout": "#9467bd",
              "cancelled": "#7f7f7f"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2125;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:22px;margin:6px 0 2px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d5d9de}
h3{font-size:15px;margin:14px 0 6px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;margin:8px 0}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eceef1;text-align:left}
th{background:#f0f2f5;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.facts td:first-child{color:#555;white-space:nowrap}
.better{color:#17803d;font-weight:600}.worse{color:#b3261e;font-weight:600}
.missing-box{background:#fff8e1;border:1px solid #f0d58c}.missing-box li{margin:2px 0}
.empty{color:#777;font-style:italic;padding:6px 0}
.charts{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}
svg.chart text{font-size:11px;fill:#333}svg.chart .title{font-weight:600;font-size:12px}
svg.chart .tick{fill:#555;font-size:10px}svg.chart .axis{fill:#555}
svg.chart .grid{stroke:#eceef1}svg.chart .mark{stroke:#444;stroke-dasharray:2 2}
svg.chart .mark-label{font-size:10px;fill:#444}svg.chart .baseline{stroke:#000;stroke-width:2}
svg.chart .queued{fill:#cfd6de}svg.chart .row-label{font-size:9px;fill:#333}
.legend{font-size:12px;margin:2px 0 6px}.key{margin-right:12px;white-space:nowrap}
.key i{display:inline-block;width:18px;height:0;margin-right:4px;vertical-align:middle}
.key b{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
table.heatmap td.cell{text-align:center;font-variant-numeric:tabular-nums;min-width:46px}
table.heatmap td.none{color:#999;background:#fafafa}table.heatmap th{font-size:11px}
.scroll{max-height:640px;overflow:auto;border:1px solid #eceef1}
details>summary{cursor:pointer;font-weight:600;margin:4px 0}
code{font-size:12px;background:#f0f2f5;padding:0 3px;border-radius:3px}
.reason{font-family:ui-monospace,monospace;font-size:12px;max-width:560px;word-break:break-word}
"""


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _delta(value: float | None) -> str:
    if value is None:
        return ""
    return f'<span class="{"better" if value > 0 else "worse" if value < 0 else ""}">{value:+.4f}</span>'


def _when(epoch: float | None) -> str:
    return "—" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def _notes(notes: list[str]) -> str:
    return "".join(f'<div class="empty">{escape(note)}</div>' for note in notes)


# -- header -------------------------------------------------------------------------------------------

def _stages_done(report: dict) -> str:
    stages = report.get("stages") or {}
    if not stages:
        return "no state store: nothing submitted through the controller yet" if not report["run"][
            "has_state_store"] else "no elements recorded"
    parts = []
    for stage in STAGE_ORDER:
        counts = stages.get(stage)
        if not counts:
            continue
        extra = [f"{counts[s]} {s}" for s in ("running", "pending", "failed", "timeout", "cancelled") if counts.get(s)]
        done = counts.get("completed", 0) + counts.get("skipped", 0)
        parts.append(f"{stage} {done}/{counts['total']}" + (f" ({', '.join(extra)})" if extra else ""))
    return " · ".join(parts)


def _header(report: dict) -> str:
    run, base = report["run"], report["baseline"]
    evaluation = report.get("evaluation") or {}
    best, mean = evaluation.get("best_member"), evaluation.get("best_mean")
    if best is not None and mean is not None:
        score = (f'<b id="best-mean">{mean:.4f}</b> ({escape(best)}) {_delta(mean - base["mean"])} vs '
                 f'baseline {base["mean"]:.4f}')
    else:
        score = f"no member has pass@1 for all 13 tasks yet (baseline {base['mean']:.4f})"
    limits = evaluation.get("partial_run_limits") or []
    if limits:
        score += (f'<br><span class="worse">partial run (generate.limit = {", ".join(map(str, limits))}): '
                  "scored on the first problems of each task only, not comparable to the baseline</span>")
    cost = (report.get("scheduling") or {}).get("cost", {}).get("total")
    cost_text = (f'{cost["cpu_hours"]:.3f} CPU-h · {cost["gpu_hours"]:.3f} GPU-h '
                 f'({escape(report["scheduling"]["source_label"])})') if cost else "unknown"
    rows = [("config hash", f'<code>{escape(run["config_hash"] or "unknown")}</code>'),
            ("executor", escape(run["executor"])),
            ("members", f'{len(run["members"])}: ' + escape(", ".join(run["members"]) or "none")),
            ("stages done", escape(_stages_done(report))),
            ("best mean pass@1", score),
            ("baseline", f'{escape(base["description"])}, mean pass@1 {base["mean"]:.4f}'),
            ("cost", cost_text),
            ("generated", escape(_when(report.get("generated_at"))))]
    table = "".join(f"<tr><td>{key}</td><td>{value}</td></tr>" for key, value in rows)
    out = [f'<h1>mft-hpc run report: {escape(run["name"])}</h1>',
           f'<div class="empty">{escape(run["root"])}</div>',
           f'<div class="card"><table class="facts">{table}</table></div>']
    missing = report.get("missing") or []
    if missing:
        items = "".join(f"<li>{escape(note)}</li>" for note in missing[:200])
        more = f"<li>… and {len(missing) - 200} more</li>" if len(missing) > 200 else ""
        out.append(f'<div class="card missing-box" id="missing"><b>What is missing ({len(missing)})</b>'
                   f"<ul>{items}{more}</ul></div>")
    return "".join(out)


# -- training -----------------------------------------------------------------------------------------

def _member_training(name: str, section: dict) -> str:
    curves = section.get("curves") or {}
    marks = []
    if section.get("best_step") is not None:
        marks.append((section["best_step"], f"best step {section['best_step']}"))
    if section.get("stopped_early") and section.get("last_step") is not None:
        marks.append((section["last_step"], f"early stop at {section['last_step']}"))
    tasks = sorted(set(curves.get("train_loss_per_task", {})) | set(curves.get("valid_loss_per_task", {})))
    task_color = {task: svg.color(i) for i, task in enumerate(tasks)}
    loss = [{"name": "train loss (all tasks)", "points": curves.get("train_loss", []), "color": "#333"}]
    loss += [{"name": f"train {t}", "points": curves["train_loss_per_task"][t], "color": task_color[t], "dash": True}
             for t in tasks if t in curves.get("train_loss_per_task", {})]
    loss += [{"name": f"valid {t}", "points": curves["valid_loss_per_task"][t], "color": task_color[t], "dots": True}
             for t in tasks if t in curves.get("valid_loss_per_task", {})]
    charts = [svg.line_chart(loss, title="loss per task", y_label="loss", marks=marks),
              svg.line_chart([{"name": "lr", "points": curves.get("lr", [])}], title="learning rate", marks=marks),
              svg.line_chart([{"name": "supervised tokens/s", "points": curves.get("supervised_tokens_per_s", [])}],
                             title="supervised tokens/s", marks=marks)]
    weights = curves.get("task_weights") or {}
    if weights:
        charts.append(svg.line_chart([{"name": t, "points": p, "color": task_color.get(t), "dots": True}
                                      for t, p in weights.items()], title="task weights (CoBa / configured)",
                                     marks=marks))
    keys = [("train loss (all tasks)", "#333", False)]
    keys += [(f"{t}: train (dashed) / valid (dots)", task_color[t], False) for t in tasks]
    state = section.get("state")
    facts = [f"state: {escape(state or 'unknown')}",
             f"step {section.get('last_step') if section.get('last_step') is not None else '—'}"
             + (f"/{section['total_steps']}" if section.get("total_steps") else "")]
    if section.get("best_step") is not None:
        facts.append(f"best step {section['best_step']}"
                     + (f" (valid loss {section['best_valid_loss']:.4f})" if section.get("best_valid_loss") else ""))
    if section.get("stopped_early"):
        facts.append("stopped early")
    body = (svg.legend(keys) + f'<div class="charts">{"".join(charts)}</div>') if any(
        curves.get(k) for k in ("train_loss", "valid_loss", "lr")) else ""
    return (f'<div class="card training" data-member="{escape(name)}"><h3>{escape(name)}</h3>'
            f'<div>{" · ".join(facts)}</div>{_notes(section.get("notes", []))}{body}</div>')


def _sweep_overview(training: dict) -> str:
    """Every member's train and validation loss (mean over tasks) in one chart each, for comparing."""
    def series(key: str) -> list[dict]:
        return [{"name": name, "points": section.get("curves", {}).get(key, []), "color": svg.color(i),
                 "dots": key == "valid_loss"} for i, (name, section) in enumerate(training.items())]

    keys = [(name, svg.color(i), False) for i, name in enumerate(training)]
    charts = [svg.line_chart(series("train_loss"), title="train loss, all members", y_label="loss", width=540),
              svg.line_chart(series("valid_loss"), title="validation loss, all members", y_label="loss", width=540)]
    return f'<div class="card" id="sweep-training">{svg.legend(keys)}<div class="charts">{"".join(charts)}</div></div>'


def _training(report: dict) -> str:
    training = report.get("training")
    if training is None:
        return "<h2>Training</h2>" + _notes(["training section could not be read (see What is missing)"])
    if not training:
        return "<h2>Training</h2>" + _notes(["no members"])
    overview = _sweep_overview(training) if len(training) > 1 else ""
    return "<h2>Training</h2>" + overview + "".join(_member_training(n, s) for n, s in training.items())


# -- evaluation ---------------------------------------------------------------------------------------

def _heat_color(value: float, base: float) -> str:
    """Green above the baseline, red below, white at it."""
    diff = value - base
    strength = min(1.0, abs(diff) / 0.15)
    hue = 130 if diff >= 0 else 5
    return f"hsl({hue},60%,{97 - 42 * strength:.0f}%)"


def _heatmap(evaluation: dict, baseline: dict) -> str:
    tasks = evaluation["tasks"]
    head = "".join(f'<th title="{escape(t)}">{escape(short_task(t))}</th>' for t in tasks)
    rows = []
    for name, member in evaluation["members"].items():
        cells = []
        for task in tasks:
            value = member["scores"].get(task)
            if value is None:
                cells.append(f'<td class="cell none" data-member="{escape(name)}" data-task="{task}">—</td>')
            else:
                cells.append(f'<td class="cell" data-member="{escape(name)}" data-task="{task}" '
                             f'data-value="{value!r}" style="background:{_heat_color(value, baseline["scores"][task])}"'
                             f' title="{escape(name)} · {task}: {value:.4f} (baseline {baseline["scores"][task]:.4f})">'
                             f"{value:.4f}</td>")
        mean = member["mean"]
        star = " ★" if name == evaluation["best_member"] else ""
        rows.append(f'<tr><th>{escape(name)}{star}</th>{"".join(cells)}<td class="num mean" data-member="{escape(name)}">'
                    f'{_num(mean)} {_delta(None if mean is None else mean - baseline["mean"])}</td></tr>')
    base_cells = "".join(f'<td class="cell num">{baseline["scores"][t]:.4f}</td>' for t in tasks)
    rows.append(f'<tr class="baseline-row"><th>baseline</th>{base_cells}<td class="num">{baseline["mean"]:.4f}</td></tr>')
    return (f'<h3>pass@1, members × tasks</h3><div class="scroll" style="max-height:none"><table class="heatmap">'
            f'<tr><th>member</th>{head}<th>mean (13)</th></tr>{"".join(rows)}</table></div>')


def _verdicts(evaluation: dict) -> str:
    members = evaluation["members"]
    keys = "".join(f'<span class="key"><b style="background:{VERDICT_COLORS[v]}"></b>{v}</span>' for v in VERDICTS)
    blocks = []
    for name, member in members.items():
        rows = [(short_task(t), member["verdicts"][t]) for t in evaluation["tasks"] if member["verdicts"].get(t)]
        if not rows:
            blocks.append(f'<details><summary>{escape(name)}</summary>{_notes(["no per-problem results yet"])}</details>')
            continue
        chart = svg.stacked_bars(rows, VERDICTS, VERDICT_COLORS, title=f"verdicts per task: {name}")
        open_ = " open" if name == evaluation["best_member"] or len(members) == 1 else ""
        blocks.append(f'<details{open_} class="verdicts" data-member="{escape(name)}"><summary>{escape(name)}</summary>'
                      f"{chart}</details>")
    return f'<h3>Verdicts per task</h3><div class="legend">{keys}</div>{"".join(blocks)}'


def _reasons(evaluation: dict) -> str:
    by_task = evaluation.get("reasons_by_task") or {}
    if not by_task:
        return "<h3>Most common failure reasons</h3>" + _notes(["no failed problems recorded"])
    rows = []
    for task in evaluation["tasks"]:
        for entry in by_task.get(task, []):
            problem = entry.get("example_problem_id")
            example = (f'{escape(entry["example_member"])} · {escape(problem) + " · " if problem else ""}'
                       f'problem index {entry["example_index"]}')
            rows.append(f'<tr><td>{escape(short_task(task))}</td><td>{entry["verdict"]}</td>'
                        f'<td class="reason" title="{escape(entry["example_reason"])}">{escape(entry["reason"])}</td>'
                        f'<td class="num">{entry["count"]}</td><td>{example}</td></tr>')
    return ("<h3>Most common failure reasons</h3><div class=\"scroll\"><table><tr><th>task</th><th>verdict</th>"
            "<th>reason (numbers, paths and quoted names blanked)</th><th class=\"num\">problems</th>"
            f"<th>example problem (id · index in dataset order)</th></tr>{''.join(rows)}</table></div>")


def _evaluation(report: dict) -> str:
    evaluation, baseline = report.get("evaluation"), report["baseline"]
    if evaluation is None:
        return "<h2>Evaluation</h2>" + _notes(["evaluation section could not be read (see What is missing)"])
    members = evaluation["members"]
    if not any(any(v is not None for v in m["scores"].values()) for m in members.values()):
        return "<h2>Evaluation</h2>" + _notes(["no pass@1 yet: no metrics file in any member's evaluate/"])
    tasks = evaluation["tasks"]
    series = [{"name": name, "values": [m["scores"].get(t) for t in tasks], "color": svg.color(i)}
              for i, (name, m) in enumerate(members.items())]
    keys = [(name, svg.color(i), False) for i, name in enumerate(members)] + [("baseline", "#000", False)]
    bars = svg.grouped_bars([short_task(t) for t in tasks], series, [baseline["scores"][t] for t in tasks],
                            title="pass@1 per task (black line: baseline)")
    return ("<h2>Evaluation</h2>" + svg.legend(keys) + f'<div class="card">{bars}</div>'
            + _heatmap(evaluation, baseline) + _verdicts(evaluation) + _reasons(evaluation))


# -- scheduling ---------------------------------------------------------------------------------------

def _cost_table(title: str, table: dict, order: list[str]) -> str:
    rows = "".join(f'<tr><td>{escape(COLLECT_LABEL if key == COLLECT_MEMBER else key)}</td>'
                   f'<td class="num">{table[key]["runs"]}</td>'
                   f'<td class="num" data-cost="cpu" data-key="{escape(key)}">{table[key]["cpu_hours"]:.4f}</td>'
                   f'<td class="num" data-cost="gpu" data-key="{escape(key)}">{table[key]["gpu_hours"]:.4f}</td></tr>'
                   for key in order if key in table)
    return (f'<table class="cost"><tr><th>{title}</th><th class="num">job runs</th><th class="num">CPU-hours</th>'
            f'<th class="num">GPU-hours</th></tr>{rows}</table>')


def _scheduling(report: dict) -> str:
    section = report.get("scheduling")
    if section is None:
        return "<h2>Scheduling and cost</h2>" + _notes(["scheduling section could not be read (see What is missing)"])
    out = [f'<h2>Scheduling and cost</h2><div class="empty">source: {escape(section["source_label"])}</div>']
    bars, cost = section["bars"], section["cost"]
    if not bars:
        return "".join(out) + _notes(section.get("notes") or ["no jobs"])
    total = cost["total"]
    stages = [s for s in STAGE_ORDER if s in cost["by_stage"]]
    out.append(f'<div class="card"><div>total: <b id="cost-cpu">{total["cpu_hours"]:.4f}</b> CPU-hours · '
               f'<b id="cost-gpu">{total["gpu_hours"]:.4f}</b> GPU-hours over {total["runs"]} job runs</div>'
               f'<div class="charts">{_cost_table("stage", cost["by_stage"], stages)}'
               f'{_cost_table("member", cost["by_member"], sorted(cost["by_member"]))}</div></div>')
    rows: dict[str, list[dict]] = {}
    order = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    for bar in sorted(bars, key=lambda b: (order.get(b["stage"], 9), b["member"], b["task"], b["label"])):
        rows.setdefault(bar["label"], []).append(bar)
    starts = [b["submit"] for b in bars if b["submit"] is not None] + [b["start"] for b in bars if b["start"]]
    ends = [b["end"] for b in bars if b["end"] is not None] + starts
    t0 = min(starts) if starts else 0.0
    running = any(b["end"] is None for b in bars)
    t1 = max(ends + ([report["generated_at"]] if running else [])) if ends else t0 + 1
    keys = "".join(f'<span class="key"><b style="background:{c}"></b>{s}</span>' for s, c in BAR_COLORS.items()
                   if any(b["state"] == s for b in bars))
    keys = f'<span class="key"><b style="background:#cfd6de"></b>queued</span>{keys}'
    chart = svg.gantt(list(rows.items()), BAR_COLORS, t0=t0, t1=t1,
                      title=f"timeline: {len(rows)} elements, {len(bars)} job runs")
    out.append(f'<h3>Timeline</h3><div class="legend">{keys}</div><div class="scroll">{chart}</div>')
    out.append(_notes(section.get("notes", [])))
    return "".join(out)


# -- submission ---------------------------------------------------------------------------------------

def _submission(report: dict) -> str:
    section = report.get("submission")
    if section is None:
        return "<h2>Submission</h2>" + _notes(["submission section could not be read (see What is missing)"])
    rows = []
    for entry in section["zips"]:
        if entry["valid"]:
            verdict = "valid" + (" (partial)" if entry["partial"] else " (complete)")
        else:
            verdict = f'<span class="worse">invalid</span>: {escape(entry["error"] or "")}'
        rows.append(f'<tr><td>{escape(entry.get("member") or "—")}</td><td><code>{escape(entry["path"])}</code></td>'
                    f'<td>{verdict}</td><td>{"yes" if entry.get("partial") else "no" if entry["valid"] else "—"}</td>'
                    f'<td class="num">{entry.get("programs", "—")}</td></tr>')
    for member, why in section["not_packed"].items():
        rows.append(f'<tr><td>{escape(member)}</td><td>—</td><td class="worse">not packed: {escape(why)}</td>'
                    f"<td>—</td><td>—</td></tr>")
    table = ("<table><tr><th>member</th><th>zip</th><th>validation</th><th>partial</th><th class=\"num\">programs"
             f"</th></tr>{''.join(rows)}</table>") if rows else ""
    return f'<h2>Submission</h2><div class="card">{table}{_notes(section["notes"])}</div>'


def render_html(report: dict) -> str:
    body = "".join([_header(report), _training(report), _evaluation(report), _scheduling(report),
                    _submission(report)])
    title = f"mft-hpc report: {report['run']['name']}"
    # no network: a strict CSP makes the browser refuse any load the page might ever try
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>{body}"
            f'<p class="empty">Numbers as in report.json beside this page.</p></main></body></html>\n')
