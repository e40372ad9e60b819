"""Settings of the notify service: the shared ones plus SMTP, delivery retries and the local sink.

Every field reads from the environment with the MENTORING_ prefix (MENTORING_SMTP_HOST, ...).
The default is the embedded setup: a plain SMTP sink on 127.0.0.1:8025 that keeps each message
as an .eml file under mail_dir, started with the service.
"""

from __future__ import annotations

from email.utils import parseaddr
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    http_port: int = 8104

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False  # upgrade a plain connection with STARTTLS (port 587)
    smtp_tls: bool = False  # implicit TLS from the first byte (SMTPS, port 465)
    # A CA bundle to trust besides the system's (a private mail relay's certificate).
    smtp_ca_file: Path | None = None
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = 30.0
    mail_from: str = "Mentoring Programs <no-reply@mentoring.local>"
    # Domain of the Message-ID header; a message keeps its Message-ID across retries and resends.
    message_id_domain: str = "mentoring.local"

    # Delivery: attempts per message, exponential backoff between them (seconds).
    mail_attempts: int = Field(default=5, ge=1)
    mail_backoff_seconds: float = Field(default=30.0, ge=0)
    mail_backoff_max_seconds: float = Field(default=3600.0, ge=0)
    # Rows one sender run claims at once, and SMTP connections it sends them over in parallel.
    mail_batch_size: int = Field(default=200, ge=1)
    mail_connections: int = Field(default=4, ge=1, le=32)
    # A claimed row not marked within this time is taken back (its sender is presumed dead).
    mail_claim_seconds: float = Field(default=300.0, gt=0)
    # How often the sender looks for due messages.
    mail_interval_seconds: float = Field(default=1.0, gt=0)
    # A message whose recipient is not in the directory yet waits this long before it fails.
    unknown_recipient_wait_seconds: float = Field(default=24 * 3600.0, ge=0)

    # Start the local SMTP sink with the service (only when smtp_host is a loopback address).
    embedded_sink: bool = True
    mail_dir: Path = Path(".data/mail")

    # Where people reach the public gateway: links in emails (unsubscribe, preferences).
    public_base_url: str = "http://127.0.0.1:8000"
    # Signs unsubscribe links; set it in production.
    unsubscribe_secret: SecretStr = SecretStr("change-me-local-only")

    @model_validator(mode="after")
    def _one_tls_mode(self) -> NotifySettings:
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("choose smtp_tls (implicit TLS) or smtp_starttls, not both")
        return self

    @property
    def mail_from_address(self) -> str:
        """The bare address of mail_from, for the SMTP envelope (MAIL FROM)."""
        return parseaddr(self.mail_from)[1] or self.mail_from

    @property
    def sink_is_local(self) -> bool:
        return self.smtp_host in ("127.0.0.1", "localhost", "::1")
