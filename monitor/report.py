"""The HTML report: one self-contained file built from stored detector results.

Its size follows the number of windows and features, not the traffic: every chart is drawn
from ``detector_results`` rows, and the one section that looks at data (reference against
current distributions of the drifted features) embeds only binned shares of one window.
No script, no font, no stylesheet is fetched: it opens offline (see ``monitor/svg.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from pathlib import Path

import numpy as np

from detectors.backfill import StoreSource, WindowSource, stored_profiles
from detectors.profile import Profile
from detectors.rows import Rows
from detectors.settings import ModelSettings
from detectors.stats.psi import bin_counts
from detectors.stats.reference import ColumnReference, NumericalReference
from detectors.windows import Window
from modeltap.schema import DetectorResult
from modeltap.store import Store
from monitor.svg import bars, heatmap, line_chart

SECTIONS = (
    "summary", "drift", "multivariate", "distributions", "quality", "performance",
    "estimation", "serving", "ab",
)  # fmt: skip
_QUALITY = ("missing_ratio", "type_violation_share", "out_of_range_share", "unseen_category_share")
_CLASSIFICATION = ("accuracy", "f1", "precision", "recall", "roc_auc")
_REGRESSION = ("mae", "rmse", "mape")
_LATENCY = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms")
_MULTIVARIATE = ("reconstruction_error", "domain_classifier")
_SUMMARY_ROWS = 15  # the series that alerted most; the rest are counted
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{padding:2px 10px;border-bottom:1px solid #eee;
text-align:left}td.n{text-align:right}.alerting{color:#b00020;font-weight:600}
svg.chart{display:block;margin:6px 0;font-size:11px}svg text{fill:#444}
svg .axis{stroke:#999}svg .limit{stroke:#b00020;stroke-dasharray:4 3}
svg polyline{stroke-width:1.5}svg rect.alert{stroke:#600;stroke-width:.6}
.empty{color:#888;font-style:italic}
"""


def build(
    settings: ModelSettings,
    results: Sequence[DetectorResult],
    start: datetime,
    end: datetime,
    *,
    distributions: str = "",
) -> str:
    """The report's HTML for ``results`` of one model between ``start`` and ``end``."""
    span = (start.timestamp(), end.timestamp())
    ok = [r for r in results if not r.segment]
    title = f"modeltap report: {settings.model}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(start.isoformat())} to {escape(end.isoformat())} · "
        f"{len({r.window_start for r in ok})} windows with results · task {settings.task}</p>",
        _section("summary", "What alerted, and when", _summary(ok)),
        _section("drift", "Drift per feature over time", _drift(ok, span)),
        _section("multivariate", "Multivariate drift", _multivariate(ok, span)),
        _section(
            "distributions",
            "Reference against current, drifted features",
            distributions or '<p class="empty">no feature drifted in this range</p>',
        ),
        _section("quality", "Data quality over time", _quality(ok, span)),
        _section(
            "performance", "Performance against late labels", _performance(settings, ok, span)
        ),
        _section("estimation", "Performance before labels", _estimation(settings, ok, span)),
        _section("serving", "Latency and errors", _serving(settings, ok, span)),
        _section("ab", "A/B: challengers against the baseline", _ab(settings, ok, span)),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )


def _section(key: str, heading: str, content: str) -> str:
    return f'<section id="{key}"><h2>{escape(heading)}</h2>{content}</section>'


def _points(results: Iterable[DetectorResult]) -> list[tuple[float, float | None]]:
    return [(r.window_end.timestamp(), r.score if r.status == "ok" else None) for r in results]


def _by(
    results: Iterable[DetectorResult], *names: str
) -> dict[tuple[str, str, str], list[DetectorResult]]:
    found: dict[tuple[str, str, str], list[DetectorResult]] = defaultdict(list)
    for result in results:
        if result.detector in names:
            found[(result.detector, result.version, result.feature)].append(result)
    return found


