"""SMTP with STARTTLS and login, and with implicit TLS, from settings, against aiosmtpd servers
using a certificate made for the test (trusted through smtp_ca_file)."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from deploy.kafka.local import free_port
from services.notify.adapters.smtp import OutgoingEmail, SmtpMailer
from services.notify.tests.support import RecordingSMTP, settings_for

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*map(str, certificate))
    return ctx


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"notify", b"s3cret")
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535 itself


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[RecordingSMTP, int]]:
    handler, port = RecordingSMTP(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=server_context(certificate), require_starttls=True,
        auth_required=True, auth_require_tls=True, authenticator=check_login,
    )
    controller.start()
    yield handler, port
    controller.stop()


def email(n: int) -> OutgoingEmail:
    return OutgoingEmail(f"msg-{n}", "Ana", "ana@example.org", f"Hello {n}", "text", "<p>html</p>")


def test_starttls_and_login(tmp_path: Path, certificate: tuple[Path, Path],
                            starttls_server: tuple[RecordingSMTP, int]) -> None:
    smtp, port = starttls_server
    settings = settings_for(tmp_path, port, smtp_starttls=True, smtp_username="notify", smtp_password="s3cret",
                            smtp_ca_file=certificate[0])
    assert [d.ok for d in SmtpMailer(settings).send([email(1), email(2)])] == [True, True]
    assert sorted(r.subject for r in smtp.received) == ["Hello 1", "Hello 2"]


def test_wrong_password_or_no_tls_is_refused_and_retried_not_lost(
    tmp_path: Path, certificate: tuple[Path, Path], starttls_server: tuple[RecordingSMTP, int]
) -> None:
    smtp, port = starttls_server
    wrong = settings_for(tmp_path, port, smtp_starttls=True, smtp_username="notify", smtp_password="nope",
                         smtp_ca_file=certificate[0])
    [refused] = SmtpMailer(wrong).send([email(1)])
    assert not refused.ok and not refused.permanent and "535" in refused.error
    untrusted = settings_for(tmp_path, port, smtp_starttls=True, smtp_username="notify", smtp_password="s3cret")
    [unverified] = SmtpMailer(untrusted).send([email(2)])  # self-signed and not in smtp_ca_file: refused
    assert not unverified.ok and "CERTIFICATE_VERIFY_FAILED" in unverified.error
    plain = settings_for(tmp_path, port)  # no STARTTLS: the server demands it
    [denied] = SmtpMailer(plain).send([email(3)])
    assert not denied.ok and denied.error.startswith("5")
    assert smtp.received == []


def test_implicit_tls(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    handler, port = RecordingSMTP(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_context(certificate))
    controller.start()
    try:
        settings = settings_for(tmp_path, port, smtp_tls=True, smtp_ca_file=certificate[0])
        assert [d.ok for d in SmtpMailer(settings).send([email(1)])] == [True]
    finally:
        controller.stop()
    assert [r.subject for r in handler.received] == ["Hello 1"]
