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
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy import event as sa_event
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col, select

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
    session.execute(insert(AuditRow.__table__), [  # type: ignore[attr-defined]
        _audit_row(now, subject_type, subject_id, action, actor, **detail)
    ])


def _audit_row(now: datetime, subject_type: str, subject_id: str, action: str, actor: str,
               **detail: Any) -> dict[str, Any]:
    return {"subject_type": subject_type, "subject_id": subject_id, "action": action, "actor": actor, "at": now,
            "detail": json.dumps(detail, default=str, sort_keys=True)}


# -- projections from matching ------------------------------------------------------------------
def program_configured(session: Session, event: ProgramConfigured) -> None:
    prepare_queued(session)
    row = session.get(ProgramRow, event.program_id)
    policy = event.policy.model_dump_json()
    if row is None:
        session.add(ProgramRow(program_id=event.program_id, name=event.name, revision=event.revision, policy=policy))
    elif event.revision >= row.revision:  # an older revision arriving late changes nothing
        row.name, row.revision, row.policy = event.name, event.revision, policy
        session.add(row)


def mentor_enrolled(session: Session, event: MentorEnrolled) -> None:
    prepare_queued(session)
    _upsert(session, PayeeRow, {"person_id": event.person_id, "program_id": event.program_id, "name": event.name,
                                "email": event.email}, key="person_id")


def _upsert(session: Session, model: type[SQLModel], row: dict[str, Any], *, key: str) -> None:
    """Insert or update one row by its key, in one statement (projections of other services' data)."""
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(**row)
    session.execute(stmt.on_conflict_do_update(index_elements=[key], set_={k: v for k, v in row.items() if k != key}))


def mentor_profile_updated(session: Session, event: MentorProfileUpdated) -> None:
    prepare_queued(session)
    row = session.get(PayeeRow, event.person_id)
    if row is None:
        return
    row.name = event.name or row.name
    row.email = event.email or row.email
    session.add(row)


def mentee_matched(session: Session, event: MenteeMatched) -> None:
    prepare_queued(session)
    _upsert(session, PartnershipRow, {"partnership_id": event.partnership_id, "program_id": event.program_id,
                                      "mentor_id": event.mentor_id, "mentee_id": event.mentee_id},
            key="partnership_id")


def policy_of(session: Session, program_id: str) -> ProgramPolicy | None:
    row = session.get(ProgramRow, program_id)
    return ProgramPolicy.model_validate_json(row.policy) if row else None


# -- statements ---------------------------------------------------------------------------------
def month_closed(session: Session, emit: Emit, now: datetime, event: MonthClosed) -> None:
    """Prepare the mentor's statement for the closed month (once: a second MonthClosed for the
    same mentor and month, redelivered or re-sent, finds the statement and changes nothing).

    Statements are prepared when the transaction commits (or before the next handler reads the
    store), so that a consumer batch of MonthClosed events is prepared together: the store is
    read once per batch and rows are inserted in bulk. A second close of the same mentor in the
    batch first prepares the ones queued, so each mentor's events still apply in order."""
    queued = _queued_closes(session)
    if (event.program_id, event.mentor_id) in queued.mentors:
        prepare_queued(session)
    queued.add(_QueuedClose(event, emit, now))


@dataclass(frozen=True)
class _QueuedClose:
    event: MonthClosed
    emit: Emit
    now: datetime


_QUEUE = "payments.month_closes"


@dataclass
class _Queue:
    closes: list[_QueuedClose] = field(default_factory=list)
    mentors: set[tuple[str, str]] = field(default_factory=set)

    def add(self, close: _QueuedClose) -> None:
        self.closes.append(close)
        self.mentors.add((close.event.program_id, close.event.mentor_id))


def _queued_closes(session: Session) -> _Queue:
    queued: _Queue | None = session.info.get(_QUEUE)
    if queued is None:
        queued = session.info[_QUEUE] = _Queue()
        sa_event.listen(session, "before_commit", prepare_queued)
    return queued


