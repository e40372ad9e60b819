"""Feedback-quality reviews: mentors record feedback; staff set a rubric, draw each mentor's
monthly sample (reproducible, and kept once drawn), score the sampled entries and comment
(FeedbackReviewed: notify emails the mentor); the review history for the mentor and staff."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import uuid4

from sqlmodel import Session, col, select

from services.activity.adapters.review_tables import (
    FeedbackEntryRow,
    FeedbackReviewRow,
    ReviewRubricRow,
    ReviewSampleRow,
)
from services.activity.adapters.tables import PartnershipRow, as_utc
from services.activity.domain import reviews as rules
from services.activity.domain.calendar import first_day, month_of, next_month
from services.activity.domain.reviews import Criterion
from services.activity.service_layer.unit import Unit, insert_if_absent, require_policy
from shared.contracts.activity import FeedbackReviewed
from shared.errors import Conflict, DomainError, Forbidden, NotFound


def record_feedback(unit: Unit, program_id: str, mentor_id: str, partnership_id: str | None, given_on: date,
                    text: str, link: str, recorded_by: str, now: datetime) -> FeedbackEntryRow:
    rules.check_feedback(text, link)
    require_policy(unit.session, program_id)
    if partnership_id is not None:
        pa = unit.session.get(PartnershipRow, partnership_id)
        if pa is None or pa.program_id != program_id:
            raise NotFound("partnership_id", f"no partnership {partnership_id!r} in program {program_id!r}")
        if pa.mentor_id != mentor_id:
            raise Forbidden("partnership_id", f"{mentor_id!r} is not the mentor of {partnership_id!r}")
    row = FeedbackEntryRow(entry_id=f"fb-{uuid4().hex[:12]}", program_id=program_id, mentor_id=mentor_id,
                           partnership_id=partnership_id, given_on=given_on, text=text, link=link,
                           recorded_by=recorded_by, recorded_at=now)
    unit.session.add(row)
    unit.session.flush()
    return row


def set_rubric(unit: Unit, program_id: str, criteria: tuple[Criterion, ...], sample_size: int, by: str,
               now: datetime) -> ReviewRubricRow:
    rules.check_rubric(criteria, sample_size)
    require_policy(unit.session, program_id)
    row = unit.session.get(ReviewRubricRow, program_id) or ReviewRubricRow(program_id=program_id, criteria="[]",
                                                                           updated_at=now)
    row.criteria = json.dumps([c.as_dict() for c in criteria])
    row.sample_size, row.updated_by, row.updated_at = sample_size, by, now
    unit.session.add(row)
    unit.session.flush()
    return row


def rubric_of(s: Session, program_id: str) -> tuple[ReviewRubricRow, tuple[Criterion, ...]]:
    row = s.get(ReviewRubricRow, program_id)
    if row is None:
        raise NotFound("program_id", f"program {program_id!r} has no review rubric yet (PUT its rubric first)")
    return row, tuple(Criterion(c["criterion_id"], c["description"]) for c in json.loads(row.criteria))


def _month_entries(s: Session, program_id: str, mentor_id: str, month: str) -> list[str]:
    return list(s.exec(select(FeedbackEntryRow.entry_id).where(
        FeedbackEntryRow.program_id == program_id, FeedbackEntryRow.mentor_id == mentor_id,
        FeedbackEntryRow.given_on >= first_day(month), FeedbackEntryRow.given_on < first_day(next_month(month)))
    ).all())


def draw(unit: Unit, program_id: str, mentor_id: str, month: str, count: int | None, by: str,
         now: datetime) -> list[str]:
    """The month's sample: drawn (seeded from program+mentor+month) and kept the first time."""
    s = unit.session
    kept = s.get(ReviewSampleRow, (program_id, mentor_id, month))
    if kept is not None:
        return list(json.loads(kept.entry_ids))
    rubric, _ = rubric_of(s, program_id)
    size = count if count is not None else rubric.sample_size
    if not 1 <= size <= rules.MAX_SAMPLE:
        raise DomainError("count", f"from 1 to {rules.MAX_SAMPLE} entries", "out_of_range")
    picked = rules.draw_sample(_month_entries(s, program_id, mentor_id, month), size, program_id, mentor_id, month)
    if not picked:
        raise NotFound("month", f"{mentor_id!r} recorded no feedback in {month}", "no_entries")
    values = {"program_id": program_id, "mentor_id": mentor_id, "month": month, "entry_ids": json.dumps(picked),
              "drawn_by": by, "drawn_at": now}
    if not insert_if_absent(s, ReviewSampleRow.__table__, values, "month"):  # type: ignore[attr-defined]
        kept = s.get(ReviewSampleRow, (program_id, mentor_id, month))  # a racing draw kept its (same) sample
        assert kept is not None
        return list(json.loads(kept.entry_ids))
    return picked


