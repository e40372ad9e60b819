"""HTTP routes for written feedback and its monthly quality review (internal; the gateway checks
the program and passes the actor)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from services.activity.domain.meetings import Actor, Role
from services.activity.domain.reviews import Criterion
from services.activity.entrypoints.http import _month, actor
from services.activity.service_layer import reviews
from shared.contracts.envelope import Cause
from shared.errors import Conflict, DomainError, Forbidden
from shared.service import Service, request_cause


class FeedbackIn(BaseModel):
    mentor_id: str | None = None  # staff record for a mentor; a mentor records their own
    partnership_id: str | None = None
    given_on: date
    text: str = ""
    link: str = ""


class CriterionIn(BaseModel):
    criterion_id: str = Field(min_length=1, max_length=50)
    description: str = ""


class RubricIn(BaseModel):
    criteria: list[CriterionIn]
    sample_size: int = 3


class SampleIn(BaseModel):
    month: str
    count: int | None = None


class ReviewIn(BaseModel):
    entry_id: str
    scores: dict[str, Any]
    comment: str = ""


def _staff(who: Actor, what: str) -> None:
    if not who.is_staff:
        raise Forbidden("X-Actor-Role", f"only staff {what}")


def build_review_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["reviews"])
    clock = service.clock

    @router.post("/programs/{program_id}/feedback-entries", status_code=201)
    def record_feedback(program_id: str, body: FeedbackIn, who: Actor = Depends(actor),
                        cause: Cause = Depends(request_cause)) -> Any:
        mentor_id = body.mentor_id if who.is_staff else who.actor_id
        if who.role == Role.MENTOR and body.mentor_id not in (None, who.actor_id):
            raise Forbidden("mentor_id", "a mentor records their own feedback")
        if not who.is_staff and who.role != Role.MENTOR:
            raise Forbidden("X-Actor-Role", "mentors (or staff for them) record feedback")
        if mentor_id is None:
            raise DomainError("mentor_id", "staff must say whose feedback this is", "required")
        with service.transaction(cause) as tx:
            return reviews.entry_view(reviews.record_feedback(
                tx, program_id, mentor_id, body.partnership_id, body.given_on, body.text, body.link,
                who.actor_id, clock.now()))

    @router.get("/programs/{program_id}/mentors/{mentor_id}/feedback-entries")
    def list_feedback(program_id: str, mentor_id: str, month: str | None = Query(default=None)) -> Any:
        if month is not None:
            _month(month)
        with service.db.session() as s:
            entries = reviews.entries_of(s, program_id, mentor_id, month)
            return {"program_id": program_id, "mentor_id": mentor_id, "month": month, "entries": entries}

    @router.put("/programs/{program_id}/review-rubric")
    def put_rubric(program_id: str, body: RubricIn, who: Actor = Depends(actor),
                   cause: Cause = Depends(request_cause)) -> Any:
        _staff(who, "set the review rubric")
        criteria = tuple(Criterion(c.criterion_id, c.description) for c in body.criteria)
        with service.transaction(cause) as tx:
            reviews.set_rubric(tx, program_id, criteria, body.sample_size, who.actor_id, clock.now())
            return reviews.rubric_view(tx.session, program_id)

    @router.get("/programs/{program_id}/review-rubric")
    def get_rubric(program_id: str) -> Any:
        with service.db.session() as s:
            return reviews.rubric_view(s, program_id)

    @router.post("/programs/{program_id}/mentors/{mentor_id}/review-samples")
    def draw_sample(program_id: str, mentor_id: str, body: SampleIn, who: Actor = Depends(actor),
                    cause: Cause = Depends(request_cause)) -> Any:
        _staff(who, "draw review samples")
        _month(body.month)
        with service.transaction(cause) as tx:
            picked = reviews.draw(tx, program_id, mentor_id, body.month, body.count, who.actor_id, clock.now())
            return reviews.sample_view(tx.session, program_id, mentor_id, body.month, picked)

    @router.post("/programs/{program_id}/mentors/{mentor_id}/reviews", status_code=201)
    def review(program_id: str, mentor_id: str, body: ReviewIn, who: Actor = Depends(actor),
               cause: Cause = Depends(request_cause)) -> Any:
        _staff(who, "review feedback")
        try:
            with service.transaction(cause) as tx:
                return reviews.review_view(reviews.review(tx, program_id, mentor_id, body.entry_id, body.scores,
                                                          body.comment, who.actor_id, clock.now()))
        except IntegrityError as exc:
            raise Conflict("entry_id", "this entry is already reviewed", "already_reviewed") from exc

    @router.get("/programs/{program_id}/mentors/{mentor_id}/reviews")
    def review_history(program_id: str, mentor_id: str) -> Any:
        with service.db.session() as s:
            return reviews.history(s, program_id, mentor_id)

    return router
