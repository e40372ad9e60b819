"""HTTP routes for surveys (internal; the gateway checks the program and passes the actor)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from services.activity.domain.meetings import Actor
from services.activity.domain.surveys import Question, QuestionKind, ScheduleKind, SurveyDraft
from services.activity.entrypoints.http import actor
from services.activity.service_layer import health, surveys
from shared.contracts.envelope import Cause
from shared.errors import Conflict, Forbidden
from shared.service import Service, request_cause


class QuestionIn(BaseModel):
    question_id: str = Field(min_length=1, max_length=50)
    kind: QuestionKind
    prompt: str
    options: list[str] = Field(default_factory=list)
    required: bool = True
    flag_answer: str | None = None


class SurveyIn(BaseModel):
    title: str
    questions: list[QuestionIn]
    schedule: ScheduleKind
    every_days: int | None = None
    start_date: date | None = None
    remind_after_days: int | None = None
    audience: Literal["mentor", "mentor_and_mentee"] = "mentor"


class AnswerIn(BaseModel):
    answers: dict[str, Any]


def build_survey_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["surveys"])
    clock = service.clock

    @router.post("/programs/{program_id}/surveys", status_code=201)
    def create_survey(program_id: str, body: SurveyIn, who: Actor = Depends(actor),
                      cause: Cause = Depends(request_cause)) -> Any:
        if not who.is_staff:
            raise Forbidden("X-Actor-Role", "only staff define surveys")
        draft = SurveyDraft(program_id, body.title, tuple(
            Question(q.question_id, q.kind, q.prompt, tuple(q.options), q.required, q.flag_answer)
            for q in body.questions), body.schedule, body.every_days, body.start_date, body.remind_after_days)
        with service.transaction(cause) as tx:
            return surveys.survey_view(surveys.create_survey(tx, draft, body.audience, who.actor_id, clock.now()))

    @router.get("/programs/{program_id}/surveys")
    def list_surveys(program_id: str) -> Any:
        with service.db.session() as s:
            return surveys.program_surveys(s, program_id)

    @router.get("/programs/{program_id}/survey-results")
    def results(program_id: str) -> Any:
        with service.db.session() as s:
            return surveys.survey_results(s, program_id)

    @router.get("/programs/{program_id}/partnership-flags")
    def flags(program_id: str) -> Any:
        with service.db.session() as s:
            return surveys.partnership_flags(s, program_id)

    @router.get("/programs/{program_id}/people/{person_id}/survey-invitations")
    def invitations(program_id: str, person_id: str) -> Any:
        with service.db.session() as s:
            return surveys.person_invitations(s, program_id, person_id)

    @router.post("/programs/{program_id}/survey-rounds/{round_id}/answers", status_code=201)
    def answer(program_id: str, round_id: str, body: AnswerIn, who: Actor = Depends(actor),
               cause: Cause = Depends(request_cause)) -> Any:
        try:
            with service.transaction(cause) as tx:
                return surveys.answer_view(surveys.answer(tx, program_id, round_id, who.actor_id, body.answers, clock.now()))
        except IntegrityError as exc:  # a second answer raced the first past our check
            raise Conflict("person_id", "this person has already answered this survey round",
                           "already_answered") from exc

    return router


def build_health_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["reports"])

    @router.get("/programs/{program_id}/health")
    def program_health(program_id: str) -> Any:
        """Activity's figures for the program health report (the gateway adds the others)."""
        with service.db.session() as s:
            return health.program_health(s, program_id)

    return router
