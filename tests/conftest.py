"""Shared fixtures: real services come from scripts/services.sh (see `make test`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import make_url

# Evidently (a test dependency, for known answers) must never phone home from a test run;
# set before any test module imports it.
os.environ["DO_NOT_TRACK"] = "1"

SERVICES_HINT = "start them with `scripts/services.sh start` and source .state/services.env"


def service_env(name: str) -> str:
    """A MONITOR_TEST_* setting; missing means the run is broken, never a skip."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: the tests need the real services; {SERVICES_HINT}")
    return value


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the real PostgreSQL server's maintenance database."""
    return service_env("MONITOR_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the real PostgreSQL, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_url(postgres_url).set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """host:port of the real Kafka broker."""
    return service_env("MONITOR_TEST_KAFKA")


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """Base URL of the real Prometheus server."""
    return service_env("MONITOR_TEST_PROMETHEUS")
