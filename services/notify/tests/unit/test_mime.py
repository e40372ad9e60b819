"""The MIME bytes the sender writes parse back, with the standard library, to the same message."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from services.notify.adapters.smtp import OutgoingEmail

pytestmark = [pytest.mark.unit]


def parse(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_non_ascii_headers_and_bodies_round_trip() -> None:
    text = "Café crème € Zoë's PIPs\n" + "x" * 200 + "\n.starts with a dot\n"
    out = OutgoingEmail("m-1", "Zoë Ñúñez", "zoe@example.org", "Bienvenue, Zoë € ¡hola! A subject long enough to be folded over two lines", text,
                        "<p>Zoë &amp; co</p>", {"List-Unsubscribe": "<http://x/u?t=1>"},
                        sent_at=datetime(2026, 11, 2, 15, tzinfo=UTC))
    msg = parse(out.to_bytes("Programs <no-reply@example.org>", "example.org", out.sent_at))
    assert msg["Subject"] == "Bienvenue, Zoë € ¡hola! A subject long enough to be folded over two lines"
    assert msg["To"].addresses[0].display_name == "Zoë Ñúñez"
    assert msg["To"].addresses[0].addr_spec == "zoe@example.org"
    assert msg["Message-ID"] == "<m-1@example.org>"
    assert msg["Date"] == "Mon, 02 Nov 2026 15:00:00 +0000"
    assert msg["List-Unsubscribe"] == "<http://x/u?t=1>"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == text  # CRLF on the wire
    assert html.get_content().strip() == "<p>Zoë &amp; co</p>"
    raw = out.to_bytes("a@b", "d")
    assert b"\n" not in raw.replace(b"\r\n", b"")  # no bare line feed anywhere
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


def test_line_breaks_in_a_name_or_subject_cannot_add_headers() -> None:
    out = OutgoingEmail("m-2", "Eve\r\nBcc: victim@example.org", "eve@example.org",
                        "Hi\nBcc: other@example.org", "t", "h")
    msg = parse(out.to_bytes("a@example.org", "example.org"))
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hi Bcc: other@example.org"
