"""Inline SVG charts for the report page: line chart, grouped bars, stacked bars, Gantt timeline.

Plain strings, no JavaScript: hover text is an SVG ``<title>``. Every mark that stands for a number
carries it in ``data-value`` so a browser test can compare what is drawn with the run's files.
"""

from __future__ import annotations

import math
from html import escape

from mft_hpc.report.format import duration as _duration

FONT = 11


def color(index: int) -> str:
    """Distinct colours for any number of series (golden-angle hues)."""
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
    if index < len(palette):
        return palette[index]
    return f"hsl({(index * 137.508) % 360:.0f},60%,45%)"


def fmt(value: float) -> str:
    """Short tick/label text: 3 significant digits, scientific for very small or large values."""
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if abs(value) < 1e-3 or abs(value) >= 1e5:
        return f"{value:.1e}"
    return f"{value:.3g}"


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _attrs(**attrs) -> str:
    return "".join(f' {key.rstrip("_").replace("_", "-")}="{escape(str(value))}"' for key, value in attrs.items()
                   if value is not None)


def _open(width: int, height: int, label: str, cls: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img"{_attrs(aria_label=label)}>')


def line_chart(series: list[dict], *, title: str, y_label: str = "", width: int = 272, height: int = 210,
               marks: list[tuple[float, str]] = (), x_label: str = "step") -> str:
    """``series``: ``{"name", "points": [[x, y]...], "dash": bool, "dots": bool}``; ``marks``: vertical lines."""
    points = [p for s in series for p in s["points"]]
    if not points:
        return f'<div class="empty">{escape(title)}: no data</div>'
    left, right, top, bottom = 46, 8, 22, 34
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.05, y1 + (abs(y1) or 1) * 0.05
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [_open(width, height, title, "chart line"), f'<text x="{left}" y="14" class="title">{escape(title)}</text>']
    for tick in ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(tick):.1f}" y2="{sy(tick):.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{sy(tick) + 3:.1f}" class="tick" text-anchor="end">{fmt(tick)}</text>')
    for tick in ticks(x0, x1):
        out.append(f'<text x="{sx(tick):.1f}" y="{height - bottom + 13}" class="tick" text-anchor="middle">'
                   f'{fmt(tick)}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" class="axis" text-anchor="middle">'
               f'{escape(x_label)}</text>')
    if y_label:
        out.append(f'<text transform="translate(11 {top + ph / 2:.0f}) rotate(-90)" class="axis" '
                   f'text-anchor="middle">{escape(y_label)}</text>')
    for x, label in marks:
        if x0 <= x <= x1:
            right_half = sx(x) > left + pw / 2  # the label goes on the side with room
            out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{top + ph}" class="mark">'
                       f'<title>{escape(label)}</title></line>'
                       f'<text x="{sx(x) + (-3 if right_half else 3):.1f}" y="{top + 9}" class="mark-label" '
                       f'text-anchor="{"end" if right_half else "start"}">{escape(label)}</text>')
    for index, s in enumerate(series):
        if not s["points"]:
            continue
        stroke = s.get("color") or color(index)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s["points"])
        dash = ' stroke-dasharray="4 3"' if s.get("dash") else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="1.5"{dash}>'
                   f'<title>{escape(s["name"])}</title></polyline>')
        if s.get("dots") and len(s["points"]) <= 60:
            out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.2" fill="{stroke}"/>' for x, y in s["points"]]
    out.append("</svg>")
    return "".join(out)


