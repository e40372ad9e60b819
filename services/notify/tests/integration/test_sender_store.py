"""The sender against each store (SQLite file, PostgreSQL): concurrent senders never send one
row twice; a sender that dies after claiming leaves its rows to be taken back only when its claim
expires; a message naming someone not yet enrolled waits for the enrolment instead of failing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from services.notify.adapters import message_log
from services.notify.adapters.tables import MessageRow
from services.notify.service_layer import communications as comms
from services.notify.service_layer.delivery import MailSender
from services.notify.tests.support import Store, settings_for, smtp_server
from shared.clock import ManualClock
from shared.contracts.matching import MenteeEnrolled, MenteeMatched, MentorEnrolled, ProgramConfigured
from shared.contracts.program import ProgramPolicy
from shared.db import Database

pytestmark = [pytest.mark.integration]
PROGRAM = "prog"
T0 = datetime(2026, 11, 2, 15, tzinfo=UTC)


def enrol(store: Store, n: int) -> None:
    store.apply(ProgramConfigured(program_id=PROGRAM, name="P", policy=ProgramPolicy()),
                *[MentorEnrolled(person_id=f"m{i}", program_id=PROGRAM, name=f"M {i}", email=f"m{i}@example.org")
                  for i in range(n)])


def statuses(store: Store) -> dict[str, int]:
    with store.runtime.service.db.session() as s:
        out: dict[str, int] = {}
        for row in s.exec(select(MessageRow)).all():
            out[row.status] = out.get(row.status, 0) + 1
        return out


def announce(store: Store) -> None:
    with store.runtime.service.db.session() as s:
        aid = comms.create_announcement(s, PROGRAM, "mentors", "Hello", "Body", "staff", T0).announcement_id
        comms.send_announcement(s, aid, "staff", T0)


def test_concurrent_senders_send_each_message_once(tmp_path: Path, store_url: str) -> None:
    with smtp_server() as smtp:
        cfg = settings_for(tmp_path, smtp.port, database_url=store_url, mail_batch_size=10)
        store = Store(cfg, ManualClock(T0))
        enrol(store, 300)
        announce(store)
        senders = [
            MailSender(Database(store_url), store.runtime.service.outbox, store.clock, cfg) for _ in range(3)
        ]
        start = threading.Barrier(len(senders))

        def run(sender: MailSender) -> None:
            start.wait()
            sender.deliver_due()

        threads = [threading.Thread(target=run, args=(s,)) for s in senders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        shares = [s.totals.sent for s in senders]
        assert sum(shares) == 300, shares
        ids = smtp.message_ids()
        assert len(ids) == 300 and len(set(ids)) == 300
        assert statuses(store) == {"sent": 300}


def test_a_dead_senders_claim_is_taken_back_only_after_it_expires(tmp_path: Path, store_url: str) -> None:
    with smtp_server() as smtp:
        cfg = settings_for(tmp_path, smtp.port, database_url=store_url, mail_claim_seconds=60)
        clock = ManualClock(T0)
        store = Store(cfg, clock)
        enrol(store, 5)
        announce(store)
        # A sender claims every row and dies before sending or recording anything.
        owner, claimed = message_log.claim(store.runtime.service.db, clock.now(), hold_ms=60_000, limit=100)
        assert len(claimed) == 5
        assert store.runtime.deliver_now().sent == 0  # a live claim is not taken
        clock.advance(timedelta(seconds=59))
        assert store.runtime.deliver_now().sent == 0
        clock.advance(timedelta(seconds=2))
        assert store.runtime.deliver_now().sent == 5  # expired: taken back and sent
        assert len(smtp.received) == 5
        # The dead sender, had it come back, could no longer record over the new outcome.
        with store.runtime.service.db.session() as s:
            assert message_log.still_claimed(s, owner) == set()


def test_a_message_waits_for_a_recipient_not_enrolled_yet(tmp_path: Path, store_url: str) -> None:
    with smtp_server() as smtp:
        cfg = settings_for(tmp_path, smtp.port, database_url=store_url, unknown_recipient_wait_seconds=3600)
        clock = ManualClock(T0)
        store = Store(cfg, clock)
        store.apply(
            ProgramConfigured(program_id=PROGRAM, name="P", policy=ProgramPolicy()),
            MentorEnrolled(person_id="m", program_id=PROGRAM, name="Mo", email="mo@example.org"),
            MenteeMatched(partnership_id="p", program_id=PROGRAM, mentor_id="m", mentee_id="e", started_at=T0),
        )
        stats = store.runtime.deliver_now()
        assert (stats.sent, stats.waiting, stats.failed) == (0, 2, 0)  # both name the unknown mentee
        store.apply(MenteeEnrolled(person_id="e", program_id=PROGRAM, name="Eve", email="eve@example.org"))
        clock.advance(timedelta(minutes=1))
        assert store.runtime.deliver_now().sent == 2
        assert {r.subject for r in smtp.received} == {"Meet your mentee: Eve", "Meet your mentor: Mo"}

        # Someone who never enrols: the message fails once the wait is over (staff can see it).
        store.apply(MenteeMatched(partnership_id="p2", program_id=PROGRAM, mentor_id="m", mentee_id="ghost",
                                  started_at=T0))
        assert store.runtime.deliver_now().waiting == 2
        clock.advance(timedelta(hours=2))
        assert store.runtime.deliver_now().failed == 2
        with store.runtime.service.db.session() as s:
            failed = s.exec(select(MessageRow).where(MessageRow.status == "failed")).all()
        assert {f.last_error for f in failed} == {"other ghost is not in the contact directory",
                                                  "recipient ghost is not in the contact directory"}


def test_an_unsendable_address_fails_alone_and_the_others_go_out(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        store = Store(settings_for(tmp_path, smtp.port, mail_connections=1), ManualClock(T0))
        enrol(store, 3)
        store.apply(MentorEnrolled(person_id="m1", program_id=PROGRAM, name="Ünï", email="ünï@exämple.org"))
        announce(store)
        stats = store.runtime.deliver_now()
        assert (stats.sent, stats.failed, stats.retried) == (2, 1, 0)
        assert sorted(a for r in smtp.received for a in r.rcpt_tos) == ["m0@example.org", "m2@example.org"]
        with store.runtime.service.db.session() as s:
            [failed] = s.exec(select(MessageRow).where(MessageRow.status == "failed")).all()
        assert failed.recipient_id == "m1" and failed.last_error and failed.last_error.startswith("cannot send")


def test_a_crash_between_smtp_and_recording_resends_once_with_the_same_message_id(tmp_path: Path) -> None:
    """The one duplicate SMTP cannot rule out, shown: the copy carries the same Message-ID."""
    with smtp_server() as smtp:
        cfg = settings_for(tmp_path, smtp.port, mail_claim_seconds=60)
        clock = ManualClock(T0)
        store = Store(cfg, clock)
        enrol(store, 2)
        announce(store)

        class CrashesBeforeRecording(MailSender):
            def _record(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError("process killed")

        crashing = CrashesBeforeRecording(store.runtime.service.db, store.runtime.service.outbox, clock, cfg)
        with pytest.raises(RuntimeError):
            crashing.deliver_due()
        assert len(smtp.received) == 2 and statuses(store) == {"sending": 2}
        assert store.runtime.deliver_now().sent == 0  # claim still live
        clock.advance(timedelta(seconds=61))
        assert store.runtime.deliver_now().sent == 2
        ids = smtp.message_ids()
        assert len(ids) == 4 and len(set(ids)) == 2  # each sent twice, under one Message-ID
        assert statuses(store) == {"sent": 2}
        assert store.runtime.deliver_now().sent == 0
