"""The local SMTP sink: a real SMTP server on 127.0.0.1 that keeps each message as an .eml file.

It is the embedded default's mail server (the notify service starts it) and can run alone:

    python -m services.notify.sink --port 8025 --dir .data/mail

Each accepted message is written to `<dir>/<sequence>-<uuid>.eml` (written to a temporary name
first, then renamed, so a reader never sees half a message), with the SMTP envelope's sender and
recipients in X-Sink-* headers before the message itself.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from shared.logs import configure_logging

log = logging.getLogger(__name__)


class FolderSink:
    """aiosmtpd handler: accept every message and write it to a folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq = itertools.count(1)
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        prefix = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        name = f"{next(self._seq):08d}-{uuid.uuid4().hex[:12]}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(prefix + content)
        os.replace(tmp, self.directory / name)
        self.accepted += 1
        return "250 Message accepted for delivery"


def start_sink(directory: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """Start the sink in a background thread; stop it with `.stop()`."""
    # aiosmtpd logs every SMTP command at INFO: far too costly (and noisy) for a newsletter run.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(FolderSink(directory), hostname=host, port=port, ready_timeout=10)
    controller.start()
    log.info("SMTP sink on %s:%d writing to %s", host, port, directory)
    return controller


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local SMTP server that keeps each message as an .eml file.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".data/mail"))
    args = parser.parse_args(argv)
    configure_logging()
    controller = start_sink(args.dir, args.host, args.port)
    print(f"SMTP sink listening on {args.host}:{args.port}, writing to {args.dir}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
