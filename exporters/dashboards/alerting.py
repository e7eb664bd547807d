"""Grafana-managed alert rules: the Prometheus alerts again, for Grafana's own alerting.

Each rule queries the Prometheus data source for the alert's expression without its
comparison (A), takes the last value (B) and compares it with the same threshold (C), so
the numbers are the configuration's, as in the Prometheus rules. An expression that is not
a plain ``left <op> number`` (the spool's ``... and deriv(...) > 0``) is kept whole and
alerts whenever it returns a series.
"""

from __future__ import annotations

import re
from typing import Any

from exporters.rules import rule_groups
from modeltap.config import MonitorConfig

_COMPARISON = re.compile(r"^(?P<left>.+?) (?P<op>>=|<=|==|>|<) (?P<value>-?[0-9.]+(?:e-?\d+)?)$")
_OPS = {">": "gt", "<": "lt", ">=": "gte", "<=": "lte", "==": "eq"}
EXPRESSIONS = {"type": "__expr__", "uid": "__expr__"}


def split(expr: str) -> tuple[str, str, float]:
    """(query, Grafana evaluator, threshold) for a rule expression.

    >>> split("modeltap_label_coverage_ratio < 0.3")
    ('modeltap_label_coverage_ratio', 'lt', 0.3)
    >>> split("a > 0 and deriv(a[10m]) > 0")
    ('(a > 0 and deriv(a[10m]) > 0) * 0 + 1', 'gt', 0.0)
    """
    match = _COMPARISON.match(expr)
    if match is None or re.search(r" (and|or|unless) |[<>=]=? ", match.group("left")):
        return f"({expr}) * 0 + 1", "gt", 0.0
    return match.group("left"), _OPS[match.group("op")], float(match.group("value"))


def grafana_rules(config: MonitorConfig, *, folder_uid: str) -> list[dict[str, Any]]:
    """Rule groups in the shape of Grafana's alerting API (checked against its schema)."""
    source = config.exporter.datasource_uid
    groups = []
    for group in rule_groups(config):
        rules = []
        for index, rule in enumerate(group["rules"]):
            query, evaluator, threshold = split(rule["expr"])
            annotations = {
                key: value.replace("$value", "$values.B.Value")
                for key, value in rule["annotations"].items()
            }
            rules.append(
                {
                    "uid": f"mt-{rule['alert'].lower().removeprefix('modeltap')}-{index}"[:40],
                    "title": rule["alert"],
                    "folderUID": folder_uid,
                    "ruleGroup": group["name"],
                    "orgID": 1,
                    "condition": "C",
                    "data": [
                        {
                            "refId": "A",
                            "datasourceUid": source,
                            "relativeTimeRange": {"from": 900, "to": 0},
                            "model": {
                                "refId": "A",
                                "expr": query,
                                "instant": True,
                                "datasource": {"type": "prometheus", "uid": source},
                            },
                        },
                        _expression("B", {"type": "reduce", "expression": "A", "reducer": "last"}),
                        _expression(
                            "C",
                            {
                                "type": "threshold",
                                "expression": "B",
                                "conditions": [
                                    {"evaluator": {"type": evaluator, "params": [threshold]}}
                                ],
                            },
                        ),
                    ],
                    "noDataState": "OK",
                    "execErrState": "Error",
                    "for": rule["for"],
                    "labels": rule["labels"],
                    "annotations": annotations,
                }
            )
        # The API counts the group's evaluation interval in seconds.
        groups.append({"title": group["name"], "folderUid": folder_uid, "interval": 60,
                       "rules": rules})  # fmt: skip
    return groups


def _expression(ref: str, model: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasourceUid": "__expr__",
        "relativeTimeRange": {"from": 0, "to": 0},
        "model": {"refId": ref, "datasource": EXPRESSIONS, **model},
    }


_API_ONLY = ("folderUID", "ruleGroup", "orgID")


def alert_provisioning(config: MonitorConfig, *, folder: str) -> dict[str, Any]:
    """The provisioning file (``provisioning/alerting/``): the same rules in file form."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": group["title"],
                "folder": folder,
                "interval": f"{group['interval']}s",
                "rules": [
                    {key: value for key, value in rule.items() if key not in _API_ONLY}
                    for rule in group["rules"]
                ],
            }
            for group in grafana_rules(config, folder_uid=folder)
        ],
    }
