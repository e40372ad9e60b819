"""The payout on pay day: every approved, unpaid statement and reimbursement of a program forms one
batch, written with its CSV and marked issued in ONE transaction, before PayoutIssued is emitted
(through the outbox, in the same transaction). Staff may run it now for a program (`pay_now`): the
same `pay_program` as the pay-day job, for today or an earlier day, never a future one.

Paid at most once, ever: each paid statement or reimbursement is a payout item whose reference
is unique in the database; a batch is unique per program and pay day; statements move from
approved to issued only if still approved. A re-run finds the batch; a second instance running
at once fails on the constraints and rolls back; a crash before commit leaves nothing behind and
the next run (after restart) pays everything once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.payments.adapters.tables import (
    BatchRow,
    PayeeRow,
    PayoutItemRow,
    ProgramRow,
    ReimbursementRow,
    StatementRow,
)
from services.payments.domain.payout import (
    CsvRow,
    PayoutCandidate,
    due_pay_day,
    payout_csv,
    plan_payout,
)
from services.payments.domain.review import StatementStatus
from services.payments.service_layer.statements import SYSTEM, Emit, audit, cents, from_cents
from shared.clock import local_date
from shared.contracts.payments import PayoutIssued, PayoutItem
from shared.contracts.program import ProgramPolicy
from shared.db import Database
from shared.errors import DomainError, NotFound
from shared.money import Money

log = logging.getLogger(__name__)
_BATCH_NS = uuid.UUID("0b5d8e0e-2f4c-4a3e-8f59-4d7d1c6a2e77")


def batch_id_for(program_id: str, pay_date: date) -> str:
    return str(uuid.uuid5(_BATCH_NS, f"{program_id}/{pay_date.isoformat()}"))


def candidates(session: Session, program_id: str, before_month: str, *, lock: bool) -> list[PayoutCandidate]:
    """Approved, unpaid statements of months before `before_month` and approved, unpaid
    reimbursements of the program."""
    t = StatementRow.__table__.c  # type: ignore[attr-defined]
    query = sa_select(  # columns, not ORM objects: a batch may hold tens of thousands
        t.statement_id, t.mentor_id, t.total_cents, t.month, t.revision,
    ).where(
        t.program_id == program_id, t.status == StatementStatus.APPROVED.value, t.batch_id.is_(None),
        t.month < before_month,
    ).order_by(t.statement_id)
    reimbursements = select(ReimbursementRow).where(
        ReimbursementRow.program_id == program_id, ReimbursementRow.status == "approved",
        col(ReimbursementRow.batch_id).is_(None),
    ).order_by(col(ReimbursementRow.reimbursement_id))
    if lock:  # PostgreSQL: an approval or recompute racing the batch waits for it
        query, reimbursements = query.with_for_update(), reimbursements.with_for_update()
    found = [
        PayoutCandidate(sid, "statement", mentor_id, from_cents(total), f"stipend {month} (statement revision {rev})")
        for sid, mentor_id, total, month, rev in session.execute(query).all()
    ]
    found += [
        PayoutCandidate(r.reimbursement_id, "reimbursement", r.payee_id, from_cents(r.amount_cents),
                        f"{r.kind} reimbursement {r.spent_on.isoformat()}")
        for r in session.exec(reimbursements).all()
    ]
    return found


def issue_batch(
    session: Session, emit: Emit, now: datetime, program_id: str, policy: ProgramPolicy, pay_date: date,
    *, actor: str = SYSTEM, item_delay_s: float = 0.0,
) -> BatchRow | None:
    """Create the program's batch for `pay_date` (None when it exists or nothing is due)."""
    batch_id = batch_id_for(program_id, pay_date)
    if session.get(BatchRow, batch_id) is not None:
        return None
    month = f"{pay_date.year:04d}-{pay_date.month:02d}"
    plan = plan_payout(candidates(session, program_id, month, lock=session.get_bind().dialect.name != "sqlite"))
    if not plan.paid:
        return None
    currency = policy.pay.currency
    session.add(BatchRow(batch_id=batch_id, program_id=program_id, pay_date=pay_date, total_cents=0,
                         currency=currency, item_count=0, csv="", created_at=now))
    session.flush()  # a second instance collides here on the batch's unique day
    payee_ids = sorted({c.payee_id for c in plan.paid})
    payees: dict[str, tuple[str, str]] = {}
    for i in range(0, len(payee_ids), 500):
        for person_id, name, email in session.exec(
            select(PayeeRow.person_id, PayeeRow.name, PayeeRow.email)
            .where(col(PayeeRow.person_id).in_(payee_ids[i : i + 500]))
        ).all():
            payees[person_id] = (name, email)
    items = [
        {"batch_id": batch_id, "reference_type": c.reference_type, "reference": c.reference, "payee_id": c.payee_id,
         "amount_cents": cents(c.amount)}
        for c in plan.paid
    ]
    if item_delay_s:  # fault tests only: widen the window in which a crash lands mid-batch
        for item in items:
            session.execute(insert(PayoutItemRow.__table__), [item])  # type: ignore[attr-defined]
            time.sleep(item_delay_s)
    else:
        session.execute(insert(PayoutItemRow.__table__), items)  # type: ignore[attr-defined]
    rows = [
        CsvRow(*payees.get(c.payee_id, (c.payee_id, "")), c.amount, currency, c.memo, c.reference)
        for c in plan.paid
    ]
    statements = [c.reference for c in plan.paid if c.reference_type == "statement"]
    reimbursements = [c.reference for c in plan.paid if c.reference_type == "reimbursement"]
    for chunk in _chunks(statements):
        done = session.execute(
            update(StatementRow)
            .where(col(StatementRow.statement_id).in_(chunk), col(StatementRow.status) == StatementStatus.APPROVED.value,
                   col(StatementRow.batch_id).is_(None))
            .values(status=StatementStatus.ISSUED.value, batch_id=batch_id, updated_at=now)
        )
        if done.rowcount != len(chunk):  # type: ignore[attr-defined]
            raise RuntimeError(f"batch {batch_id}: statements changed while the batch was built; retrying later")
    for chunk in _chunks(reimbursements):
        session.execute(
            update(ReimbursementRow).where(col(ReimbursementRow.reimbursement_id).in_(chunk))
            .values(batch_id=batch_id)
        )
    total = sum((c.amount for c in plan.paid), from_cents(0))
    batch = session.get(BatchRow, batch_id)
    assert batch is not None
    batch.total_cents, batch.item_count, batch.csv = cents(total), len(plan.paid), payout_csv(rows)
    session.add(batch)
    audit(session, now, "batch", batch_id, "issued", actor, pay_date=pay_date, items=len(plan.paid), total=total,
          held=[c.reference for c, _ in plan.held])
    emit(PayoutIssued(
        batch_id=batch_id, program_id=program_id, pay_date=pay_date, total=Money(amount=total, currency=currency),
        items=[PayoutItem(reference=c.reference, payee_id=c.payee_id, amount=Money(amount=c.amount, currency=currency))
               for c in plan.paid],
    ))
    log.info("payout batch %s for %s on %s: %d items, %s %s", batch_id, program_id, pay_date, len(plan.paid),
             total, currency)
    return batch


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@dataclass(frozen=True)
class PayoutRun:
    """What one program's payout for one pay day came to."""

    program_id: str
    pay_date: date
    batch_id: str | None  # the program's batch for that day (new or earlier); None: nothing was due
    created: bool  # issued by this run


