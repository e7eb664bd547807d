"""Small builders shared by the four dashboards: data source, variables, panels, layout.

Every panel queries the one Prometheus data source (uid ``exporter.datasource_uid``) with
``$model`` and ``$version`` from the dashboard's variables; thresholds come from the same
configuration the detectors and the alert rules read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

P = TypeVar("P")

MODEL = 'model="$model"'
SCOPE = 'model="$model",version=~"$version"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    """One PromQL target and how its series are named in the legend."""

    expr: str
    legend: str = ""


@dataclass
class Layout:
    """Places panels left to right, top to bottom, on Grafana's 24-column grid."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    placed: list[Any] = field(default_factory=list)

    def place(self, panel: Any, width: int = 12, height: int = 8) -> None:
        if self.x + width > 24:
            self.x, self.y = 0, self.y + self.row_height
            self.row_height = 0
        panel.grid_pos(models.GridPos(h=height, w=width, x=self.x, y=self.y))
        panel.id_val = len(self.placed) + 1
        self.placed.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)


def datasource(uid: str) -> models.DataSourceRef:
    return models.DataSourceRef(type_val="prometheus", uid=uid)


def variables(uid: str, metric: str) -> list[Any]:
    """``$model`` (one) and ``$version`` (any of the model's, all by default) from ``metric``."""
    source = datasource(uid)
    refresh = models.VariableRefresh.ON_TIME_RANGE_CHANGED
    return [
        builders.QueryVariable("model")
        .label("Model")
        .datasource(source)
        .query(f"label_values({metric}, model)")
        .refresh(refresh)
        .sort(models.VariableSort.ALPHABETICAL_ASC),
        builders.QueryVariable("version")
        .label("Version")
        .datasource(source)
        .query(f"label_values({metric}{{{MODEL}}}, version)")
        .refresh(refresh)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*"),
    ]


def thresholds(
    limit: float | None, *, bad_below: bool = False, colour: str = "red"
) -> builders.ThresholdsConfig:
    """Green on the good side of ``limit``, ``colour`` past it (no limit: all green)."""
    # Grafana reads the first step as the base whatever its value; the strict schema wants a
    # number there, and nothing shown on these dashboards goes below zero.
    steps = [models.Threshold(value=0.0, color="red" if bad_below and limit else "green")]
    if limit is not None:
        steps.append(models.Threshold(value=limit, color="green" if bad_below else colour))
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)


def _targets(panel: P, uid: str, queries: Sequence[Query], *, instant: bool = False) -> P:
    builder: Any = panel  # every panel builder has datasource() and with_target()
    builder.datasource(datasource(uid))
    for index, query in enumerate(queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + index))
        if query.legend:
            target.legend_format(query.legend)
        if instant:
            target.instant().format(PromQueryFormat.TABLE)
        builder.with_target(target)
    return panel


def graph(
    uid: str,
    title: str,
    queries: Sequence[Query],
    *,
    unit: str,
    description: str = "",
    limit: float | None = None,
    bad_below: bool = False,
    stack: bool = False,
    dashed: Sequence[str] = (),
) -> timeseries.Panel:
    """A time series; a threshold is drawn as a dashed line with the bad side shaded.

    ``dashed`` names queries (by ref id, "B") drawn as dashed lines: thresholds that are
    series themselves (learned per model and version), which a fixed ``limit`` cannot draw.
    """
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .thresholds(thresholds(limit, bad_below=bad_below))
        .color_scheme(builders.FieldColor().mode(models.FieldColorModeId.PALETTE_CLASSIC))
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if limit is not None:
        panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED_AND_AREA
            )
        )
    if stack:
        panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for ref_id in dashed:
        style = models.DynamicConfigValue(
            id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
        )
        panel.override_by_query(ref_id, [style])
    return _targets(panel, uid, queries)


def single(
    uid: str,
    title: str,
    query: Query,
    *,
    unit: str,
    limit: float | None = None,
    bad_below: bool = False,
) -> stat.Panel:
    """One number, coloured by its threshold."""
    panel = (
        stat.Panel()
        .title(title)
        .unit(unit)
        .thresholds(thresholds(limit, bad_below=bad_below))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    return _targets(panel, uid, [query])


def flags(uid: str, title: str, query: Query, description: str = "") -> statetimeline.Panel:
    """A state timeline of 0/1 flags: green "ok", red "drifted"."""
    mapping = models.ValueMap(
        options={
            "0": models.ValueMappingResult(text="ok", color="green", index=0),
            "1": models.ValueMappingResult(text="drifted", color="red", index=1),
        },
    )
    panel = (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .unit("none")
        .mappings([mapping])
        .thresholds(thresholds(1.0))
        .show_value(common.VisibilityMode.NEVER)
        # Grafana's defaults, written out: the SDK fills them in when it reads the JSON back.
        .line_width(0)
        .fill_opacity(70)
    )
    return _targets(panel, uid, [query])


def listing(uid: str, title: str, queries: Sequence[Query], *, unit: str = "none") -> table.Panel:
    """The newest value of each series as a table (instant queries, merged by labels)."""
    # align and inspect are Grafana's defaults, written out so the JSON reads back unchanged.
    panel = table.Panel().title(title).unit(unit).decimals(4).align(common.FieldTextAlignment.AUTO)
    panel.inspect(False)
    # One row per series with every query's value beside it.
    panel.with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
    return _targets(panel, uid, queries, instant=True)


def dashboard(
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    *,
    layout: Layout,
    datasource_uid: str,
    variables_from: str,
) -> models.Dashboard:
    """The finished dashboard: its panels as laid out, model/version picked from a metric."""
    board = (
        builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["modeltap", *tags])
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
    )
    for variable in variables(datasource_uid, variables_from):
        board.with_variable(variable)
    for panel in layout.placed:
        board.with_panel(panel)
    return board.build()