def _summary(results: Sequence[DetectorResult]) -> str:
    alerting: dict[tuple[str, str, str], list[DetectorResult]] = defaultdict(list)
    for result in results:
        if result.alert:
            alerting[(result.detector, result.version, result.feature)].append(result)
    if not alerting:
        return "<p>Nothing alerted in this range.</p>"
    ranked = sorted(alerting.items(), key=lambda item: (-len(item[1]), item[0]))
    rows = "".join(
        f'<tr><td class="alerting">{escape(detector)}</td><td>{escape(feature or "—")}</td>'
        f'<td>{escape(version or "—")}</td><td class="n">{len(found)}</td>'
        f"<td>{found[0].window_start:%Y-%m-%d %H:%M}</td>"
        f"<td>{found[-1].window_end:%Y-%m-%d %H:%M}</td></tr>"
        for (detector, version, feature), found in ranked[:_SUMMARY_ROWS]
    )
    more = len(ranked) - _SUMMARY_ROWS
    rest = f"<p>and {more} more series that alerted.</p>" if more > 0 else ""
    return (
        "<table><tr><th>detector</th><th>feature</th><th>version</th><th>windows</th>"
        f"<th>first</th><th>last</th></tr>{rows}</table>{rest}"
    )


def _badness(result: DetectorResult) -> float | None:
    """How far a score is towards its threshold: 1 at the threshold, more past it."""
    if result.status != "ok" or result.score is None or not result.threshold:
        return None
    if result.direction == "lower":
        return result.threshold / result.score if result.score > 0 else 2.0
    return result.score / result.threshold


def _drift(results: Sequence[DetectorResult], span: tuple[float, float]) -> str:
    flags = [r for r in results if r.detector == "feature_drift"]
    if not flags:
        return '<p class="empty">no drift results in this range</p>'
    columns = sorted({r.window_start.timestamp() for r in flags})
    rows: dict[str, dict[float, float | None]] = defaultdict(dict)
    alerts: dict[str, set[float]] = defaultdict(set)
    versions = {r.version for r in flags}
    for result in flags:
        name = result.feature if len(versions) == 1 else f"{result.feature} {result.version}"
        rows[name][result.window_start.timestamp()] = _badness(result)
        if result.alert:
            alerts[name].add(result.window_start.timestamp())
    tests = sorted({str(r.details.get("test", "")) for r in flags} - {""})
    legend = f"score / threshold ({', '.join(tests)})"
    shares = _points(r for r in results if r.detector == "dataset_drift")
    share_chart = line_chart({"drifted share": shares}, span=span, height=120)
    return (
        heatmap(dict(sorted(rows.items())), columns=columns, alerts=alerts, legend=legend)
        + "<p>Each cell is one window; grey: too little data. Outlined cells alerted.</p>"
        + share_chart
    )


def _quality(results: Sequence[DetectorResult], span: tuple[float, float]) -> str:
    # The worst feature per window for each check: twenty features stay one readable chart.
    series: dict[str, dict[float, float]] = defaultdict(dict)
    for result in results:
        if result.detector in _QUALITY and result.status == "ok" and result.score is not None:
            moment = result.window_end.timestamp()
            current = series[result.detector].get(moment, 0.0)
            series[result.detector][moment] = max(current, result.score)
    lines = {f"max {name}": sorted(points.items()) for name, points in series.items()}
    return line_chart(lines, span=span) + "<p>Per window, the worst feature's share.</p>"


def _performance(
    settings: ModelSettings, results: Sequence[DetectorResult], span: tuple[float, float]
) -> str:
    metrics = _CLASSIFICATION[:2] if settings.task == "classification" else _REGRESSION[:2]
    found = _by(results, *metrics)
    lines = {f"{d} {v}".strip(): _points(rs) for (d, v, _), rs in sorted(found.items())}
    limits = {
        name: value
        for name in ("accuracy_min", "f1_min", "mae_max", "rmse_max")
        if (value := settings.threshold(name)) is not None and name.split("_")[0] in metrics
    }
    coverage = _by(results, "label_coverage")
    cover = {f"coverage {v}".strip(): _points(rs) for (_, v, _), rs in sorted(coverage.items())}
    return line_chart(lines, span=span, limits=limits) + line_chart(
        cover, span=span, height=120, limits=_limit(settings, "label_coverage_min")
    )


