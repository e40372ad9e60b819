"""Statement handlers: projections from matching and activity events, preparing and recomputing
statements, and the review actions (approve, ask for clarification).

Every function works inside the caller's transaction (a consumer's HandlerContext or an HTTP
Transaction) and emits its events through `emit`, so a change and its events commit together.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from services.payments.adapters.tables import (
    AuditRow,
    ClarificationRow,
    EntryRow,
    PartnershipRow,
    PayeeRow,
    PendingAdjustmentRow,
    ProgramRow,
    StatementLineRow,
    StatementRow,
)
from services.payments.domain.review import StatementStatus, ensure_can_approve, ensure_can_ask
from services.payments.domain.statements import (
    StatementDraft,
    WorkEntry,
    month_of,
    month_pay,
    statement_lines,
)
from shared.contracts.activity import MonthClosed, TimeEntryAmended
from shared.contracts.base import Event
from shared.contracts.matching import MenteeMatched, MentorEnrolled, MentorProfileUpdated, ProgramConfigured
from shared.contracts.payments import ClarificationRequested, PaymentApproved, StatementPrepared
from shared.contracts.program import ProgramPolicy, TimeEntryKind
from shared.errors import Conflict, DomainError, NotFound
from shared.messaging import TransientError
from shared.money import Money

log = logging.getLogger(__name__)
Emit = Callable[[Event], Any]
SYSTEM = "system"
_STATEMENT_NS = uuid.UUID("6f1c3a52-7b0e-4d55-9a43-0c1f7e2b9d11")


def statement_id_for(program_id: str, mentor_id: str, month: str) -> str:
    """Deterministic, so a re-sent MonthClosed names the same statement."""
    return str(uuid.uuid5(_STATEMENT_NS, f"{program_id}/{mentor_id}/{month}"))


def cents(amount: Decimal) -> int:
    return int(amount.scaleb(2).to_integral_value())


def from_cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2).quantize(Decimal("0.01"))


def audit(session: Session, now: datetime, subject_type: str, subject_id: str, action: str, actor: str,
          **detail: Any) -> None:
    session.add(
        AuditRow(subject_type=subject_type, subject_id=subject_id, action=action, actor=actor, at=now,
                 detail=json.dumps(detail, default=str, sort_keys=True))
    )


# -- projections from matching ------------------------------------------------------------------
def program_configured(session: Session, event: ProgramConfigured) -> None:
    row = session.get(ProgramRow, event.program_id)
    policy = event.policy.model_dump_json()
    if row is None:
        session.add(ProgramRow(program_id=event.program_id, name=event.name, revision=event.revision, policy=policy))
    elif event.revision >= row.revision:  # an older revision arriving late changes nothing
        row.name, row.revision, row.policy = event.name, event.revision, policy
        session.add(row)


def mentor_enrolled(session: Session, event: MentorEnrolled) -> None:
    row = session.get(PayeeRow, event.person_id) or PayeeRow(
        person_id=event.person_id, program_id=event.program_id, name=event.name, email=event.email
    )
    row.name, row.email = event.name, event.email
    session.add(row)


def mentor_profile_updated(session: Session, event: MentorProfileUpdated) -> None:
    row = session.get(PayeeRow, event.person_id)
    if row is None:
        return
    row.name = event.name or row.name
    row.email = event.email or row.email
    session.add(row)


def mentee_matched(session: Session, event: MenteeMatched) -> None:
    row = session.get(PartnershipRow, event.partnership_id) or PartnershipRow(
        partnership_id=event.partnership_id, program_id=event.program_id,
        mentor_id=event.mentor_id, mentee_id=event.mentee_id,
    )
    row.mentor_id, row.mentee_id = event.mentor_id, event.mentee_id
    session.add(row)


def policy_of(session: Session, program_id: str) -> ProgramPolicy | None:
    row = session.get(ProgramRow, program_id)
    return ProgramPolicy.model_validate_json(row.policy) if row else None


# -- statements ---------------------------------------------------------------------------------
def month_closed(session: Session, emit: Emit, now: datetime, event: MonthClosed) -> StatementRow | None:
    """Prepare the mentor's statement for the closed month (once: a second MonthClosed for the
    same mentor and month, redelivered or re-sent, finds the statement and changes nothing)."""
    policy = policy_of(session, event.program_id)
    if policy is None:
        raise TransientError(f"program {event.program_id} is not configured yet")
    sid = statement_id_for(event.program_id, event.mentor_id, event.month)
    if session.get(StatementRow, sid) is not None:
        log.info("statement %s for %s %s exists; MonthClosed ignored", sid, event.mentor_id, event.month)
        return None
    known = {
        r.entry_id: r
        for r in session.exec(
            select(EntryRow).where(col(EntryRow.entry_id).in_([e.entry_id for e in event.entries]))
        ).all()
    } if event.entries else {}
    scope = {event.month}
    for e in event.entries:
        row = known.get(e.entry_id) or EntryRow(
            entry_id=e.entry_id, program_id=event.program_id, mentor_id=event.mentor_id,
            work_month=month_of(e.work_date), kind=e.kind.value, work_date=e.work_date, minutes=e.minutes,
        )
        row.kind, row.work_date, row.minutes = e.kind.value, e.work_date, e.minutes
        row.work_month = month_of(e.work_date)
        session.add(row)
        scope.add(row.work_month)
    pending = session.exec(
        select(PendingAdjustmentRow).where(
            PendingAdjustmentRow.program_id == event.program_id, PendingAdjustmentRow.mentor_id == event.mentor_id
        )
    ).all()
    scope.update(p.work_month for p in pending if p.work_month < event.month)
    for p in pending:
        if p.work_month < event.month:
            session.delete(p)
    statement = StatementRow(
        statement_id=sid, program_id=event.program_id, mentor_id=event.mentor_id, month=event.month,
        status=StatementStatus.IN_REVIEW.value, revision=1, total_cents=0, currency=policy.pay.currency,
        scope=json.dumps(sorted(scope)), created_at=now, updated_at=now,
    )
    session.add(statement)
    session.flush()
    draft = _write_lines(session, statement, policy, fresh=True)
    audit(session, now, "statement", sid, "prepared", SYSTEM, total=draft.total, lines=len(draft.lines))
    emit(_prepared(statement))
    return statement


def _prepared(statement: StatementRow) -> StatementPrepared:
    return StatementPrepared(
        statement_id=statement.statement_id, program_id=statement.program_id, mentor_id=statement.mentor_id,
        month=statement.month, total=Money(amount=from_cents(statement.total_cents), currency=statement.currency),
        revision=statement.revision,
    )


def _entries_of(session: Session, program_id: str, mentor_id: str, months: Iterable[str]) -> dict[str, list[WorkEntry]]:
    by_month: dict[str, list[WorkEntry]] = defaultdict(list)
    rows = session.exec(
        select(EntryRow).where(
            EntryRow.program_id == program_id, EntryRow.mentor_id == mentor_id,
            col(EntryRow.work_month).in_(list(months)),
        )
    ).all()
    for r in rows:
        by_month[r.work_month].append(WorkEntry(r.entry_id, TimeEntryKind(r.kind), r.work_date, r.minutes, r.voided))
    return by_month


def _counted_elsewhere(session: Session, statement: StatementRow, months: Sequence[str]) -> dict[tuple[str, str], Decimal]:
    rows = session.exec(
        select(StatementLineRow.work_month, StatementLineRow.entry_id, StatementLineRow.amount_cents)
        .join(StatementRow, col(StatementRow.statement_id) == col(StatementLineRow.statement_id))
        .where(
            StatementRow.program_id == statement.program_id, StatementRow.mentor_id == statement.mentor_id,
            StatementRow.statement_id != statement.statement_id, col(StatementLineRow.work_month).in_(list(months)),
        )
    ).all()
    counted: dict[tuple[str, str], int] = defaultdict(int)
    for work_month, entry_id, amount in rows:
        counted[(work_month, entry_id or "monthly_cap")] += amount
    return {k: from_cents(v) for k, v in counted.items()}


def _write_lines(session: Session, statement: StatementRow, policy: ProgramPolicy, *, fresh: bool) -> StatementDraft:
    """Compute the statement's lines from the entries as they are now and store them."""
    months = json.loads(statement.scope)
    entries = _entries_of(session, statement.program_id, statement.mentor_id, months)
    targets = [month_pay(m, entries.get(m, []), policy.pay) for m in months]
    counted = _counted_elsewhere(session, statement, months)
    draft = statement_lines(statement.month, targets, counted)
    if not fresh:
        session.execute(delete(StatementLineRow).where(col(StatementLineRow.statement_id) == statement.statement_id))
    session.add_all(
        [
            StatementLineRow(
                statement_id=statement.statement_id, seq=i, line_type=line.line_type.value,
                work_month=line.work_month, entry_id=line.entry_id, kind=line.kind.value if line.kind else None,
                work_date=line.work_date, minutes=line.minutes, paid_minutes=f"{line.paid_minutes.normalize():f}",
                rate=str(line.rate), amount_cents=cents(line.amount), note=line.note,
            )
            for i, line in enumerate(draft.lines)
        ]
    )
    statement.total_cents = cents(draft.total)
    session.add(statement)
    return draft


