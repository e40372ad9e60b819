"""The whole platform as real processes, once per module.

matching, activity, payments and notify run as uvicorn processes (each with its own SQLite store,
clock control on, a fast scheduler) on the session's real Kafka broker under a topic prefix of
their own; the gateway runs in front of them; notify sends to a real SMTP server in this test
process. The first admin token comes from the gateway's CLI, as an operator would create it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.e2e.harness import Platform, running_platform
from tests.mail import RecordingSMTP, smtp_server


@pytest.fixture(scope="module")
def smtp() -> Iterator[RecordingSMTP]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def platform(bootstrap: str, smtp: RecordingSMTP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(bootstrap, tmp_path_factory.mktemp("platform"), smtp) as started:
        yield started


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
