"""Small inline SVG charts for the HTML report: lines over time, a heatmap, paired bars.

Plain SVG elements and no script: the report opens offline in any browser, draws without
JavaScript, and costs bytes per point drawn rather than a plotting library's bundle
(Plotly inlined is about 3.5 MB before any data; Vega-Lite with Vega about 0.8 MB).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH = 900
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 12, 28

Points = Sequence[tuple[float, float | None]]  # (epoch seconds, value or None for a gap)
Intervals = Sequence[tuple[float, float, float]]  # (epoch seconds, low, high)


def _time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%m-%d %H:%M")


def _number(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{value:.3g}"
    return f"{value:.2e}"


def line_chart(
    series: Mapping[str, Points],
    *,
    span: tuple[float, float],
    height: int = 180,
    limits: Mapping[str, float] | None = None,
    unit: str = "",
    bands: Mapping[str, Intervals] | None = None,
) -> str:
    """Lines over time with dashed threshold ``limits``; a missing value breaks its line.

    ``bands`` shades an interval around the series of the same name (its colour, faint),
    such as an estimate's sampling error; a missing interval breaks the band too.
    """
    bands = bands or {}
    values = [v for points in series.values() for _, v in points if v is not None]
    values += list((limits or {}).values())
    values += [
        bound
        for intervals in bands.values()
        for _, low, high in intervals
        for bound in (low, high)
        if math.isfinite(bound)
    ]
    if not values:
        return '<p class="empty">no measured values in this range</p>'
    low, high = min(0.0, *values), max(values)
    high = high if high > low else low + 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    t0, t1 = span
    t1 = t1 if t1 > t0 else t0 + 1

    def x(moment: float) -> float:
        return LEFT + (moment - t0) / (t1 - t0) * inner_w

    def y(value: float) -> float:
        return TOP + inner_h - (value - low) / (high - low) * inner_h

    parts = [_frame(height, (low, high), span, unit, y)]
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        for stretch in _interval_runs(bands.get(name, ())):
            upper = [f"{x(t):.1f},{y(hi):.1f}" for t, _, hi in stretch]
            lower = [f"{x(t):.1f},{y(lo):.1f}" for t, lo, _ in reversed(stretch)]
            parts.append(
                f'<polygon class="band" fill="{colour}" fill-opacity="0.15" stroke="none" '
                f'points="{" ".join(upper + lower)}"/>'
            )
        for run in _runs(points):
            if len(run) == 1:
                cx, cy = x(run[0][0]), y(run[0][1])
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2" fill="{colour}"/>')
                continue
            path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
            parts.append(f'<polyline fill="none" stroke="{colour}" points="{path}"/>')
        parts.append(
            f'<text x="{WIDTH - RIGHT + 8}" y="{TOP + 12 + 14 * index}" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    for name, value in (limits or {}).items():
        parts.append(
            f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"><title>{escape(name)} {_number(value)}</title></line>'
        )
    return _svg(height, parts, "line")


def _interval_runs(intervals: Intervals) -> list[list[tuple[float, float, float]]]:
    runs: list[list[tuple[float, float, float]]] = [[]]
    for moment, low, high in sorted(intervals, key=lambda interval: interval[0]):
        if not (math.isfinite(low) and math.isfinite(high)):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((moment, low, high))
    # One window's interval alone is drawn as a thin sliver rather than nothing.
    return [run if len(run) > 1 else [run[0], (run[0][0] + 1, *run[0][1:])] for run in runs if run]


def _runs(points: Points) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for moment, value in sorted(points, key=lambda point: point[0]):
        if value is None or not math.isfinite(value):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((moment, value))
    return [run for run in runs if run]


def _frame(
    height: int,
    bounds: tuple[float, float],
    span: tuple[float, float],
    unit: str,
    scale: Callable[[float], float],
) -> str:
    bottom = height - BOTTOM
    low, high = bounds
    ticks = [low, (low + high) / 2, high]
    parts = [
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}"/>',
    ]
    for value in ticks:
        at = scale(value)
        parts.append(
            f'<text x="{LEFT - 4}" y="{at + 4:.1f}" text-anchor="end">{_number(value)}{unit}</text>'
        )
    for fraction, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        moment = span[0] + fraction * (span[1] - span[0])
        at = LEFT + fraction * (WIDTH - LEFT - RIGHT)
        parts.append(
            f'<text x="{at:.1f}" y="{height - 8}" text-anchor="{anchor}">{_time(moment)}</text>'
        )
    return "".join(parts)


def heatmap(
    rows: Mapping[str, Mapping[float, float | None]],
    *,
    columns: Sequence[float],
    alerts: Mapping[str, set[float]],
    legend: str,
) -> str:
    """One row per name, one cell per window start; cells hold badness: score over its
    threshold (1 at the threshold, above it alerting), drawn from green through red."""
    # Feature names need a wider margin than axis numbers.
    left = LEFT + 60
    cell_w = max(1.0, (WIDTH - left - RIGHT) / max(len(columns), 1))
    cell_h = 14
    height = TOP + cell_h * len(rows) + BOTTOM + 20
    index = {moment: i for i, moment in enumerate(columns)}
    parts: list[str] = []
    for row, (name, cells) in enumerate(rows.items()):
        top = TOP + row * cell_h
        parts.append(
            f'<text x="{left - 4}" y="{top + 11}" text-anchor="end">{escape(name[-20:])}</text>'
        )
        for moment, badness in cells.items():
            if moment not in index:
                continue
            at = left + index[moment] * cell_w
            mark = ' class="alert"' if moment in alerts.get(name, set()) else ""
            parts.append(
                f'<rect x="{at:.1f}" y="{top}" width="{cell_w:.2f}" height="{cell_h - 1}" '
                f'fill="{_colour(badness)}"{mark}/>'
            )
    if columns:
        bottom = TOP + cell_h * len(rows)
        for fraction, anchor in ((0.0, "start"), (1.0, "end")):
            moment = columns[0] if fraction == 0 else columns[-1]
            at = left + fraction * (WIDTH - left - RIGHT)
            parts.append(
                f'<text x="{at:.1f}" y="{bottom + 14}" text-anchor="{anchor}">'
                f"{_time(moment)}</text>"
            )
    # The legend sits under the cells: threshold multiples from green through red.
    below = TOP + cell_h * len(rows) + 24
    parts.append(
        "".join(
            f'<rect x="{LEFT + 16 * i}" y="{below}" width="16" height="10" '
            f'fill="{_colour(level)}"><title>{level:g} of the threshold</title></rect>'
            for i, level in enumerate((0.0, 0.5, 1.0, 1.5, 2.0))
        )
        + f'<text x="{LEFT + 88}" y="{below + 9}">{escape(legend)}: 0, threshold (yellow), '
        "twice the threshold (red)</text>"
    )
    return _svg(height, parts, "heatmap")


def _colour(badness: float | None) -> str:
    if badness is None or not math.isfinite(badness):
        return "#e5e5e5"  # too little data
    level = min(max(badness, 0.0), 2.0) / 2.0
    # Green (fine) to yellow (at the threshold) to red (twice past it).
    if level <= 0.5:
        red, green = int(60 + 390 * level), 170
    else:
        red, green = 255, int(170 - 300 * (level - 0.5))
    return f"#{min(red, 255):02x}{max(green, 0):02x}50"


def bars(labels: Sequence[str], groups: Mapping[str, Sequence[float]], *, height: int = 150) -> str:
    """Shares side by side per bin or category (reference against current)."""
    inner_w, inner_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    top = max((v for values in groups.values() for v in values), default=1.0) or 1.0
    slot = inner_w / max(len(labels), 1)
    width = slot * 0.8 / max(len(groups), 1)
    parts = [
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + inner_h}" '
        f'y2="{TOP + inner_h}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{_number(top)}</text>',
    ]
    for g, (name, values) in enumerate(groups.items()):
        colour = PALETTE[g % len(PALETTE)]
        for i, value in enumerate(values):
            h = value / top * inner_h
            left = LEFT + i * slot + slot * 0.1 + g * width
            parts.append(
                f'<rect x="{left:.1f}" y="{TOP + inner_h - h:.1f}" width="{width:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(labels[i])}: '
                f"{value:.3f}</title></rect>"
            )
        parts.append(
            f'<text x="{WIDTH - RIGHT + 8}" y="{TOP + 12 + 14 * g}" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    step = max(1, len(labels) // 10)
    for i in range(0, len(labels), step):
        at = LEFT + (i + 0.5) * slot
        parts.append(
            f'<text x="{at:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{escape(labels[i][:10])}</text>"
        )
    return _svg(height, parts, "bars")


def _svg(height: int, parts: Sequence[str], kind: str) -> str:
    return (
        f'<svg class="chart {kind}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg" role="img">{"".join(parts)}</svg>'
    )