def _multivariate(results: Sequence[DetectorResult], span: tuple[float, float]) -> str:
    found = _by(results, *_MULTIVARIATE)
    if not found:
        return '<p class="empty">no multivariate drift results in this range</p>'
    parts = []
    for method in _MULTIVARIATE:
        items = {v: rs for (d, v, _), rs in sorted(found.items()) if d == method}
        if not items:
            continue
        lines = {f"{method} {v}".strip(): _points(rs) for v, rs in items.items()}
        parts.append(
            f"<h3>{escape(method)}</h3>"
            + line_chart(lines, span=span, height=150, limits=_thresholds(items))
        )
    return "".join(parts) + (
        "<p>The numerical features together against the reference; higher drifts. "
        "Dashed: the threshold of the newest window (the reference band's upper bound, or "
        "the configured one).</p>"
    )


def _estimation(
    settings: ModelSettings, results: Sequence[DetectorResult], span: tuple[float, float]
) -> str:
    metric = "accuracy" if settings.task == "classification" else "mae"
    estimated = _by(results, f"estimated_{metric}")
    if not estimated:
        return (
            '<p class="empty">no estimates in this range (the estimation family needs a '
            "labelled reference with scores; see `monitor reference set`)</p>"
        )
    realized = _by(results, f"realized_{metric}")
    parts = []
    for (_, version, feature), items in sorted(estimated.items()):
        truth = realized.get((f"realized_{metric}", version, feature), [])
        name = f"estimated {metric}"
        lines = {name: _points(items), f"realized {metric}": _points(truth)}
        interval = [
            (r.window_end.timestamp(), float(low), float(high))
            for r in items
            if isinstance(low := r.details.get("confidence_lower"), int | float)
            and isinstance(high := r.details.get("confidence_upper"), int | float)
        ]
        limits = _thresholds({version: items})
        alerted = sum(1 for r in items if r.alert)
        parts.append(
            f"<h3>{escape(version or 'all versions')} · estimate alerted in {alerted} of "
            f"{len(items)} windows</h3>"
            + line_chart(lines, span=span, limits=limits, bands={name: interval})
        )
    return "".join(parts) + (
        "<p>The estimate (CBPE for a classifier, DLE for a regressor) exists when a window "
        "closes; the realized figure once enough of its labels have arrived. Shaded: the "
        "estimate ± 3 sampling errors; dashed: the threshold of the newest window.</p>"
    )


def _thresholds(found: dict[str, list[DetectorResult]]) -> dict[str, float]:
    """Each version's newest threshold, as a dashed line named after it."""
    limits = {}
    for version, items in found.items():
        judged = [(r.window_end, r.threshold) for r in items if r.threshold is not None]
        if judged:
            limits[f"threshold {version}".strip()] = max(judged)[1]
    return limits


def _limit(settings: ModelSettings, name: str) -> dict[str, float]:
    value = settings.threshold(name)
    return {} if value is None else {name: value}


def _serving(
    settings: ModelSettings, results: Sequence[DetectorResult], span: tuple[float, float]
) -> str:
    latency = _by(results, *_LATENCY)
    lines = {
        f"{d.removeprefix('latency_').removesuffix('_ms')} {v}".strip(): _points(rs)
        for (d, v, _), rs in sorted(latency.items())
    }
    errors = _by(results, "error_rate")
    rates = {f"error rate {v}".strip(): _points(rs) for (_, v, _), rs in sorted(errors.items())}
    return line_chart(
        lines, span=span, unit=" ms", limits=_limit(settings, "latency_p99_ms")
    ) + line_chart(rates, span=span, height=120, limits=_limit(settings, "error_rate"))