def sample_view(s: Session, program_id: str, mentor_id: str, month: str, entry_ids: list[str]) -> dict[str, Any]:
    entries = {e.entry_id: e for e in s.exec(select(FeedbackEntryRow).where(
        col(FeedbackEntryRow.entry_id).in_(entry_ids))).all()}
    reviewed = {r.entry_id: review_view(r) for r in s.exec(select(FeedbackReviewRow).where(
        col(FeedbackReviewRow.entry_id).in_(entry_ids))).all()}
    return {"program_id": program_id, "mentor_id": mentor_id, "month": month,
            "entries": [{**entry_view(entries[i]), "review": reviewed.get(i)} for i in entry_ids if i in entries]}


def review(unit: Unit, program_id: str, mentor_id: str, entry_id: str, scores: dict[str, Any], comment: str,
           by: str, now: datetime) -> FeedbackReviewRow:
    s = unit.session
    entry = s.get(FeedbackEntryRow, entry_id)
    if entry is None or entry.program_id != program_id or entry.mentor_id != mentor_id:
        raise NotFound("entry_id", f"no feedback entry {entry_id!r} of {mentor_id!r} in {program_id!r}")
    month = month_of(entry.given_on)
    kept = s.get(ReviewSampleRow, (program_id, mentor_id, month))
    if kept is None or entry_id not in json.loads(kept.entry_ids):
        raise Conflict("entry_id", f"{entry_id!r} is not in {mentor_id!r}'s sample for {month} (draw it first)",
                       "not_sampled")
    if s.exec(select(FeedbackReviewRow).where(FeedbackReviewRow.entry_id == entry_id)).first() is not None:
        raise Conflict("entry_id", f"{entry_id!r} is already reviewed", "already_reviewed")
    _, criteria = rubric_of(s, program_id)
    clean = rules.check_scores(criteria, scores)
    row = FeedbackReviewRow(review_id=f"rv-{uuid4().hex[:12]}", entry_id=entry_id, program_id=program_id,
                            mentor_id=mentor_id, month=month, scores=json.dumps(clean), comment=comment,
                            reviewed_by=by, reviewed_at=now)
    s.add(row)
    s.flush()
    unit.emit(FeedbackReviewed(review_id=row.review_id, entry_id=entry_id, program_id=program_id,
                               mentor_id=mentor_id, month=month, scores=clean, comment=comment))
    return row


def entry_view(row: FeedbackEntryRow) -> dict[str, Any]:
    return {"entry_id": row.entry_id, "program_id": row.program_id, "mentor_id": row.mentor_id,
            "partnership_id": row.partnership_id, "given_on": row.given_on.isoformat(), "text": row.text,
            "link": row.link, "recorded_at": as_utc(row.recorded_at).isoformat()}


def review_view(row: FeedbackReviewRow) -> dict[str, Any]:
    return {"review_id": row.review_id, "entry_id": row.entry_id, "month": row.month,
            "scores": json.loads(row.scores), "comment": row.comment, "reviewed_by": row.reviewed_by,
            "reviewed_at": as_utc(row.reviewed_at).isoformat()}


def history(s: Session, program_id: str, mentor_id: str) -> dict[str, Any]:
    rows = s.exec(select(FeedbackReviewRow).where(FeedbackReviewRow.program_id == program_id,
                                                  FeedbackReviewRow.mentor_id == mentor_id)
                  .order_by(col(FeedbackReviewRow.month), col(FeedbackReviewRow.reviewed_at))).all()
    months: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        months.setdefault(r.month, []).append(review_view(r))
    return {"program_id": program_id, "mentor_id": mentor_id, "months": [
        {"month": m, "reviews": rs,
         "average_score": round(sum(v for r in rs for v in r["scores"].values())
                                / max(1, sum(len(r["scores"]) for r in rs)), 2)}
        for m, rs in months.items()]}


def entries_of(s: Session, program_id: str, mentor_id: str, month: str | None) -> list[dict[str, Any]]:
    query = select(FeedbackEntryRow).where(FeedbackEntryRow.program_id == program_id,
                                           FeedbackEntryRow.mentor_id == mentor_id)
    if month is not None:
        query = query.where(FeedbackEntryRow.given_on >= first_day(month),
                            FeedbackEntryRow.given_on < first_day(next_month(month)))
    return [entry_view(r) for r in s.exec(query.order_by(col(FeedbackEntryRow.given_on))).all()]


def rubric_view(s: Session, program_id: str) -> dict[str, Any]:
    row, criteria = rubric_of(s, program_id)
    return {"program_id": program_id, "criteria": [c.as_dict() for c in criteria], "sample_size": row.sample_size,
            "scores": {"min": rules.SCORE_MIN, "max": rules.SCORE_MAX}, "updated_by": row.updated_by,
            "updated_at": as_utc(row.updated_at).isoformat()}
