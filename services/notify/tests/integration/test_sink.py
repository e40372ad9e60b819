"""The local SMTP sink keeps each message as an .eml file, standalone and under the service."""

from __future__ import annotations

import email
import email.policy
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from deploy.kafka.local import free_port
from services.notify.sink import start_sink

pytestmark = [pytest.mark.integration]


def _send(port: int, to: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", to, subject
    msg.set_content("body of " + subject)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(msg)


def test_each_message_becomes_an_eml_file(tmp_path: Path) -> None:
    port = free_port()
    controller = start_sink(tmp_path / "mail", port=port)
    try:
        _send(port, "ana@example.org", "first")
        _send(port, "ben@example.org", "second")
    finally:
        controller.stop()
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2 and not list((tmp_path / "mail").glob(".*.tmp"))
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert [p["Subject"] for p in parsed] == ["first", "second"]
    assert parsed[1]["X-Sink-Rcpt-To"] == "ben@example.org"


def test_the_sink_runs_as_a_module(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "services.notify.sink", "--port", str(port),
                             "--dir", str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        _send(port, "cal@example.org", "via module")
        deadline = time.monotonic() + 10
        while not list((tmp_path / "out").glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.05)
        [eml] = list((tmp_path / "out").glob("*.eml"))
        assert b"Subject: via module" in eml.read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
