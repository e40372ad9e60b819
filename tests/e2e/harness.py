"""What the end-to-end tests drive and read: the running platform, a gateway client that says what
went wrong, and polling for eventual consistency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from deploy.kafka.local import REPO_ROOT
from shared.messaging.admin import ensure_topics
from tests.mail import RecordingSMTP
from tests.processes import System

SERVICES = ("matching", "activity", "payments", "notify")
T = TypeVar("T")


# -- the platform ----------------------------------------------------------------------------------
@dataclass
class Platform:
    system: System
    admin_token: str
    prefix: str

    @property
    def gateway_url(self) -> str:
        return self.system.url("gateway")

    def client(self, token: str) -> Gateway:
        return Gateway(httpx.Client(
            base_url=self.gateway_url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30.0,
        ))

    def log_tails(self, lines: int = 40) -> str:
        return "\n\n".join(
            f"----- {name} ({proc.log_path}) -----\n{proc.log_tail(lines)}"
            for name, proc in self.system.services.items()
        )


@contextmanager
def running_platform(bootstrap: str, data_dir: Path, smtp: RecordingSMTP, tag: str = "e2e",
                     env: dict[str, dict[str, str]] | None = None) -> Iterator[Platform]:
    """matching, activity, payments and notify as uvicorn processes (each with its own SQLite store,
    clock control on, a fast scheduler) on `bootstrap` under a topic prefix of their own, notify
    sending to `smtp`, and the gateway in front; the first admin token from the gateway's CLI, as
    an operator would create it. `env` adds settings per service. Everything is stopped on exit."""
    extra = env or {}
    data_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{tag}{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(bootstrap, prefix=prefix))
    system = System(bootstrap=bootstrap, data_dir=data_dir, prefix=prefix)
    for name in ("matching", "activity", "payments"):
        system.add(name, env=extra.get(name))
    # The test's SMTP server is the mail server: notify must not start its own sink.
    system.add("notify", env={**smtp.notify_env(data_dir, MENTORING_MAIL_INTERVAL_SECONDS="0.2"),
                              **extra.get("notify", {})})
    gateway = system.add("gateway", env={
        **{f"MENTORING_GATEWAY_{name.upper()}_URL": system.url(name) for name in SERVICES},
        **extra.get("gateway", {}),
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


def create_admin_token(env: dict[str, str]) -> str:
    """The first admin token, from the gateway's CLI on the gateway's own store."""
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway.cli", "create-admin", "--name", "E2E Operator", "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, f"create-admin failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    token = json.loads(done.stdout.strip().splitlines()[-1])["token"]
    assert isinstance(token, str) and token
    return token


class Gateway:
    """The public API as one user sees it: each call states the status it expects, and a
    different answer fails with the method, path, status and body."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path}: expected {expect}, got {response.status_code}: {response.text[:2000]}"
        )
        return response

    def get(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return self.call("GET", path, expect, **kwargs).json()

    def post(self, path: str, body: Any = None, expect: int = 200, **kwargs: Any) -> Any:
        return self.call("POST", path, expect, json=body, **kwargs).json()


# -- waiting ---------------------------------------------------------------------------------------
def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = 30.0, every_s: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s}s")
        time.sleep(every_s)