def _ab(
    settings: ModelSettings, results: Sequence[DetectorResult], span: tuple[float, float]
) -> str:
    found = _by(results, "ab_error_rate", "ab_accuracy", "ab_latency")
    if not found:
        return '<p class="empty">one version served in this range: nothing to compare</p>'
    rows = []
    lines = {}
    for (detector, version, _), items in sorted(found.items()):
        measured = [r for r in items if r.status == "ok" and r.score is not None]
        baseline = str(items[-1].details.get("baseline", ""))
        worse = sum(1 for r in items if r.alert)
        low = min((r.score for r in measured if r.score is not None), default=None)
        lowest = "—" if low is None else f"{low:.2g}"
        rows.append(
            f"<tr><td>{escape(version)}</td><td>{escape(baseline)}</td><td>{detector[3:]}</td>"
            f'<td class="n">{len(measured)}</td><td class="n">{lowest}</td>'
            f'<td class="n{" alerting" if worse else ""}">{worse}</td></tr>'
        )
        lines[f"{detector[3:]} {version}"] = _points(items)
    table = (
        "<table><tr><th>challenger</th><th>baseline</th><th>test</th><th>windows</th>"
        f"<th>lowest p</th><th>worse</th></tr>{''.join(rows)}</table>"
    )
    return table + line_chart(lines, span=span, limits={"alpha": settings.ab_alpha})


def distributions(
    settings: ModelSettings,
    results: Sequence[DetectorResult],
    source: WindowSource,
    profiles: dict[str, Profile | None],
    *,
    limit: int = 6,
) -> str:
    """Reference against current shares for the most drifted features, in the window where
    each drifted most (one window read per feature, binned; nothing raw is embedded)."""
    drifted = [r for r in results if r.detector == "feature_drift" and r.alert and not r.segment]
    worst: dict[tuple[str, str], DetectorResult] = {}
    for result in drifted:
        key = (result.version, result.feature)
        if key not in worst or (_badness(result) or 0) > (_badness(worst[key]) or 0):
            worst[key] = result
    chosen = sorted(worst.values(), key=lambda r: -(_badness(r) or 0))[:limit]
    parts = []
    for result in chosen:
        profile = profiles.get(result.version)
        reference = profile.columns.get(result.feature) if profile else None
        if reference is None:
            continue
        data = source.read(Window(result.window_start, result.window_end))
        rows = data.rows.get(result.version)
        if rows is None:
            continue
        labels, ref, cur = _shares(reference, rows, result.feature)
        parts.append(
            f"<h3>{escape(result.feature)} {escape(result.version)} · "
            f"{result.window_start:%Y-%m-%d %H:%M}</h3>"
            + bars(labels, {"reference": ref, "current": cur})
        )
    return "".join(parts)


def _shares(
    reference: ColumnReference, rows: Rows, feature: str
) -> tuple[list[str], list[float], list[float]]:
    if isinstance(reference, NumericalReference):
        values = rows.numbers(feature)
        values = np.sort(values[np.isfinite(values)])
        counts = bin_counts(values, reference.edges)
        total = max(int(counts.sum()), 1)
        edges = [f"{edge:.3g}" for edge in reference.edges.tolist()]
        labels = [f"<{edges[0]}"] + [f"≥{edge}" for edge in edges] if edges else ["all"]
        return labels, reference.shares.tolist(), (counts / total).tolist()
    counts_ref = reference.counts.as_dict()
    current = rows.counts(feature).as_dict()
    names = sorted(set(counts_ref) | set(current), key=lambda k: -counts_ref.get(k, 0))[:20]
    ref_total = max(sum(counts_ref.values()), 1)
    cur_total = max(sum(current.values()), 1)
    return (
        [str(name) for name in names],
        [counts_ref.get(name, 0) / ref_total for name in names],
        [current.get(name, 0) / cur_total for name in names],
    )


def write_report(
    store: Store,
    settings: ModelSettings,
    start: datetime,
    end: datetime,
    path: Path,
    *,
    source: WindowSource | None = None,
    profiles: dict[str, Profile | None] | None = None,
) -> int:
    """Write the report of ``settings.model`` from stored results; returns its size in bytes."""
    results = store.results_between(settings.model, start, end)
    versions = {r.version for r in results}
    if profiles is None:
        profiles = stored_profiles(store, settings.model, versions)
    shown = distributions(settings, results, source or StoreSource(store, settings), profiles)
    html = build(settings, results, start, end, distributions=shown)
    path.write_text(html, encoding="utf-8")
    return len(html.encode("utf-8"))
