from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from deploy.kafka.local import LocalKafka
from shared.db import normalise_url
from tests import infra


@pytest.fixture(scope="session")
def kafka() -> Iterator[tuple[str, LocalKafka | None]]:
    with infra.kafka_bootstrap() as found:
        yield found


@pytest.fixture(scope="session")
def bootstrap(kafka: tuple[str, LocalKafka | None]) -> str:
    return kafka[0]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with infra.postgres_url() as url:
        yield normalise_url(url)


def fresh_postgres_database(server_url: str) -> str:
    """A new, empty database on the test server, so tests never see each other's rows."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store kind the services support: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server = request.getfixturevalue("postgres_server")
    return fresh_postgres_database(server)


@pytest.fixture
def topic_name() -> str:
    return f"test.{uuid.uuid4().hex[:10]}"
