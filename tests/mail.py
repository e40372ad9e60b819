"""The one real SMTP server of the tests: aiosmtpd on 127.0.0.1 with a handler that keeps every
message it accepts (or refuses them all when told to), and the settings that point notify at it.

Used by notify's own tests, the end-to-end suite and the fault suite alike.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from deploy.kafka.local import free_port


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: tuple[str, ...]  # lower case
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert isinstance(part, EmailMessage), f"no text/{subtype} part"
        return str(part.get_content())


@dataclass
class RecordingSMTP:
    """aiosmtpd handler: records accepted messages; `refuse_with` makes it answer DATA with that
    reply instead (e.g. "451 try later"), counting the refusals."""

    received: list[Mail] = field(default_factory=list)
    refuse_with: str | None = None
    refused: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.refuse_with is not None:
            self.refused += 1
            return self.refuse_with
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        mail = Mail(str(envelope.mail_from), tuple(a.lower() for a in envelope.rcpt_tos), message)
        with self.lock:
            self.received.append(mail)
        return "250 OK"

    def snapshot(self) -> list[Mail]:
        with self.lock:
            return list(self.received)

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.snapshot() if address.lower() in m.rcpt_tos]

    def subjects(self) -> list[tuple[tuple[str, ...], str]]:
        return [(m.rcpt_tos, m.subject) for m in self.snapshot()]

    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.snapshot()]

    def notify_env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        """Environment for a notify process that sends here (its own sink off) and retries fast."""
        return {
            "MENTORING_SMTP_HOST": "127.0.0.1",
            "MENTORING_SMTP_PORT": str(self.port),
            "MENTORING_EMBEDDED_SINK": "false",
            "MENTORING_MAIL_DIR": str(data_dir / "unused-mail"),
            "MENTORING_MAIL_INTERVAL_SECONDS": "0.3",
            "MENTORING_MAIL_BACKOFF_SECONDS": "0.5",
            "MENTORING_MAIL_BACKOFF_MAX_SECONDS": "2",
            **extra,
        }


@contextmanager
def smtp_server(handler: RecordingSMTP | None = None, **controller: Any) -> Iterator[RecordingSMTP]:
    """A running server on a free loopback port; `controller` passes through to aiosmtpd's
    Controller (e.g. tls_context, require_starttls, auth settings)."""
    handler = handler or RecordingSMTP()
    handler.port = free_port()
    server = Controller(handler, hostname="127.0.0.1", port=handler.port, ready_timeout=10, **controller)
    server.start()
    try:
        yield handler
    finally:
        server.stop()
