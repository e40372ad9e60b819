"""Notify benchmark: a monthly newsletter to N recipients through the local SMTP sink.

Seeds a program with N active participants (plus a month of meetings, PIPs and matches for the
highlights), publishes the newsletter (one pending message per recipient, written in one
transaction with NewsletterPublished), then runs the sender until every message is sent: claim a
batch, render HTML + text per recipient, send over several SMTP connections, mark sent and put
EmailSent in the outbox. The sink runs as its own process (`python -m services.notify.sink`) and
writes one .eml file per message; the run checks that exactly N files exist and that no row is
left unsent. Goal: at least 200 messages per second.

    uv run python -m bench.notify_bench --quick|--full [--store-url URL] [--connections 4]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import select

from services.notify.adapters.tables import MessageRow, PersonRow, ProgramActivityRow, ProgramRow
from services.notify.entrypoints.app import build
from services.notify.service_layer import communications as comms
from services.notify.settings import NotifySettings
from shared.clock import ManualClock
from shared.contracts.envelope import Cause
from shared.contracts.program import ProgramPolicy
from shared.messaging import OutboxRecord

PROGRAM = "bench-program"
NOW = datetime(2026, 12, 1, 15, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(port: int, folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.notify.sink", "--port", str(port), "--dir", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"the SMTP sink did not start: {line!r}")
    return proc


def seed(runtime: Any, recipients: int) -> None:
    db = runtime.service.db
    roles = ("mentor", "mentee")
    with db.session() as s:
        s.add(ProgramRow(program_id=PROGRAM, name="Bench Program", policy=ProgramPolicy().model_dump_json()))
        s.flush()
        s.execute(insert(PersonRow), [
            {"program_id": PROGRAM, "person_id": f"person-{i:05d}", "role": roles[i % 2],
             "name": f"Person {i:05d}", "email": f"person-{i:05d}@bench.example", "active": True, "paused": False}
            for i in range(recipients)
        ])
        s.execute(insert(ProgramActivityRow), [
            {"subject_id": f"meeting:{i}", "program_id": PROGRAM, "month": "2026-11", "kind": "meeting",
             "minutes": 45, "detail": ""}
            for i in range(recipients // 2)
        ] + [
            {"subject_id": f"match:{i}", "program_id": PROGRAM, "month": "2026-11", "kind": "match",
             "minutes": 0, "detail": ""}
            for i in range(recipients // 20)
        ])


def run(recipients: int, store_url: str | None, connections: int, batch: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    port = free_port()
    mail_dir = work / "mail"
    sink = start_sink(port, mail_dir)
    try:
        settings = NotifySettings(
            data_dir=work, database_url=store_url or "", smtp_port=port, embedded_sink=False,
            mail_connections=connections, mail_batch_size=batch,
        )
        runtime = build(settings, ManualClock(NOW))
        runtime.service.migrate()
        seed(runtime, recipients)
        db = runtime.service.db

        started = time.perf_counter()
        with db.session() as s:
            newsletter = comms.create_newsletter(s, PROGRAM, "2026-11", "bench", NOW)
            comms.add_newsletter_item(s, newsletter.newsletter_id, "Welcome", "A note from the staff.", None)
        with runtime.service.transaction(Cause.new()) as tx:
            published = comms.publish_newsletter(tx, newsletter.newsletter_id, "bench", NOW)
        publish_s = time.perf_counter() - started
        assert published.recipients == recipients, published.recipients

        started, cpu_started = time.perf_counter(), time.process_time()
        stats = runtime.sender.deliver_due()
        deliver_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started

        deadline = time.monotonic() + 30
        while len(list(mail_dir.glob("*.eml"))) < recipients and time.monotonic() < deadline:
            time.sleep(0.05)
        files = sorted(mail_dir.glob("*.eml"))
        with db.session() as s:
            statuses = dict(Counter(s.exec(select(MessageRow.status)).all()))
            email_sent = s.exec(
                select(func.count()).select_from(OutboxRecord).where(OutboxRecord.event_type == "EmailSent")
            ).one()
        sample = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        rcpts = {f.read_bytes().split(b"\r\n", 2)[1] for f in files}
        return {
            "recipients": recipients,
            "store": db.dialect,
            "connections": connections,
            "batch": batch,
            "publish_s": round(publish_s, 2),
            "deliver_s": round(deliver_s, 2),
            "messages_per_s": round(stats.sent / deliver_s, 1),
            "end_to_end_per_s": round(stats.sent / (publish_s + deliver_s), 1),
            "sender_cpu_ms_per_message": round(cpu_s * 1000 / max(stats.sent, 1), 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "sent": stats.sent,
            "failed": stats.failed,
            "eml_files": len(files),
            "distinct_recipients_in_files": len(rcpts),
            "rows_by_status": statuses,
            "email_sent_events_in_outbox": email_sent,
            "sample_subject": str(sample["Subject"]),
            "sample_has_list_unsubscribe": bool(sample["List-Unsubscribe"]),
        }
    finally:
        sink.terminate()
        sink.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1,000 recipients")
    size.add_argument("--full", action="store_true", help="10,000 recipients (the default)")
    parser.add_argument("--recipients", type=int, help="override the number of recipients")
    parser.add_argument("--store-url", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per sender run")
    parser.add_argument("--batch", type=int, default=200, help="messages claimed per batch")
    args = parser.parse_args()
    recipients = args.recipients or (1_000 if args.quick else 10_000)
    result = run(recipients, args.store_url, args.connections, args.batch)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    goal = 200.0
    verdict = "meets" if result["messages_per_s"] >= goal else "MISSES"
    print(f"\n{verdict} the goal of {goal:.0f} messages/s (delivery), "
          f"{result['end_to_end_per_s']} messages/s including publishing")
    ok = result["eml_files"] == recipients == result["sent"] == result["distinct_recipients_in_files"]
    print(json.dumps({**result, "goal_messages_per_s": goal, "goal_met": result["messages_per_s"] >= goal,
                      "counts_agree": ok}, default=str, indent=2))
    if not ok:
        print("ERROR: the number of files, sent rows and recipients differ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