def _recompute(session: Session, emit: Emit, now: datetime, statement: StatementRow, policy: ProgramPolicy,
               why: str, *, back_to_review: bool = False) -> None:
    """Recompute an open statement; if its lines changed (or the mentor answered a
    clarification) it goes back to review as a new revision."""
    before = [
        (r.line_type, r.work_month, r.entry_id, r.amount_cents, r.minutes, r.kind)
        for r in session.exec(
            select(StatementLineRow).where(StatementLineRow.statement_id == statement.statement_id)
            .order_by(col(StatementLineRow.seq))
        ).all()
    ]
    draft = _write_lines(session, statement, policy, fresh=False)
    session.flush()
    after = [
        (line.line_type.value, line.work_month, line.entry_id, cents(line.amount), line.minutes,
         line.kind.value if line.kind else None)
        for line in draft.lines
    ]
    if before == after and not back_to_review:
        return
    previous = statement.status
    statement.status = StatementStatus.IN_REVIEW.value
    statement.revision += 1
    statement.updated_at = now
    statement.approved_by, statement.approved_at = None, None
    session.add(statement)
    audit(session, now, "statement", statement.statement_id, "recomputed", SYSTEM, why=why, revision=statement.revision,
          total=draft.total, previous_status=previous)
    emit(_prepared(statement))


