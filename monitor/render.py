"""Detector results for people and machines: a rich table, JSON, and JUnit XML for CI."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from modeltap.codec import dumps
from modeltap.schema import DRIFT_TESTS, FAMILIES, DetectorResult

if TYPE_CHECKING:
    from detectors.runner import JobOutcome

# Raw tests behind each feature's drift flag: stored, and shown with --all, not in the summary.
RAW_TESTS = frozenset(DRIFT_TESTS)
QUALITY = ("missing_ratio", "type_violation_share", "out_of_range_share", "unseen_category_share")
MULTIVARIATE = ("reconstruction_error", "domain_classifier")
ORDER = {name: index for index, name in enumerate(FAMILIES)}


@dataclass(frozen=True, slots=True)
class Summary:
    """How many results there are, how many alert (fail) and how many had too little data."""

    total: int
    failed: int
    skipped: int

    @property
    def passed(self) -> int:
        return self.total - self.failed - self.skipped


def deciding(result: DetectorResult) -> bool:
    """Whether a result is a verdict of its own. A feature's raw drift tests are evidence
    for its ``feature_drift`` result, which applies the configured method: counting them too
    would fail a gate on a test the configuration did not choose, and a feature thrice.
    """
    return result.detector not in RAW_TESTS


def failed(result: DetectorResult) -> bool:
    return result.alert or result.status == "error"


def summarise(results: Sequence[DetectorResult]) -> Summary:
    """Counts over the deciding results (see :func:`deciding`)."""
    counted = [r for r in results if deciding(r)]
    skipped = sum(1 for r in counted if r.status == "insufficient_data")
    return Summary(len(counted), sum(1 for r in counted if failed(r)), skipped)


def number(value: float | None) -> str:
    """Four significant digits; very small p-values in scientific notation.

    >>> number(0.000012345), number(12.3456), number(None)
    ('1.234e-05', '12.35', '-')
    """
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.4g}"


def verdict(result: DetectorResult) -> str:
    if result.status == "insufficient_data":
        return "[dim]insufficient data[/]"
    if result.status == "error":
        return "[red]error[/]"
    return "[bold red]ALERT[/]" if result.alert else "[green]ok[/]"


def table(
    results: Sequence[DetectorResult], title: str, *, versions: bool = True, windows: bool = False
) -> Table:
    """One row per result: what, where, the number, its threshold and which way is bad."""
    view = Table(title=title, title_justify="left")
    columns = [
        "detector",
        "feature",
        "segment",
        "score",
        "statistic",
        "threshold",
        "worse",
        "n",
        "",
    ]
    if versions:
        columns.insert(0, "version")
    if windows:
        columns.insert(0, "window (UTC)")
    # Why a result has no number (no reference, too few rows, ...): only when one has a reason.
    reasons = any(reason(r) for r in results)
    for name in columns:
        numeric = name in ("score", "statistic", "threshold", "n")
        view.add_column(name, justify="right" if numeric else "left", no_wrap=True)
    if reasons:
        view.add_column("why", overflow="fold")
    for r in results:
        cells = [
            r.detector,
            r.feature,
            r.segment,
            number(r.score),
            number(r.statistic),
            number(r.threshold),
            {"lower": "lower", "higher": "higher"}.get(r.direction or "", "-"),
            "-" if r.current_size is None else str(r.current_size),
            verdict(r),
        ]
        row = [r.version or "-", *cells] if versions else cells
        if windows:
            row = [f"{r.window_start:%Y-%m-%d %H:%M}..{r.window_end:%H:%M}", *row]
        view.add_row(*([*row, reason(r)] if reasons else row))
    return view


def reason(result: DetectorResult) -> str:
    """Why a result could not be computed, as its detector wrote it; empty when it was."""
    if result.status == "ok":
        return ""
    return str(result.details.get("reason") or result.details.get("error") or "")


def as_dict(result: DetectorResult) -> dict[str, Any]:
    """A result as JSON-ready data; ``drifted`` is its alert flag."""
    return {
        "model": result.model,
        "version": result.version,
        "detector": result.detector,
        "feature": result.feature,
        "segment": result.segment,
        "status": result.status,
        "score": result.score,
        "statistic": result.statistic,
        "threshold": result.threshold,
        "direction": result.direction,
        "drifted": result.alert,
        "deciding": deciding(result),
        "reference_size": result.reference_size,
        "current_size": result.current_size,
        "details": dict(result.details),
    }


def to_json(results: Sequence[DetectorResult]) -> str:
    """Every result and a summary, as one JSON document (NaN and infinities as null)."""
    counts = summarise(results)
    document = {
        "summary": {
            "total": counts.total,
            "passed": counts.passed,
            "failed": counts.failed,
            "insufficient_data": counts.skipped,
        },
        "results": [as_dict(result) for result in results],
    }
    return json.dumps(json.loads(dumps(document)), indent=2)


def to_junit(
    results: Sequence[DetectorResult], suite: str, *, insufficient_fails: bool = False
) -> str:
    """JUnit XML: a test case per deciding result; alerts fail, and insufficient data is
    skipped, or fails when ``insufficient_fails`` (a gate that could not decide)."""
    counts = summarise(results)
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(counts.total),
        failures=str(counts.failed + (counts.skipped if insufficient_fails else 0)),
        skipped="0" if insufficient_fails else str(counts.skipped),
        errors="0",
    )
    for r in results:
        if not deciding(r):
            continue
        name = " ".join(part for part in (r.feature or "-", r.segment) if part)
        case = ET.SubElement(root, "testcase", classname=f"{suite}.{r.detector}", name=name)
        described = (
            f"{r.detector} {name}: score {number(r.score)}, threshold {number(r.threshold)}, "
            f"drift when {r.direction or '-'}"
        )
        if r.status == "insufficient_data":
            reason = str(r.details.get("reason", "insufficient data"))
            ET.SubElement(case, "failure" if insufficient_fails else "skipped", message=reason)
        elif r.alert or r.status == "error":
            failure = ET.SubElement(case, "failure", message=described, type=r.detector)
            failure.text = dumps(as_dict(r))
        ET.SubElement(case, "system-out").text = described
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def print_outcomes(
    outcomes: Sequence[JobOutcome],
    console: Console,
    *,
    show_all: bool = False,
    stored: Callable[[str], Sequence[DetectorResult]] | None = None,
) -> None:
    """What each job did, then a table of each model's newest complete window: of this run's
    results, or when no window was due, of those ``stored(model)`` already holds."""
    for model in dict.fromkeys(outcome.model for outcome in outcomes):
        mine = [outcome for outcome in outcomes if outcome.model == model]
        for outcome in mine:
            windows = outcome.windows
            span = (
                f"{windows[0].start:%Y-%m-%d %H:%M} .. {windows[-1].end:%H:%M}" if windows else "-"
            )
            state = {
                "ok": "[green]ok[/]",
                "error": "[red]failed[/]",
                "skipped": "[dim]owned elsewhere[/]",
            }
            console.print(
                f"{model}/{outcome.detector}: {state[outcome.status]}, {len(windows)} window(s) "
                f"{span}, {len(outcome.results)} result(s), {outcome.duration_ms:.0f} ms"
                + (f"\n  [red]{outcome.error}[/]" if outcome.error else "")
            )
        results = [result for outcome in mine for result in outcome.results]
        origin = ""
        if not results and stored is not None:
            results = list(stored(model))
            origin = " (stored earlier; no window was due)"
        newest = _newest_complete(results)
        if newest is None:
            console.print(f"{model}: nothing computed, and no stored results for this time")
            continue
        shown = sorted(
            (
                r
                for r in results
                if (r.window_start, r.window_end) == newest and (show_all or _summary(r))
            ),
            key=lambda r: (
                r.version,
                ORDER.get(family(r.detector), 9),
                r.detector,
                r.feature,
                r.segment,
            ),
        )
        partial = any(r.details.get("partial") for r in shown)
        title = (
            f"{model}: {newest[0]:%Y-%m-%d %H:%M} .. {newest[1]:%H:%M} UTC"
            f"{' (open window, so far)' if partial else ''}{origin}"
            f"{'' if show_all else ' (summary; --all for every test, segment and feature)'}"
        )
        console.print(table(shown, title))


def _newest_complete(results: Sequence[DetectorResult]) -> tuple[object, object] | None:
    complete = [(r.window_start, r.window_end) for r in results if not r.details.get("partial")]
    every = [(r.window_start, r.window_end) for r in results]
    pool = complete or every
    return max(pool) if pool else None


def _summary(result: DetectorResult) -> bool:
    if result.segment or result.detector in RAW_TESTS:
        return False
    if result.detector in QUALITY:
        return result.alert or bool(result.score)
    return True


def family(detector: str) -> str:
    """The family a result row comes from, by its detector's name."""
    prefixes = {"ab_": "ab", "estimated_": "estimation", "realized_": "estimation"}
    for prefix, name in prefixes.items():
        if detector.startswith(prefix):
            return name
    if detector.startswith(("latency", "error_rate", "throughput")):
        return "operations"
    if detector.endswith("_drift") or detector in RAW_TESTS:
        return "drift"
    if detector in QUALITY:
        return "quality"
    return "multivariate" if detector in MULTIVARIATE else "performance"
