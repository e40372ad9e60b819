"""The whole platform as real processes, once per module.

matching, activity, payments and notify run as uvicorn processes (each with its own SQLite store,
clock control on, a fast scheduler) on the session's real Kafka broker under a topic prefix of
their own; the gateway runs in front of them; notify sends to a real SMTP server in this test
process. The first admin token comes from the gateway's CLI, as an operator would create it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from deploy.kafka.local import free_port
from shared.messaging.admin import ensure_topics
from tests.e2e.harness import SERVICES, MailCollector, Platform, SmtpServer, create_admin_token
from tests.processes import System


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    collector = MailCollector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield SmtpServer(port, collector)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def platform(bootstrap: str, smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(bootstrap, prefix=prefix))
    data_dir: Path = tmp_path_factory.mktemp("platform")
    system = System(bootstrap=bootstrap, data_dir=data_dir, prefix=prefix)
    for name in ("matching", "activity", "payments"):
        system.add(name)
    system.add("notify", env={
        "MENTORING_SMTP_HOST": "127.0.0.1",
        "MENTORING_SMTP_PORT": str(smtp.port),
        # The test's SMTP server is the mail server: notify must not start its own sink.
        "MENTORING_EMBEDDED_SINK": "false",
        "MENTORING_MAIL_DIR": str(data_dir / "unused-mail"),
        "MENTORING_MAIL_INTERVAL_SECONDS": "0.2",
        "MENTORING_MAIL_BACKOFF_SECONDS": "0.5",
        "MENTORING_MAIL_BACKOFF_MAX_SECONDS": "2",
    })
    gateway = system.add("gateway", env={
        f"MENTORING_GATEWAY_{name.upper()}_URL": system.url(name) for name in SERVICES
    })
    try:
        for name in SERVICES:
            system.services[name].start()
        # Before the gateway starts, so the CLI and the server never migrate its store at once.
        admin_token = create_admin_token(gateway.env)
        gateway.start()
        for name in (*SERVICES, "gateway"):
            system.services[name].wait_ready(120.0)
        yield Platform(system, admin_token, prefix)
    finally:
        system.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, show the tail of every service's log next to it."""
    report = yield
    found = getattr(item, "funcargs", {}).get("platform")
    if report.failed and isinstance(found, Platform):
        report.sections.append(("service logs", found.log_tails()))
    return report
