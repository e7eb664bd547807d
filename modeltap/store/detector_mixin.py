"""The part of ``SqlStore`` the detectors use: typed reads, bookkeeping, job ownership."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from modeltap.schema import DetectorResult, DetectorRun, LatestValue, RunHealth, WindowRecord, utc
from modeltap.store.engine import WRITE, translate_errors
from modeltap.store.queries import binary_arrays, exported, json_rows, runs
from modeltap.store.queries import detectors as q
from modeltap.store.tables import predictions, requests

if TYPE_CHECKING:
    import pandas as pd


def _row_query(
    model: str,
    start: datetime,
    end: datetime,
    features: tuple[Sequence[str], Sequence[str]],
    extras: tuple[bool, bool],
) -> q.RowQuery:
    """The query of ``read_rows``: ``features`` is (numerical, categorical), ``extras`` is
    (with labels, with class scores)."""
    numerical, categorical = features
    with_labels, class_scores = extras
    q.check_feature_names([*numerical, *categorical])
    return q.RowQuery(
        model,
        utc(start),
        utc(end),
        numerical,
        categorical,
        with_labels,
        class_scores=class_scores,
    )


class DetectorStore:
    """Mixed into ``SqlStore``; needs its ``_engine`` and ``_postgres``."""

    _engine: Engine
    _postgres: bool

    def upsert_results(self, results: Sequence[DetectorResult]) -> int:  # provided by SqlStore
        raise NotImplementedError

    def read_rows(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        with_labels: bool = False,
        class_scores: bool = False,
        expected: int = 0,
    ) -> pd.DataFrame:
        query = _row_query(model, start, end, (numerical, categorical), (with_labels, class_scores))
        return self._rows_frame(query, expected)

    def read_rows_counted(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        with_labels: bool = False,
        class_scores: bool = False,
        expected: int = 0,
    ) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
        """``read_rows`` and ``type_violations`` of those features, in one pass on PostgreSQL."""
        query = _row_query(model, start, end, (numerical, categorical), (with_labels, class_scores))
        if not self._postgres:  # small by design: two passes, each as it always was
            kinds = dict.fromkeys(numerical, "numerical")
            kinds |= dict.fromkeys(categorical, "categorical")
            return self._rows_frame(query, expected), self.type_violations(model, start, end, kinds)
        with translate_errors(self._engine), self._engine.connect() as connection:
            frame = json_rows.json_frame(connection, query, expected)
            if frame is not None:  # every value of its configured type: nothing to count
                return frame, json_rows.no_violations(frame, query)
            marked = replace(query, marked=True)
            frame = q.copy_frame(
                connection, q.postgres_rows_query(marked), marked.names, marked.dtypes
            )
        return frame, q.unmark(frame, marked)

    def _rows_frame(self, query: q.RowQuery, expected: int) -> pd.DataFrame:
        with translate_errors(self._engine), self._engine.connect() as connection:
            if self._postgres:
                frame = json_rows.json_frame(connection, query, expected)
                if frame is not None:
                    return frame
                return q.copy_frame(
                    connection, q.postgres_rows_query(query), query.names, query.dtypes
                )
            rows = connection.execute(q.sqlite_rows_statement(query)).all()
        return q.sqlite_frame(rows, query.names, query.dtypes)

    def read_serving(self, model: str, start: datetime, end: datetime) -> pd.DataFrame:
        with translate_errors(self._engine), self._engine.connect() as connection:
            if self._postgres:
                frame = binary_arrays.serving_frame(connection, model, utc(start), utc(end))
            else:
                statement = (
                    q.select_serving()
                    .where(requests.c.model == model)
                    .where(requests.c.ts >= utc(start), requests.c.ts < utc(end))
                )
                rows = connection.execute(statement).all()
                frame = q.sqlite_frame(
                    rows, q.SERVING_NAMES, {**q.SERVING_TYPES, "upstream_failed": bool}
                )
        frame["upstream_failed"] = frame["upstream_failed"].astype(bool)
        return frame

    def type_violations(
        self, model: str, start: datetime, end: datetime, features: Mapping[str, str]
    ) -> dict[str, dict[str, int]]:
        if not features:
            return {}
        q.check_feature_names(list(features))
        statement = q.violation_statement(self._postgres, model, utc(start), utc(end), features)
        with translate_errors(self._engine), self._engine.connect() as connection:
            rows = connection.execute(statement).all()
        names = list(features)
        return {
            str(row[0]): {name: int(count or 0) for name, count in zip(names, row[1:], strict=True)}
            for row in rows
        }

    def event_counts(
        self, model: str, start: datetime, end: datetime, window: timedelta
    ) -> dict[datetime, tuple[int, int]]:
        seconds = q.whole_seconds(window)
        counts: dict[datetime, list[int]] = {}
        with translate_errors(self._engine), self._engine.connect() as connection:
            for index, table in enumerate((requests, predictions)):
                statement = q.count_statement(
                    self._postgres, table, model, start=utc(start), end=utc(end), seconds=seconds
                )
                for key, count in connection.execute(statement).all():
                    counts.setdefault(q.bucket_start(key, seconds), [0, 0])[index] = int(count)
        return {moment: (pair[0], pair[1]) for moment, pair in counts.items()}

    def labelled_windows(
        self,
        model: str,
        *,
        since: datetime,
        until: datetime,
        earliest: datetime,
        window: timedelta,
    ) -> list[datetime]:
        seconds = q.whole_seconds(window)
        statement = q.labelled_statement(
            self._postgres,
            model,
            since=utc(since),
            until=utc(until),
            earliest=utc(earliest),
            seconds=seconds,
        )
        with translate_errors(self._engine), self._engine.connect() as connection:
            keys = connection.execute(statement).scalars().all()
        return sorted(q.bucket_start(key, seconds) for key in keys)

    def detector_lock(self, model: str, detector: str) -> AbstractContextManager[bool]:
        return runs.advisory_lock(self._engine, model, detector)

    def window_records(self, model: str, detector: str, since: datetime) -> list[WindowRecord]:
        with translate_errors(self._engine), self._engine.connect() as connection:
            return runs.window_records(connection, model, detector, utc(since))

    def record_run(self, run: DetectorRun) -> None:
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                runs.insert_run(connection, run)

    def last_ok_as_of(self, model: str, detector: str) -> datetime | None:
        with translate_errors(self._engine), self._engine.connect() as connection:
            return runs.last_ok_as_of(connection, model, detector)

    def run_health(self, model: str | None = None) -> list[RunHealth]:
        with translate_errors(self._engine), self._engine.connect() as connection:
            return runs.run_health(connection, model)

    def runs_since(self, since: datetime) -> list[DetectorRun]:
        with translate_errors(self._engine), self._engine.connect() as connection:
            return runs.runs_since(connection, utc(since))

    def latest_values(self, since: datetime) -> list[LatestValue]:
        with translate_errors(self._engine), self._engine.connect() as connection:
            return exported.latest_values(connection, utc(since))
