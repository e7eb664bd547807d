"""Stored results as OpenMetrics history, for ``promtool tsdb create-blocks-from openmetrics``.

Series carry the live exporter's names and labels (``exporters.metrics.samples``), so
backfilled and scraped history are the same series in Prometheus and on the dashboards.
Live, Prometheus scrapes the newest window's value over and over until the next window's
arrives; one sample per window would instead leave every panel empty between samples
(an instant query looks back only 5 minutes). So each value is repeated every ``step``
from its window's end until the next value of its series (at most ``hold`` later, as the
live exporter stops serving a value after its lookback), which draws the same lines live
history does. Families are written whole, each series' samples in time order, then
``# EOF``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from exporters.metrics import RESULT_FAMILIES, WINDOW_END, Family, samples
from modeltap.schema import DetectorResult, LatestValue

Series = dict[tuple[str, ...], list[tuple[float, float]]]


def exported(results: Iterable[DetectorResult]) -> dict[Family, Series]:
    """Per family and label values, the (window end, value) points of ``results``."""
    found: dict[Family, Series] = defaultdict(lambda: defaultdict(list))
    ends: dict[tuple[str, str], set[float]] = defaultdict(set)
    for result in results:
        # As the scrape: unsegmented results with a measured value only.
        if result.segment or result.status != "ok" or result.score is None:
            continue
        details = result.details
        value = LatestValue(
            result.model,
            result.version,
            result.detector,
            result.feature,
            result.window_end,
            float(result.score),
            bool(result.alert),
            str(details.get("test") or ""),
            str(details.get("baseline") or ""),
            result.threshold,
        )
        moment = result.window_end.timestamp()
        for family, labels, number in samples(value):
            found[family][labels].append((moment, number))
        ends[(result.model, result.version)].add(moment)
    for pair, moments in ends.items():
        found[WINDOW_END][pair] = [(moment, moment) for moment in sorted(moments)]
    return found


def repeated(
    points: Sequence[tuple[float, float]], step: float, hold: float
) -> Iterator[tuple[float, float]]:
    """Each point's value every ``step`` until the next point, or for at most ``hold``.

    >>> list(repeated([(0.0, 1.0), (120.0, 2.0)], 60.0, 180.0))
    [(0.0, 1.0), (60.0, 1.0), (120.0, 2.0), (180.0, 2.0), (240.0, 2.0), (300.0, 2.0)]
    """
    ordered = sorted(points)
    for index, (moment, value) in enumerate(ordered):
        until = moment + hold
        if index + 1 < len(ordered):
            until = min(until, ordered[index + 1][0] - step / 2)
        at = moment
        while at <= until:
            yield at, value
            at += step


def write(out: TextIO, families: dict[Family, Series], *, step: float, hold: float) -> int:
    """Write ``families`` as OpenMetrics text; returns the number of series."""
    count = 0
    for family in [f for f in RESULT_FAMILIES if f in families]:
        out.write(f"# HELP {family.name} {_escape_help(family.help)}\n")
        out.write(f"# TYPE {family.name} gauge\n")
        for labels in sorted(families[family]):
            names = family.labels
            text = ",".join(
                f'{name}="{_escape(value)}"' for name, value in zip(names, labels, strict=True)
            )
            series = f"{family.name}{{{text}}}"
            for moment, value in repeated(families[family][labels], step, hold):
                out.write(f"{series} {_number(value)} {moment:.3f}\n")
            count += 1
    out.write("# EOF\n")
    return count


def write_openmetrics(
    results: Iterable[DetectorResult],
    path: Path,
    *,
    step: timedelta = timedelta(minutes=4),
    hold: timedelta | None = None,
) -> int:
    """Write ``results`` to ``path`` (see the module's docstring); returns the series count.

    ``hold`` defaults to two windows, what the live exporter's lookback keeps a value for.
    """
    results = list(results)
    if hold is None:
        size = max((r.window_end - r.window_start for r in results), default=timedelta(hours=1))
        hold = 2 * size
    families = exported(results)
    with path.open("w", encoding="utf-8") as out:
        return write(out, families, step=step.total_seconds(), hold=hold.total_seconds())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
