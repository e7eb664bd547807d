"""Push the dashboards to a running Grafana through its HTTP API (grafana-client).

Idempotent: the folder is created only when missing, and every dashboard is saved with
``overwrite: true`` under its fixed uid, so pushing twice leaves one copy of each. The
data source uid the dashboards were generated with is replaced by the target Grafana's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modeltap.errors import InputError, ModeltapError, TransportUnavailableError
from modeltap.extras import require


@dataclass(frozen=True, slots=True)
class Pushed:
    """What one dashboard push did."""

    uid: str
    version: int | None
    url: str | None


def map_datasource(board: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    """The dashboard with every reference to data source uid ``old`` pointing at ``new``.

    >>> map_datasource({"panels": [{"datasource": {"uid": "a"}}]}, "a", "b")
    {'panels': [{'datasource': {'uid': 'b'}}]}
    """

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: walk(value) for key, value in node.items()}
            if out.get("uid") == old and ("type" in out or set(out) == {"uid"}):
                out["uid"] = new
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    mapped: dict[str, Any] = walk(json.loads(json.dumps(board)))
    return mapped


def push(
    boards: Mapping[str, Mapping[str, Any]],
    *,
    url: str,
    token: str,
    folder: str | None,
    datasource_from: str,
    datasource_to: str | None,
    timeout: float = 30.0,
) -> list[Pushed]:
    """Create the folder if needed, then save every dashboard with overwrite."""
    client = require("grafana_client", feature="monitor dashboards push", extra="grafana")
    errors = require("grafana_client.client", feature="monitor dashboards push", extra="grafana")
    api = client.GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        folder_uid = _folder(api, errors, folder) if folder else None
        done = []
        for uid, board in boards.items():
            body = (
                dict(board)
                if datasource_to is None
                else map_datasource(board, datasource_from, datasource_to)
            )
            body.pop("id", None)
            payload: dict[str, Any] = {
                "dashboard": body,
                "overwrite": True,
                "message": "modeltap dashboards push",
            }
            if folder_uid is not None:
                payload["folderUid"] = folder_uid
            answer = api.dashboard.update_dashboard(payload)
            done.append(Pushed(uid, answer.get("version"), answer.get("url")))
        return done
    except errors.GrafanaUnauthorizedError:
        raise InputError(f"Grafana at {url} refused the token (401); check --token") from None
    except errors.GrafanaClientError as error:
        raise ModeltapError(f"Grafana at {url} refused the request: {error.message}") from None
    except errors.GrafanaException as error:
        raise ModeltapError(f"Grafana at {url} failed: {error}") from None
    except OSError as error:
        raise TransportUnavailableError(f"cannot reach Grafana at {url}: {error}") from None


def _folder(api: Any, errors: Any, title: str) -> str:
    """The uid of the folder titled ``title`` (its uid derived from it), created if missing."""
    uid = "".join(c if c.isalnum() or c in "-_" else "-" for c in title.lower())[:40]
    try:
        found: dict[str, Any] = api.folder.get_folder(uid)
        return str(found["uid"])
    except errors.GrafanaClientError as error:
        if error.status_code != 404:
            raise
    created: dict[str, Any] = api.folder.create_folder(title, uid=uid)
    return str(created["uid"])
