"""Sending over SMTP with the standard library (smtplib, run in worker threads).

A batch is split over a few connections, each sending its messages one after another. The
outcome of every message is returned, never raised: the caller records it (sent, retry later,
failed). A 4xx reply or a lost connection is transient (retry); a 5xx reply is permanent.
"""

from __future__ import annotations

import binascii
import contextlib
import smtplib
import socket
import ssl
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr

from services.notify.settings import NotifySettings


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email for one recipient."""

    message_id: str  # our id; also the Message-ID header, so a resend keeps its identity
    to_name: str
    to_address: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)
    sent_at: datetime | None = None  # the Date header, from the service's clock

    def to_bytes(self, sender: str, domain: str, sent_at: datetime | None = None) -> bytes:
        """The message as MIME bytes (multipart/alternative: plain text, then HTML).

        Composed directly rather than through email.message.EmailMessage, which costs ~1.4 ms of
        CPU per message and alone would cap a sender near the newsletter's throughput goal."""
        boundary = f"=_alt_{uuid.uuid4().hex}"
        headers = [
            ("From", sender),
            ("To", formataddr((_one_line(self.to_name), self.to_address), charset="utf-8")),
            ("Subject", _header_value(self.subject, "Subject")),
            ("Message-ID", f"<{self.message_id}@{domain}>"),
            ("MIME-Version", "1.0"),
        ]
        if sent_at is not None:
            headers.append(("Date", format_datetime(sent_at)))
        headers.extend((name, _header_value(value, name)) for name, value in self.headers.items())
        headers.append(("Content-Type", f'multipart/alternative;\r\n boundary="{boundary}"'))
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
        parts = [head, b"\r\n"]
        for subtype, content in (("plain", self.text), ("html", self.html)):
            parts.append(
                f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
            )
            body = binascii.b2a_qp(content.replace("\r\n", "\n").encode("utf-8"), istext=True)
            parts.append(body.replace(b"\n", b"\r\n") + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode("ascii"))
        return b"".join(parts)


def _one_line(value: str) -> str:
    """Header values never carry line breaks (no header injection through a name or subject)."""
    return " ".join(value.split())


def _header_value(value: str, name: str) -> str:
    value = _one_line(value)
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")  # folded with CRLF, never a bare LF


@dataclass(frozen=True)
class Delivery:
    """What happened to one email: accepted, or refused (transient or permanent) with why."""

    message_id: str
    ok: bool
    error: str = ""
    permanent: bool = False


class SmtpMailer:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def _tls(self) -> ssl.SSLContext:
        """Certificates are verified (system CAs, plus smtp_ca_file when set)."""
        ca = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_tls:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds, context=self._tls()
            )
        else:
            conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        try:
            conn.ehlo()
            if s.smtp_starttls:
                conn.starttls(context=self._tls())
                conn.ehlo()
            if s.smtp_username:
                conn.login(s.smtp_username, s.smtp_password.get_secret_value())
        except BaseException:
            conn.close()
            raise
        return conn

    def _send_over_one_connection(self, emails: Sequence[OutgoingEmail]) -> list[Delivery]:
        out: list[Delivery] = []
        try:
            conn = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            # Unreachable, TLS or login refused: about the connection, not the messages. Retried
            # (with backoff), so fixing the relay or the credentials lets them go out.
            return [Delivery(e.message_id, False, f"connect: {_describe(exc)}") for e in emails]
        try:
            for i, email in enumerate(emails):
                try:
                    data = email.to_bytes(self.settings.mail_from, self.settings.message_id_domain, email.sent_at)
                    refused = conn.sendmail(self.settings.mail_from_address, [email.to_address], data)
                except smtplib.SMTPRecipientsRefused as exc:
                    code = next(iter(exc.recipients.values()))[0] if exc.recipients else 550
                    out.append(Delivery(email.message_id, False, _describe(exc), _is_permanent(code)))
                    _reset(conn)
                    continue
                except smtplib.SMTPResponseException as exc:
                    out.append(Delivery(email.message_id, False, _describe(exc), _is_permanent(exc.smtp_code)))
                    _reset(conn)
                    continue
                except (smtplib.SMTPNotSupportedError, UnicodeError, ValueError) as exc:
                    # This message cannot be sent as it is (e.g. a non-ASCII address the server
                    # does not accept): fail it, keep the connection for the others.
                    out.append(Delivery(email.message_id, False, f"cannot send: {_describe(exc)}", True))
                    _reset(conn)
                    continue
                except (smtplib.SMTPException, OSError) as exc:
                    # The connection is gone; whether this one was accepted is unknown: retry it
                    # (its Message-ID stays the same) and the rest of the chunk with it.
                    error = _describe(exc)
                    out.extend(Delivery(e.message_id, False, error) for e in emails[i:])
                    return out
                if refused:
                    out.append(Delivery(email.message_id, False, f"refused: {refused}", True))
                else:
                    out.append(Delivery(email.message_id, True))
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
        return out

    def send(self, emails: Sequence[OutgoingEmail]) -> list[Delivery]:
        """Send a batch over up to `mail_connections` connections; one Delivery per email."""
        if not emails:
            return []
        n = min(self.settings.mail_connections, len(emails))
        if n == 1:
            return self._send_over_one_connection(emails)
        chunks = [list(emails[i::n]) for i in range(n)]
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="smtp") as pool:
            results = pool.map(self._send_over_one_connection, chunks)
            return [d for chunk in results for d in chunk]


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {err}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{rcpt}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for rcpt, (code, msg) in exc.recipients.items()
        )
    if isinstance(exc, socket.timeout):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def _reset(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        conn.rset()
