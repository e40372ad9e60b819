"""Where the tests' real Kafka and PostgreSQL come from.

Kafka: KAFKA_BOOTSTRAP_SERVERS if set; else a testcontainers Kafka when a Docker engine answers;
else the deploy/kafka broker started from Maven jars. PostgreSQL: TEST_POSTGRES_URL if set;
else a testcontainers PostgreSQL when Docker answers; else the tests that need it skip, except
under CI=true, where they fail: CI must never pass by skipping the real parts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deploy.kafka.local import LocalKafka, free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true and is not available", pytrace=False)
    pytest.skip(f"{what} not available")


def docker_answers() -> bool:
    if shutil.which("docker") is None and not os.path.exists("/var/run/docker.sock"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextmanager
def kafka_bootstrap() -> Iterator[tuple[str, LocalKafka | None]]:
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env, None
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server(), None
        return
    if shutil.which("java") is None or shutil.which("mvn") is None:
        unavailable("Kafka (no KAFKA_BOOTSTRAP_SERVERS, no Docker, no Java+Maven)")
    data = Path(tempfile.mkdtemp(prefix="kafka-test-"))
    broker = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=data)
    broker.start()
    try:
        yield broker.bootstrap, broker
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def postgres_url() -> Iterator[str]:
    env = os.environ.get("TEST_POSTGRES_URL")
    if env:
        yield env
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="psycopg") as pg:
            yield pg.get_connection_url()
        return
    unavailable("PostgreSQL (no TEST_POSTGRES_URL, no Docker)")
    raise AssertionError("unreachable")
