"""The SQL store: one implementation of ``Store`` for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from modeltap.codec import dumps
from modeltap.errors import InputError, StorageDataError, StorageError
from modeltap.schema import (
    DetectorResult,
    EventBatch,
    JsonValue,
    LabelRecord,
    PredictionRecord,
    PurgeSummary,
    ReferenceProfile,
    RequestRecord,
    WindowRecord,
    WriteSummary,
    utc,
)
from modeltap.store.detector_mixin import DetectorStore
from modeltap.store.engine import WRITE, make_engine, translate_errors
from modeltap.store.migrate import current_revision, head_revision, require_current, upgrade
from modeltap.store.packing import packed
from modeltap.store.pairing_mixin import PairingStore
from modeltap.store.protocol import REQUEST_COLUMNS
from modeltap.store.queries import runs
from modeltap.store.queries.results import KEY as _RESULT_KEY
from modeltap.store.queries.results import upsert_postgres
from modeltap.store.sqlite import sqlite_insert_ignore
from modeltap.store.tables import (
    detector_results,
    detector_runs,
    detector_windows,
    labels,
    predictions,
    reference_profiles,
    requests,
)

if TYPE_CHECKING:
    import pandas as pd

    from modeltap.store.postgres import Partitions

_IN_CHUNK = 500  # keys per IN (...) list; SQLite caps bound parameters per statement


def _request_row(record: RequestRecord) -> tuple[Any, ...]:
    return (
        record.event_id,
        utc(record.ts),
        record.request_id,
        record.model,
        record.version,
        record.latency_ms,
        record.upstream_latency_ms,
        record.status_code,
        record.request_bytes,
        record.response_bytes,
        record.error,
        record.capture_note,
    )


def _prediction_row(record: PredictionRecord) -> tuple[Any, ...]:
    return (
        record.event_id,
        record.row_index,
        utc(record.ts),
        record.request_id,
        record.model,
        record.version,
        record.label_key,
        record.instance_id,
        dict(record.features),
        record.prediction,
        record.score,
        record.class_scores,
        *packed(record.features),
    )


def open_store(url: str, *, pool_size: int = 5, parallel_queries: bool = True) -> SqlStore:
    """The store as every command and sink opens it.

    The embedded SQLite database upgrades itself (a laptop has nobody to run ``monitor db
    upgrade``); PostgreSQL, shared by many processes, does not: upgrading it is a deliberate
    step, and an old schema is an error that says to run it.
    """
    return SqlStore.open(
        url,
        pool_size=pool_size,
        migrate=url.startswith("sqlite"),
        parallel_queries=parallel_queries,
    )


class SqlStore(DetectorStore, PairingStore):
    """Store on SQLAlchemy; PostgreSQL gets COPY and daily partitions, SQLite WAL.

    >>> store = SqlStore.open("sqlite:///:memory:", migrate=True)
    >>> store.write(EventBatch()).requests_written
    0
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._partitions: Partitions | None = None
        if self._postgres:
            # Imported here: PostgreSQL's driver has no business in a SQLite sidecar's memory.
            from modeltap.store.postgres import Partitions  # noqa: PLC0415

            self._partitions = Partitions(engine)

    @classmethod
    def open(
        cls, url: str, *, pool_size: int = 5, migrate: bool = False, parallel_queries: bool = True
    ) -> SqlStore:
        """Connect; ``migrate`` upgrades the schema, otherwise an old schema is an error.
        ``parallel_queries``: see ``make_engine``."""
        engine = make_engine(url, pool_size=pool_size, parallel_queries=parallel_queries)
        if migrate and current_revision(engine) != head_revision():
            upgrade(engine)
        else:
            require_current(engine)
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def ping(self) -> None:
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    # -- writes -------------------------------------------------------------------------

    def write(self, batch: EventBatch) -> WriteSummary:
        if not len(batch):
            return WriteSummary()
        # A naive datetime is refused here, as the caller's mistake (ValueError).
        request_rows = [_request_row(record) for record in batch.requests]
        prediction_rows = [_prediction_row(record) for record in batch.predictions]
        label_records = list({record.label_key: record for record in batch.labels}.values())
        try:
            try:
                return self._write(request_rows, prediction_rows, label_records)
            except StorageError as error:
                if self._partitions is None or "no partition of relation" not in str(error):
                    raise
                # A partition this process thought existed was dropped by a purge elsewhere.
                self._partitions.forget()
                return self._write(request_rows, prediction_rows, label_records)
        except (ValueError, OverflowError) as error:
            # What the drivers raise for values they cannot even send (an integer past 64
            # bits, a naive time, undecodable text): the data's fault, like a DataError.
            raise StorageDataError(f"the database cannot take this data: {error}") from error

    def _write(
        self,
        request_rows: list[tuple[Any, ...]],
        prediction_rows: list[tuple[Any, ...]],
        label_records: list[LabelRecord],
    ) -> WriteSummary:
        with translate_errors(self._engine):
            if self._partitions is not None:
                self._partitions.ensure(row[1] for row in request_rows)
                self._partitions.ensure(row[2] for row in prediction_rows)
            with self._engine.connect() as connection:
                connection.execution_options(**{WRITE: True})
                with connection.begin():
                    added_requests = self._insert_ignore(connection, requests, request_rows)
                    added_predictions = self._insert_ignore(
                        connection, predictions, prediction_rows
                    )
                    written, updated, unmatched = self._upsert_labels(connection, label_records)
        return WriteSummary(
            requests_written=added_requests,
            requests_duplicate=len(request_rows) - added_requests,
            predictions_written=added_predictions,
            predictions_duplicate=len(prediction_rows) - added_predictions,
            labels_written=written,
            labels_updated=updated,
            labels_unmatched=unmatched,
        )

    def _insert_ignore(
        self, connection: Connection, table: Table, rows: list[tuple[Any, ...]]
    ) -> int:
        if not rows:
            return 0
        json_columns = [column.name for column in table.columns if column.name in _JSON_COLUMNS]
        if self._postgres:
            from modeltap.store.postgres import copy_insert_ignore  # noqa: PLC0415 - see __init__

            return copy_insert_ignore(connection, table, rows, json_columns, dumps)
        return sqlite_insert_ignore(connection, table, rows, json_columns)

    def _upsert_labels(
        self, connection: Connection, records: list[LabelRecord]
    ) -> tuple[int, int, int]:
        """Upsert ``records``: how many were new, how many replaced a stored label, and how
        many match no stored prediction (yet: a prediction logged later still joins)."""
        if not records:
            return 0, 0, 0
        keys = [record.label_key for record in records]
        existing: set[str] = set()
        predicted: set[str] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            existing.update(
                connection.execute(
                    select(labels.c.label_key).where(labels.c.label_key.in_(chunk))
                ).scalars()
            )
            predicted.update(
                connection.execute(
                    select(predictions.c.label_key)
                    .where(predictions.c.label_key.in_(chunk))
                    .distinct()
                ).scalars()
            )
        rows = [
            {
                "label_key": record.label_key,
                "request_id": record.request_id,
                "row_index": record.row_index,
                "instance_id": record.instance_id,
                "model": record.model,
                "value": record.value,
                "ts": utc(record.ts),
                "received_at": utc(record.received_at),
            }
            for record in records
        ]
        statement = self._insert(labels)
        statement = statement.on_conflict_do_update(
            index_elements=["label_key"],
            set_={name: statement.excluded[name] for name in rows[0] if name != "label_key"},
        )
        connection.execute(statement, rows)
        updated = sum(1 for key in keys if key in existing)
        unmatched = sum(1 for key in keys if key not in predicted)
        return len(keys) - updated, updated, unmatched

    def _insert(self, table: Table) -> Any:
        return (pg_insert if self._postgres else sqlite_insert)(table)

    # -- reads --------------------------------------------------------------------------

    def read_requests(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        version: str | None = None,
        columns: Sequence[str] = REQUEST_COLUMNS,
    ) -> pd.DataFrame:
        unknown = [name for name in columns if name not in REQUEST_COLUMNS]
        if unknown:
            raise InputError(
                f"unknown request column(s) {', '.join(unknown)}; "
                f"choose from {', '.join(REQUEST_COLUMNS)}"
            )
        condition = and_(requests.c.model == model, requests.c.ts >= start, requests.c.ts < end)
        if version is not None:
            condition = and_(condition, requests.c.version == version)
        statement = (
            select(*(requests.c[name] for name in columns)).where(condition).order_by(requests.c.ts)
        )
        return self._frame(statement, list(columns))

    def read_predictions(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        version: str | None = None,
        features: Sequence[str] | None = None,
        with_labels: bool = False,
    ) -> pd.DataFrame:
        table = predictions
        selected: list[Any] = [
            table.c.event_id,
            table.c.row_index,
            table.c.request_id,
            table.c.instance_id,
            table.c.version,
            table.c.ts,
            table.c.prediction,
            table.c.score,
        ]
        names = [column.name for column in selected]
        if features is None:
            selected.append(table.c.features)
            names.append("features")
        else:
            quoted = [name for name in features if '"' in name]
            if quoted:
                raise InputError(
                    f"feature name(s) {', '.join(quoted)} contain a double quote, which "
                    "SQLite's JSON paths cannot address; rename the feature"
                )
            # Projected in SQL: only the asked-for keys leave the database.
            selected.extend(self._feature(name) for name in features)
            names.extend(f"feature:{name}" if name in names else name for name in features)
        condition = and_(table.c.model == model, table.c.ts >= start, table.c.ts < end)
        if version is not None:
            condition = and_(condition, table.c.version == version)
        source: Any = table
        if with_labels:
            source = table.outerjoin(labels, labels.c.label_key == table.c.label_key)
            selected.extend([labels.c.value, labels.c.ts, labels.c.received_at])
            names.extend(["label", "label_ts", "label_received_at"])
        statement = (
            select(*selected)
            .select_from(source)
            .where(condition)
            .order_by(table.c.ts, table.c.event_id, table.c.row_index)
        )
        return self._frame(statement, names)

    def _feature(self, name: str) -> Any:
        if self._postgres:
            return predictions.c.features[name]
        # SQLAlchemy's SQLite JSON index goes through json_extract(), which turns true into
        # 1; the -> operator (SQLite 3.38+) returns JSON text, so types survive as on PG.
        return type_coerce(predictions.c.features.op("->")(literal(f'$."{name}"')), JSON)

    def versions(self, model: str, start: datetime, end: datetime) -> list[str]:
        statement = (
            select(requests.c.version)
            .where(requests.c.model == model, requests.c.ts >= start, requests.c.ts < end)
            .distinct()
            .order_by(requests.c.version)
        )
        with translate_errors(self._engine), self._engine.connect() as connection:
            return list(connection.execute(statement).scalars())

    def _frame(self, statement: Any, names: list[str]) -> pd.DataFrame:
        import pandas as pd  # noqa: PLC0415 - keeps pandas off the sidecar's start-up path

        with translate_errors(self._engine), self._engine.connect() as connection:
            rows = [tuple(row) for row in connection.execute(statement)]
        return pd.DataFrame.from_records(rows, columns=names)

    # -- reference profiles -------------------------------------------------------------

    def put_reference(
        self,
        model: str,
        version: str,
        profile: Mapping[str, JsonValue],
        *,
        source: str,
        created_at: datetime,
    ) -> ReferenceProfile:
        for _attempt in range(5):
            try:
                return self._put_reference(model, version, profile, source, created_at)
            except StorageError as error:
                # Two writers picked the same next version; the loser takes the one after.
                if not isinstance(error.__cause__, sa_exc.IntegrityError):
                    raise
        raise StorageError(f"could not store a reference profile for {model}: too much contention")

    def _put_reference(
        self,
        model: str,
        version: str,
        profile: Mapping[str, JsonValue],
        source: str,
        created_at: datetime,
    ) -> ReferenceProfile:
        key = and_(reference_profiles.c.model == model, reference_profiles.c.version == version)
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                latest = connection.execute(
                    select(func.max(reference_profiles.c.profile_version)).where(key)
                ).scalar()
                record = ReferenceProfile(
                    model=model,
                    version=version,
                    profile_version=(latest or 0) + 1,
                    created_at=utc(created_at),
                    source=source,
                    profile=dict(profile),
                )
                connection.execute(
                    reference_profiles.insert().values(
                        model=model,
                        version=version,
                        profile_version=record.profile_version,
                        created_at=record.created_at,
                        source=source,
                        profile=record.profile,
                    )
                )
        return record

    def get_reference(self, model: str, version: str = "") -> ReferenceProfile | None:
        table = reference_profiles
        statement = (
            select(table)
            .where(table.c.model == model, table.c.version == version)
            .order_by(table.c.profile_version.desc())
            .limit(1)
        )
        with translate_errors(self._engine), self._engine.connect() as connection:
            row = connection.execute(statement).mappings().first()
        if row is None:
            return None
        return ReferenceProfile(**row)

    # -- detector results ---------------------------------------------------------------

    def upsert_results(self, results: Sequence[DetectorResult]) -> int:
        rows = _result_rows(results)
        if not rows:
            return 0
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                self._upsert_result_rows(connection, rows)
        return len(rows)

    def save_window(
        self, results: Sequence[DetectorResult], records: Sequence[WindowRecord]
    ) -> None:
        """The results and their window records, in one transaction: a window is never
        recorded as done without its results, nor its results left without the record."""
        rows = _result_rows(results)
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                if rows:
                    self._upsert_result_rows(connection, rows)
                runs.upsert_windows(connection, self._postgres, records)

    def _upsert_result_rows(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        if self._postgres:
            upsert_postgres(connection, rows)
            return
        statement = self._insert(detector_results)
        statement = statement.on_conflict_do_update(
            index_elements=list(_RESULT_KEY),
            set_={name: statement.excluded[name] for name in rows[0] if name not in _RESULT_KEY},
        )
        connection.execute(statement, rows)

    def latest_results(self, model: str | None = None) -> list[DetectorResult]:
        table = detector_results
        rank = (
            func.row_number()
            .over(
                partition_by=[
                    table.c.model,
                    table.c.version,
                    table.c.detector,
                    table.c.feature,
                    table.c.segment,
                ],
                order_by=[table.c.window_end.desc(), table.c.window_start.desc()],
            )
            .label("rank")
        )
        inner = select(table, rank)
        if model is not None:
            inner = inner.where(table.c.model == model)
        ranked = inner.subquery()
        statement = (
            select(*(ranked.c[column.name] for column in table.columns))
            .where(ranked.c.rank == 1)
            .order_by(
                ranked.c.model,
                ranked.c.version,
                ranked.c.detector,
                ranked.c.feature,
                ranked.c.segment,
            )
        )
        with translate_errors(self._engine), self._engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [DetectorResult(**row) for row in rows]

    def results_between(
        self, model: str, start: datetime, end: datetime, *, version: str | None = None
    ) -> list[DetectorResult]:
        table = detector_results
        statement = select(table).where(
            table.c.model == model,
            table.c.window_start >= utc(start),
            table.c.window_end <= utc(end),
        )
        if version is not None:
            statement = statement.where(table.c.version == version)
        statement = statement.order_by(
            table.c.window_start, table.c.version, table.c.detector, table.c.feature,
            table.c.segment,
        )  # fmt: skip
        with translate_errors(self._engine), self._engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [DetectorResult(**row) for row in rows]

    # -- retention ----------------------------------------------------------------------

    def purge(self, before: datetime, *, dry_run: bool = False) -> PurgeSummary:
        before = utc(before)
        dropped = 0
        with translate_errors(self._engine), self._engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin() as transaction:
                # Whole expired days go as partitions (no row-by-row delete, no bloat);
                # the DELETEs then trim the partly expired day and the unpartitioned tables.
                rows_dropped: dict[str, int] = {}
                if self._partitions is not None:
                    dropped, rows_dropped = self._partitions.drop_before(connection, before)
                counts = {
                    table.name: rows_dropped.get(table.name, 0)
                    + connection.execute(delete(table).where(column < before)).rowcount
                    for table, column in (
                        (requests, requests.c.ts),
                        (predictions, predictions.c.ts),
                        (labels, labels.c.received_at),
                        (detector_results, detector_results.c.window_end),
                        (detector_runs, detector_runs.c.started_at),
                        (detector_windows, detector_windows.c.window_end),
                    )
                }
                if dry_run:
                    # The same statements, undone: the counts are exactly what a purge removes.
                    transaction.rollback()
        if dry_run and self._partitions is not None:
            self._partitions.forget()
        return PurgeSummary(
            requests=counts["requests"],
            predictions=counts["predictions"],
            labels=counts["labels"],
            results=counts["detector_results"],
            partitions_dropped=dropped,
            runs=counts["detector_runs"],
            windows=counts["detector_windows"],
        )


_JSON_COLUMNS = frozenset({"features", "prediction", "class_scores"})


def _result_rows(results: Sequence[DetectorResult]) -> list[dict[str, Any]]:
    """Result rows to upsert, the last of any that share a key (one statement cannot
    update the same row twice)."""
    unique = {tuple(getattr(result, key) for key in _RESULT_KEY): result for result in results}
    return [
        {
            "model": r.model,
            "version": r.version,
            "detector": r.detector,
            "feature": r.feature,
            "segment": r.segment,
            "window_start": utc(r.window_start),
            "window_end": utc(r.window_end),
            "computed_at": utc(r.computed_at),
            "status": r.status,
            "score": r.score,
            "statistic": r.statistic,
            "threshold": r.threshold,
            "direction": r.direction,
            "alert": r.alert,
            "reference_size": r.reference_size,
            "current_size": r.current_size,
            "details": dict(r.details),
        }
        for r in unique.values()
    ]