def prepare_queued(session: Session) -> None:
    """Prepare the statements of the MonthClosed events queued in this transaction."""
    queued: _Queue | None = session.info.get(_QUEUE)
    if not queued or not queued.closes:
        return
    batch = queued.closes
    session.info[_QUEUE] = _Queue()
    policies: dict[str, ProgramPolicy] = {}
    for program_id in {q.event.program_id for q in batch}:
        policy = policy_of(session, program_id)
        if policy is None:
            raise TransientError(f"program {program_id} is not configured yet")
        policies[program_id] = policy
    by_id = {statement_id_for(q.event.program_id, q.event.mentor_id, q.event.month): q for q in batch}
    existing = _existing(session, StatementRow.__table__.c.statement_id, list(by_id))  # type: ignore[attr-defined]
    for sid in existing:
        q = by_id.pop(sid)
        log.info("statement %s for %s %s exists; MonthClosed ignored", sid, q.event.mentor_id, q.event.month)
    history: set[tuple[str, str]] = set()  # mentors with statements or pending adjustments already
    for program_id in policies:
        mentors = sorted({q.event.mentor_id for q in by_id.values() if q.event.program_id == program_id})
        for i in range(0, len(mentors), 500):
            chunk = mentors[i : i + 500]
            for model in (StatementRow, PendingAdjustmentRow):
                history.update(
                    (program_id, m) for m in session.exec(
                        select(model.mentor_id).where(
                            model.program_id == program_id, col(model.mentor_id).in_(chunk)
                        )
                    ).all()
                )
    known = _existing(session, EntryRow.__table__.c.entry_id,  # type: ignore[attr-defined]
                      [e.entry_id for q in by_id.values() for e in q.event.entries])
    fresh: list[tuple[str, _QueuedClose]] = []
    for sid, q in by_id.items():
        e = q.event
        if (e.program_id, e.mentor_id) in history or any(x.entry_id in known for x in e.entries):
            _prepare_one(session, q.emit, q.now, e, policies[e.program_id], sid)
        else:
            fresh.append((sid, q))
    _prepare_fresh(session, fresh, policies)


def _existing(session: Session, column: Any, values: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(values), 500):
        found.update(session.execute(sa_select(column).where(column.in_(values[i : i + 500]))).scalars())
    return found


def _prepare_fresh(session: Session, fresh: list[tuple[str, _QueuedClose]], policies: dict[str, ProgramPolicy]) -> None:
    """Mentors payments has never paid or recorded anything for: their statement depends only on
    the event, so it is computed without reading the store and inserted in bulk."""
    if not fresh:
        return
    entries, statements_, lines, audits = [], [], [], []
    for sid, q in fresh:
        e, policy = q.event, policies[q.event.program_id]
        work = [WorkEntry(x.entry_id, x.kind, x.work_date, x.minutes) for x in e.entries]
        by_month: dict[str, list[WorkEntry]] = defaultdict(list, {e.month: []})
        for w in work:
            by_month[w.work_month].append(w)
        draft = statement_lines(e.month, [month_pay(m, ws, policy.pay) for m, ws in by_month.items()], {})
        entries += [
            {"entry_id": w.entry_id, "program_id": e.program_id, "mentor_id": e.mentor_id, "work_month": w.work_month,
             "kind": w.kind.value, "work_date": w.work_date, "minutes": w.minutes, "voided": False}
            for w in work
        ]
        statements_.append({
            "statement_id": sid, "program_id": e.program_id, "mentor_id": e.mentor_id, "month": e.month,
            "status": StatementStatus.IN_REVIEW.value, "revision": 1, "total_cents": cents(draft.total),
            "currency": policy.pay.currency, "scope": json.dumps(sorted(by_month)), "created_at": q.now,
            "updated_at": q.now, "approved_by": None, "approved_at": None, "batch_id": None,
        })
        lines += _line_rows(sid, draft)
        audits.append(_audit_row(q.now, "statement", sid, "prepared", SYSTEM, total=draft.total,
                                 lines=len(draft.lines)))
        q.emit(StatementPrepared(
            statement_id=sid, program_id=e.program_id, mentor_id=e.mentor_id, month=e.month,
            total=Money(amount=from_cents(cents(draft.total)), currency=policy.pay.currency), revision=1,
        ))
    for table, rows in ((EntryRow, entries), (StatementRow, statements_), (StatementLineRow, lines),
                        (AuditRow, audits)):
        if rows:
            session.execute(insert(table.__table__), rows)  # type: ignore[union-attr]