def pay_program(
    db: Database, emit_for: Callable[[Session], Emit], now: datetime, program_id: str, policy: ProgramPolicy,
    pay_date: date, *, actor: str = SYSTEM, item_delay_s: float = 0.0,
) -> PayoutRun:
    """The payout of one program for one pay day, in one transaction: the pay-day job and the staff
    action both come through here. The day's batch is issued once; any later or concurrent run
    finds it and issues nothing (a staff re-run is audited on the batch)."""
    batch_id = batch_id_for(program_id, pay_date)
    try:
        with db.session() as session:
            exists = session.get(BatchRow, batch_id) is not None
            if exists and actor == SYSTEM:  # the job's every later run on the day: nothing to say
                return PayoutRun(program_id, pay_date, batch_id, created=False)
            if not exists:
                log.info("payout for %s on %s: building the batch", program_id, pay_date)
                if issue_batch(session, emit_for(session), now, program_id, policy, pay_date, actor=actor,
                               item_delay_s=item_delay_s) is not None:
                    return PayoutRun(program_id, pay_date, batch_id, created=True)
    except IntegrityError:
        # Another instance issued this pay day's batch (or paid one of its items) first; the
        # constraints refused ours and nothing of it was kept.
        log.info("payout for %s on %s: another instance issued it first", program_id, pay_date)
    # Nothing issued here. The day's batch may exist: issued earlier, or by a run that held the
    # rows first (its items were then no longer candidates for this one).
    with db.session() as session:
        found = session.get(BatchRow, batch_id) is not None
        if found and actor != SYSTEM:
            audit(session, now, "batch", batch_id, "rerun", actor, pay_date=pay_date,
                  outcome="the day's batch exists: nothing issued")
    return PayoutRun(program_id, pay_date, batch_id if found else None, created=False)


def run_payouts(db: Database, emit_for: Callable[[Session], Emit], clock_now: Callable[[], datetime],
                *, item_delay_s: float = 0.0) -> list[str]:
    """The pay-day job: for every program whose pay day has come, issue its batch (one
    transaction per program). Returns the batch ids issued now."""
    with db.session() as session:
        programs = [(p.program_id, ProgramPolicy.model_validate_json(p.policy))
                    for p in session.exec(select(ProgramRow)).all()]
    issued: list[str] = []
    for program_id, policy in programs:
        now = clock_now()
        day = due_pay_day(now, policy.timezone, policy.pay.pay_day)
        if day is None:
            continue
        run = pay_program(db, emit_for, now, program_id, policy, day, item_delay_s=item_delay_s)
        if run.created and run.batch_id:
            issued.append(run.batch_id)
    return issued


def pay_now(db: Database, emit_for: Callable[[Session], Emit], now: datetime, program_id: str,
            pay_date: date | None, actor: str) -> PayoutRun:
    """The staff action "run the payout now": the program's payout for `pay_date` (default: today in
    the program's time zone), which must not be in the future."""
    with db.session() as session:
        program = session.get(ProgramRow, program_id)
        if program is None:
            raise NotFound("program_id", f"no program {program_id}")
        policy = ProgramPolicy.model_validate_json(program.policy)
    today = local_date(now, policy.timezone)
    day = pay_date or today
    if day > today:
        raise DomainError("pay_date", f"{day.isoformat()} is in the future: today is {today.isoformat()} "
                          f"in {policy.timezone}", "in_future")
    return pay_program(db, emit_for, now, program_id, policy, day, actor=actor)
