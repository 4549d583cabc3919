"""Small text helpers for the report and the dashboard: sparklines, durations, rates."""

from __future__ import annotations

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 24) -> str:
    """The last ``width`` values as bars scaled between their min and max (flat series: lowest bar)."""
    tail = values[-width:]
    if not tail:
        return ""
    low, high = min(tail), max(tail)
    span = high - low
    return "".join(_BARS[0 if span == 0 else round((v - low) / span * (len(_BARS) - 1))] for v in tail)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def score(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4f}"


def delta(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"