def time_entry_amended(session: Session, emit: Emit, now: datetime, event: TimeEntryAmended) -> None:
    """An entry changed (or the mentor confirmed it): recompute the open statements that count
    its month; a month already paid is settled on the mentor's next statement."""
    row = session.get(EntryRow, event.entry_id)
    if row is None:
        if event.month is None:
            return  # its month is not closed yet: MonthClosed will carry the entry as it is now
        row = EntryRow(
            entry_id=event.entry_id, program_id=event.program_id, mentor_id=event.mentor_id,
            work_month=month_of(event.work_date), kind=event.kind.value, work_date=event.work_date,
            minutes=event.minutes, voided=event.voided,
        )
        months = {row.work_month}
    else:
        months = {row.work_month, month_of(event.work_date)}
        row.kind, row.work_date, row.minutes, row.voided = (
            event.kind.value, event.work_date, event.minutes, event.voided,
        )
        row.work_month = month_of(event.work_date)
    session.add(row)
    session.flush()
    policy = policy_of(session, event.program_id)
    if policy is None:
        raise TransientError(f"program {event.program_id} is not configured yet")
    answered = _answer_clarifications(session, now, event)
    statements = list(
        session.exec(
            select(StatementRow).where(
                StatementRow.program_id == event.program_id, StatementRow.mentor_id == event.mentor_id
            ).order_by(col(StatementRow.month))
        ).all()
    )
    why = f"entry {event.entry_id} amended" + (f": {event.reason}" if event.reason else "")
    touched: set[str] = set()
    for month in sorted(months):
        covering = [s for s in statements if _is_open(s) and month in json.loads(s.scope)]
        if not covering:
            later = [s for s in statements if _is_open(s) and s.month > month]
            if later:
                target = later[-1]
                target.scope = json.dumps(sorted({*json.loads(target.scope), month}))
                covering = [target]
            else:
                if session.get(PendingAdjustmentRow, (event.program_id, event.mentor_id, month)) is None:
                    session.add(PendingAdjustmentRow(
                        program_id=event.program_id, mentor_id=event.mentor_id, work_month=month, created_at=now,
                    ))
                continue
        for statement in covering:
            if statement.statement_id not in touched:
                touched.add(statement.statement_id)
                _recompute(session, emit, now, statement, policy, why,
                           back_to_review=statement.statement_id in answered)
    for sid in answered - touched:
        answered_statement = session.get(StatementRow, sid)
        if answered_statement is not None and _is_open(answered_statement):
            _recompute(session, emit, now, answered_statement, policy, why, back_to_review=True)