def legend(entries: list[tuple[str, str, bool]]) -> str:
    """HTML legend: (name, colour, dashed)."""
    items = []
    for name, stroke, dashed in entries:
        style = f"border-top:2px {'dashed' if dashed else 'solid'} {stroke}"
        items.append(f'<span class="key"><i style="{style}"></i>{escape(name)}</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def grouped_bars(groups: list[str], series: list[dict], baseline: list[float] | None, *, title: str,
                 width: int = 1100, height: int = 280) -> str:
    """One group per category (task), one bar per series (member), a baseline tick per group.

    ``series``: ``{"name", "values": [float | None per group]}``; a missing value draws no bar.
    """
    left, right, top, bottom = 44, 10, 24, 60
    values = [v for s in series for v in s["values"] if v is not None] + list(baseline or [])
    y1 = max(values + [0.05])
    y1 = ticks(0, y1)[-1] if ticks(0, y1)[-1] >= y1 else y1
    pw, ph = width - left - right, height - top - bottom
    group_w = pw / max(len(groups), 1)
    bar_w = max(1.0, (group_w - 6) / max(len(series), 1))

    def sy(y):
        return top + (1 - y / y1) * ph

    out = [_open(width, height, title, "chart bars"), f'<text x="{left}" y="15" class="title">{escape(title)}</text>']
    for tick in ticks(0, y1):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(tick):.1f}" y2="{sy(tick):.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{sy(tick) + 3:.1f}" class="tick" text-anchor="end">{fmt(tick)}</text>')
    for g, group in enumerate(groups):
        gx = left + g * group_w + 3
        for s_index, s in enumerate(series):
            value = s["values"][g]
            if value is None:
                continue
            top_y = sy(value)
            out.append(f'<rect x="{gx + s_index * bar_w:.1f}" y="{top_y:.1f}" width="{max(bar_w - 0.5, 0.5):.1f}" '
                       f'height="{top + ph - top_y:.1f}" fill="{s.get("color") or color(s_index)}" class="bar"'
                       f'{_attrs(data_series=s["name"], data_group=group, data_value=repr(value))}>'
                       f'<title>{escape(s["name"])} · {escape(group)}: {value:.4f}</title></rect>')
        if baseline is not None:
            by = sy(baseline[g])
            out.append(f'<line x1="{gx - 2:.1f}" x2="{gx + group_w - 4:.1f}" y1="{by:.1f}" y2="{by:.1f}" '
                       f'class="baseline"{_attrs(data_group=group, data_value=repr(baseline[g]))}>'
                       f'<title>baseline · {escape(group)}: {baseline[g]:.4f}</title></line>')
        out.append(f'<text transform="translate({gx + group_w / 2:.1f} {top + ph + 10}) rotate(30)" '
                   f'class="tick">{escape(group)}</text>')
    out.append("</svg>")
    return "".join(out)


def stacked_bars(rows: list[tuple[str, dict[str, int]]], order: tuple[str, ...], colors: dict[str, str], *,
                 title: str, width: int = 640, row_h: int = 16) -> str:
    """Horizontal bars, one per row, split by category (verdicts), each as a share of the row's total."""
    left, right, top = 150, 60, 22
    height = top + row_h * len(rows) + 6
    pw = width - left - right
    out = [_open(width, height, title, "chart stacked"), f'<text x="4" y="14" class="title">{escape(title)}</text>']
    for r, (label, counts) in enumerate(rows):
        y = top + r * row_h
        total = sum(counts.values())
        out.append(f'<text x="{left - 4}" y="{y + row_h - 5}" class="tick" text-anchor="end">{escape(label)}</text>')
        x = float(left)
        for category in order:
            count = counts.get(category, 0)
            if not count:
                continue
            w = pw * count / total
            out.append(f'<rect x="{x:.1f}" y="{y + 1}" width="{w:.1f}" height="{row_h - 3}" fill="{colors[category]}"'
                       f'{_attrs(data_row=label, data_category=category, data_value=count)}>'
                       f'<title>{escape(label)} · {category}: {count} of {total}</title></rect>')
            x += w
        out.append(f'<text x="{left + pw + 4}" y="{y + row_h - 5}" class="tick">{total}</text>')
    out.append("</svg>")
    return "".join(out)


def gantt(rows: list[tuple[str, list[dict]]], colors: dict[str, str], *, t0: float, t1: float, title: str,
          width: int = 1100, row_h: int = 11) -> str:
    """One row per element; per run a queued part (submit -> start) and a running part (start -> end)."""
    left, right, top, bottom = 230, 10, 24, 26
    span = max(t1 - t0, 1.0)
    height = top + row_h * len(rows) + bottom
    pw = width - left - right

    def sx(t):
        return left + (min(max(t, t0), t1) - t0) / span * pw

    out = [_open(width, height, title, "chart gantt"), f'<text x="4" y="14" class="title">{escape(title)}</text>']
    for tick in ticks(0, span, 8):
        x = left + tick / span * pw
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" class="grid"/>'
                   f'<text x="{x:.1f}" y="{height - bottom + 12}" class="tick" text-anchor="middle">'
                   f'{_duration(tick)}</text>')
    for r, (label, bars) in enumerate(rows):
        y = top + r * row_h
        out.append(f'<text x="{left - 4}" y="{y + row_h - 2}" class="row-label" text-anchor="end">{escape(label)}</text>')
        for bar in bars:
            submit, start, end = bar["submit"], bar["start"], bar["end"] if bar["end"] is not None else t1
            tip = (f'{label} · job {bar["job_id"]} · attempt {bar["attempt"]} · {bar["state"]}'
                   f' · queued {_duration((start if start is not None else end) - submit) if submit is not None else "?"}'
                   f' · ran {_duration(end - start) if start is not None else "0s"}')
            if submit is not None:
                queue_end = start if start is not None else end
                out.append(f'<rect x="{sx(submit):.1f}" y="{y + 2}" width="{max(sx(queue_end) - sx(submit), 0.8):.1f}" '
                           f'height="{row_h - 4}" class="queued"><title>{escape(tip)}</title></rect>')
            if start is not None:
                out.append(f'<rect x="{sx(start):.1f}" y="{y + 1}" width="{max(sx(end) - sx(start), 1.0):.1f}" '
                           f'height="{row_h - 2}" fill="{colors.get(bar["state"], "#999")}"'
                           f'{_attrs(data_state=bar["state"], data_job=bar["job_id"])}>'
                           f'<title>{escape(tip)}</title></rect>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 2}" class="axis" text-anchor="middle">'
               f'time since the first submission</text></svg>')
    return "".join(out)

