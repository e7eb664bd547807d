"""The four dashboards as Grafana JSON, and the files that provision them.

``monitor dashboards export DIR`` writes what ``dashboards/grafana/`` holds (generated from
``config.example.yaml``; a test keeps it current):

    DIR/modeltap-overview.json, modeltap-drift.json, modeltap-performance.json,
        modeltap-health.json
    DIR/provisioning/datasources/modeltap.yaml   the Prometheus data source, with its uid
    DIR/provisioning/dashboards/modeltap.yaml    a file provider for the JSON above
    DIR/provisioning/alerting/modeltap.yaml      Grafana-managed alert rules (same thresholds)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from exporters.dashboards import drift, health, overview, performance
from exporters.dashboards.alerting import alert_provisioning
from modeltap.config import MonitorConfig

BOARDS: dict[str, Callable[[MonitorConfig], Dashboard]] = {
    "modeltap-overview": overview.build,
    "modeltap-drift": drift.build,
    "modeltap-performance": performance.build,
    "modeltap-health": health.build,
}
FOLDER = "modeltap"


def as_json(board: Dashboard) -> dict[str, Any]:
    """A dashboard model as the JSON Grafana stores."""
    data: dict[str, Any] = json.loads(json.dumps(board, cls=JSONEncoder))
    return data


def dashboards(config: MonitorConfig) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON by uid.

    >>> sorted(dashboards(MonitorConfig()))
    ['modeltap-drift', 'modeltap-health', 'modeltap-overview', 'modeltap-performance']
    """
    return {uid: as_json(build(config)) for uid, build in BOARDS.items()}


def provisioning(
    config: MonitorConfig, *, prometheus_url: str, dashboards_path: str
) -> dict[str, dict[str, Any]]:
    """The provisioning files by relative path."""
    return {
        "datasources/modeltap.yaml": {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": "Prometheus (modeltap)",
                    "type": "prometheus",
                    "uid": config.exporter.datasource_uid,
                    "access": "proxy",
                    "url": prometheus_url,
                    "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
                }
            ],
        },
        "dashboards/modeltap.yaml": {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "modeltap",
                    "folder": FOLDER,
                    "type": "file",
                    "disableDeletion": False,
                    "allowUiUpdates": False,
                    "updateIntervalSeconds": 60,
                    "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
                }
            ],
        },
        "alerting/modeltap.yaml": alert_provisioning(config, folder=FOLDER),
    }


def export(
    config: MonitorConfig,
    directory: Path,
    *,
    prometheus_url: str = "http://prometheus:9090",
    dashboards_path: str = "/var/lib/grafana/dashboards/modeltap",
) -> list[Path]:
    """Write the dashboards and provisioning files under ``directory``; returns the paths."""
    written = []
    for uid, board in dashboards(config).items():
        path = directory / f"{uid}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(board, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        written.append(path)
    files = provisioning(config, prometheus_url=prometheus_url, dashboards_path=dashboards_path)
    for relative, document in files.items():
        path = directory / "provisioning" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(document, sort_keys=False, width=10_000, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