def _is_open(statement: StatementRow) -> bool:
    return StatementStatus(statement.status).open


def _answer_clarifications(session: Session, now: datetime, event: TimeEntryAmended) -> set[str]:
    """Mark open clarifications about this entry answered; return their statements."""
    answered: set[str] = set()
    rows = session.exec(
        select(ClarificationRow)
        .join(StatementRow, col(StatementRow.statement_id) == col(ClarificationRow.statement_id))
        .where(
            col(ClarificationRow.answered_at).is_(None), StatementRow.mentor_id == event.mentor_id,
            StatementRow.program_id == event.program_id,
        )
    ).all()
    for c in rows:
        if event.entry_id in json.loads(c.entry_ids):
            c.answered_at = now
            session.add(c)
            answered.add(c.statement_id)
    return answered


# -- review -------------------------------------------------------------------------------------
def get_statement(session: Session, statement_id: str, *, for_update: bool = False) -> StatementRow:
    query = select(StatementRow).where(StatementRow.statement_id == statement_id)
    if for_update:
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None:
        raise NotFound("statement_id", f"no statement {statement_id}")
    return row


def approve(session: Session, emit: Emit, now: datetime, statement_id: str, actor: str,
            revision: int | None = None) -> StatementRow:
    """Approve a statement for the next payout. Approving it again changes nothing and emits
    nothing (a retried request never approves twice)."""
    statement = get_statement(session, statement_id, for_update=True)
    ensure_can_approve(StatementStatus(statement.status))
    if revision is not None and revision != statement.revision:
        raise Conflict(
            "revision", f"the statement changed: it is at revision {statement.revision}; review it again",
            "stale_revision",
        )
    if statement.status == StatementStatus.APPROVED:
        return statement
    statement.status = StatementStatus.APPROVED.value
    statement.approved_by, statement.approved_at, statement.updated_at = actor, now, now
    session.add(statement)
    amount = from_cents(statement.total_cents)
    audit(session, now, "statement", statement_id, "approved", actor, revision=statement.revision, amount=amount)
    emit(PaymentApproved(
        statement_id=statement_id, program_id=statement.program_id, mentor_id=statement.mentor_id,
        month=statement.month, amount=Money(amount=amount, currency=statement.currency), approved_by=actor,
    ))
    return statement


def ask_clarification(session: Session, emit: Emit, now: datetime, statement_id: str, actor: str,
                      entry_ids: list[str], question: str) -> ClarificationRow:
    statement = get_statement(session, statement_id, for_update=True)
    ensure_can_ask(StatementStatus(statement.status))
    if not question.strip():
        raise DomainError("question", "must say what to clarify", "empty")
    if not entry_ids:
        raise DomainError("entry_ids", "name at least one time entry", "empty")
    on_statement = set(
        session.exec(
            select(StatementLineRow.entry_id).where(StatementLineRow.statement_id == statement_id)
        ).all()
    )
    unknown = [e for e in entry_ids if e not in on_statement]
    if unknown:
        raise DomainError("entry_ids", f"not on this statement: {', '.join(unknown)}", "unknown_entry")
    previous = statement.status
    statement.status = StatementStatus.CLARIFICATION.value
    statement.approved_by, statement.approved_at, statement.updated_at = None, None, now
    session.add(statement)
    row = ClarificationRow(statement_id=statement_id, entry_ids=json.dumps(entry_ids), question=question,
                           requested_by=actor, requested_at=now)
    session.add(row)
    audit(session, now, "statement", statement_id, "clarification_requested", actor, entry_ids=entry_ids,
          question=question, previous_status=previous)
    emit(ClarificationRequested(
        statement_id=statement_id, program_id=statement.program_id, mentor_id=statement.mentor_id,
        month=statement.month, entry_ids=entry_ids, question=question, requested_by=actor,
    ))
    return row