def _prepare_one(session: Session, emit: Emit, now: datetime, event: MonthClosed, policy: ProgramPolicy,
                 sid: str) -> None:
    """A mentor with history (earlier statements, known entries, pending adjustments)."""
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
    for p in pending:  # changes waiting for this statement (its own month's close carries its own)
        if p.work_month <= event.month:
            scope.add(p.work_month)
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
    rows = _line_rows(statement.statement_id, draft)
    if rows:
        session.execute(insert(StatementLineRow.__table__), rows)  # type: ignore[attr-defined]
    statement.total_cents = cents(draft.total)
    session.add(statement)
    return draft


def _line_rows(statement_id: str, draft: StatementDraft) -> list[dict[str, Any]]:
    return [
        {
            "statement_id": statement_id, "seq": i, "line_type": line.line_type.value, "work_month": line.work_month,
            "entry_id": line.entry_id, "kind": line.kind.value if line.kind else None, "work_date": line.work_date,
            "minutes": line.minutes, "paid_minutes": f"{line.paid_minutes.normalize():f}", "rate": str(line.rate),
            "amount_cents": cents(line.amount), "note": line.note,
        }
        for i, line in enumerate(draft.lines)
    ]


def _recompute(session: Session, emit: Emit, now: datetime, statement: StatementRow, policy: ProgramPolicy,
               why: str, *, back_to_review: bool = False) -> None:
    """Recompute an open statement; if its lines changed (or the mentor answered a
    clarification) it goes back to review as a new revision."""
    lines = StatementLineRow.__table__.c  # type: ignore[attr-defined]
    before = [
        tuple(r)
        for r in session.execute(
            sa_select(lines.line_type, lines.work_month, lines.entry_id, lines.amount_cents, lines.minutes, lines.kind)
            .where(lines.statement_id == statement.statement_id).order_by(lines.seq)
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
    still_asking = session.exec(
        select(ClarificationRow.id).where(
            ClarificationRow.statement_id == statement.statement_id, col(ClarificationRow.answered_at).is_(None)
        ).limit(1)
    ).first()
    # Back to review, unless staff still wait for the mentor's answer about other entries.
    statement.status = (StatementStatus.CLARIFICATION if still_asking is not None else StatementStatus.IN_REVIEW).value
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
    prepare_queued(session)
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
    prepare_queued(session)
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


def approve_many(session: Session, emit: Emit, now: datetime, statement_ids: Sequence[str], actor: str,
                 ) -> dict[str, list[Any]]:
    """Approve many statements at once (a reviewer's "approve all checked"). Each is approved
    under the same rules as one by one; those that cannot be are listed with the reason."""
    prepare_queued(session)
    t = StatementRow.__table__.c  # type: ignore[attr-defined]
    result: dict[str, list[Any]] = {"approved": [], "unchanged": [], "refused": []}
    ids = list(dict.fromkeys(statement_ids))
    lock = session.get_bind().dialect.name != "sqlite"
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        query = sa_select(t.statement_id, t.status, t.program_id, t.mentor_id, t.month, t.total_cents, t.currency,
                          t.revision).where(t.statement_id.in_(chunk))
        found = {r.statement_id: r for r in session.execute(query.with_for_update() if lock else query).all()}
        approving = []
        for sid in chunk:
            row = found.get(sid)
            if row is None:
                result["refused"].append({"statement_id": sid, "reason": "no such statement"})
                continue
            try:
                ensure_can_approve(StatementStatus(row.status))
            except Conflict as refused:
                result["refused"].append({"statement_id": sid, "reason": refused.problems[0].reason})
                continue
            if row.status == StatementStatus.APPROVED:
                result["unchanged"].append(sid)
            else:
                approving.append(row)
        if not approving:
            continue
        session.execute(
            update(StatementRow.__table__)  # type: ignore[attr-defined]
            .where(t.statement_id.in_([r.statement_id for r in approving]), t.status == StatementStatus.IN_REVIEW.value)
            .values(status=StatementStatus.APPROVED.value, approved_by=actor, approved_at=now, updated_at=now)
        )
        session.execute(insert(AuditRow.__table__), [  # type: ignore[attr-defined]
            _audit_row(now, "statement", r.statement_id, "approved", actor, revision=r.revision,
                       amount=from_cents(r.total_cents))
            for r in approving
        ])
        for r in approving:
            emit(PaymentApproved(
                statement_id=r.statement_id, program_id=r.program_id, mentor_id=r.mentor_id, month=r.month,
                amount=Money(amount=from_cents(r.total_cents), currency=r.currency), approved_by=actor,
            ))
            result["approved"].append(r.statement_id)
    return result


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
