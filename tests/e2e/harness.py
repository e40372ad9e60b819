"""What the end-to-end tests drive and read: the running platform, the SMTP server the platform's
email lands in, a gateway client that says what went wrong, and polling for eventual consistency."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, TypeVar

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from deploy.kafka.local import REPO_ROOT
from tests.processes import System

SERVICES = ("matching", "activity", "payments", "notify")
T = TypeVar("T")


# -- mail -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mail:
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if isinstance(part, EmailMessage) else ""


@dataclass
class MailCollector:
    """aiosmtpd handler: accept every message and keep it in memory."""

    mails: list[Mail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.mails.append(Mail(tuple(a.lower() for a in envelope.rcpt_tos), message))
        return "250 OK"

    def snapshot(self) -> list[Mail]:
        with self._lock:
            return list(self.mails)

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.snapshot() if address.lower() in m.recipients]

    def subjects(self) -> list[tuple[tuple[str, ...], str]]:
        return [(m.recipients, m.subject) for m in self.snapshot()]


@dataclass
class SmtpServer:
    port: int
    collector: MailCollector


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
