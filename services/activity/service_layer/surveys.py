"""Surveys: define (staff), open rounds and invite (job `surveys`), remind, answer, flag.

Rounds open from the service's own projection (partnerships, mentors, the meeting view built from
MeetingLogged), on the injected clock. A round's (survey, key) is unique in the store, so two
instances running the job at once open it once and invite once; a reminder is claimed with a
conditional UPDATE (reminded_at IS NULL), so it goes once per invitation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from services.activity.adapters.survey_tables import (
    EnrolledMentorRow,
    PartnershipFlagRow,
    SurveyAnswerRow,
    SurveyInvitationRow,
    SurveyRoundRow,
    SurveyRow,
)
from services.activity.adapters.tables import MeetingViewRow, MentorRow, PartnershipRow, as_utc
from services.activity.domain import surveys as rules
from services.activity.domain.surveys import Question, ScheduleKind, SurveyDraft
from services.activity.service_layer.unit import Unit, insert_if_absent, policy_of, require_policy
from shared.clock import local_date
from shared.contracts.activity import PartnershipFlagged, SurveyAnswered, SurveyInvited
from shared.contracts.matching import MentorEnrolled
from shared.errors import Conflict, DomainError, Forbidden, NotFound
from shared.messaging import HandlerContext

AUDIENCES = ("mentor", "mentor_and_mentee")


def create_survey(unit: Unit, draft: SurveyDraft, audience: str, created_by: str, now: datetime) -> SurveyRow:
    rules.check_survey(draft)
    if audience not in AUDIENCES:
        raise DomainError("audience", f"must be one of {list(AUDIENCES)}", "unknown_audience")
    if audience != "mentor" and not draft.schedule.per_partnership:
        raise DomainError("audience", "mentees are asked only about their own partnership", "not_allowed")
    require_policy(unit.session, draft.program_id)
    row = SurveyRow(
        survey_id=f"sv-{uuid4().hex[:12]}", program_id=draft.program_id, title=draft.title,
        questions=json.dumps([q.as_dict() for q in draft.questions]), schedule=draft.schedule.value,
        every_days=draft.every_days, start_date=draft.start_date, remind_after_days=draft.remind_after_days,
        audience=audience, created_by=created_by, created_at=now,
    )
    unit.session.add(row)
    unit.session.flush()
    return row


def on_mentor_enrolled(ctx: HandlerContext, event: MentorEnrolled) -> None:
    """Projection: a program-wide survey asks every enrolled mentor, partnered yet or not."""
    values = {"mentor_id": event.person_id, "program_id": event.program_id}
    insert_if_absent(ctx.session, EnrolledMentorRow.__table__, values, "mentor_id")  # type: ignore[attr-defined]


def questions_of(row: SurveyRow) -> tuple[Question, ...]:
    return tuple(Question.from_dict(q) for q in json.loads(row.questions))


# -- the job ------------------------------------------------------------------------------------
Units = Callable[[], AbstractContextManager[Unit]]


def run_surveys(units: Units, now: datetime) -> dict[str, int]:
    """Open every due round (inviting its people) and send every due reminder. Idempotent."""
    opened = reminded = 0
    with units() as u:
        surveys = u.session.exec(select(SurveyRow).where(col(SurveyRow.active))).all()
        survey_ids = [s.survey_id for s in surveys]
    for survey_id in survey_ids:
        with units() as u:
            survey = u.session.get(SurveyRow, survey_id)
            if survey is not None:
                opened += open_due_rounds(u, survey, now)
    with units() as u:
        reminded = send_reminders(u, now)
    return {"rounds_opened": opened, "reminders": reminded}


def open_due_rounds(unit: Unit, survey: SurveyRow, now: datetime) -> int:
    s = unit.session
    policy = policy_of(s, survey.program_id)
    if policy is None:
        return 0
    schedule = ScheduleKind(survey.schedule)
    if not schedule.per_partnership:
        key = rules.due_round_key(schedule, survey.start_date, survey.every_days, local_date(now, policy.timezone))
        if key is None:
            return 0
        # The program's mentors: enrolled (MentorEnrolled) or partnered now, less those leaving.
        leaving = set(s.exec(select(MentorRow.mentor_id).where(col(MentorRow.leaving))).all())
        enrolled = s.exec(select(EnrolledMentorRow.mentor_id).where(
            EnrolledMentorRow.program_id == survey.program_id)).all()
        partnered = s.exec(select(PartnershipRow.mentor_id).distinct().where(
            PartnershipRow.program_id == survey.program_id, col(PartnershipRow.matched),
            col(PartnershipRow.ended_at).is_(None))).all()
        mentors = sorted(({*enrolled, *partnered} - leaving) - {""})
        return int(_open_round(unit, survey, key, None, mentors, now))
    done = set(s.exec(select(SurveyRoundRow.partnership_id).where(SurveyRoundRow.survey_id == survey.survey_id)).all())
    query = select(PartnershipRow).where(PartnershipRow.program_id == survey.program_id, col(PartnershipRow.matched))
    if schedule is ScheduleKind.FIRST_MEETING:
        met = select(MeetingViewRow.partnership_id).where(
            MeetingViewRow.program_id == survey.program_id, col(MeetingViewRow.voided).is_(False))
        query = query.where(col(PartnershipRow.partnership_id).in_(met), col(PartnershipRow.ended_at).is_(None))
    else:
        query = query.where(col(PartnershipRow.ended_at).is_not(None))
    opened = 0
    for pa in s.exec(query.order_by(col(PartnershipRow.partnership_id))).all():
        if pa.partnership_id in done:
            continue
        people = [pa.mentor_id] + ([pa.mentee_id] if survey.audience == "mentor_and_mentee" and pa.mentee_id else [])
        opened += _open_round(unit, survey, f"pa:{pa.partnership_id}", pa.partnership_id, people, now)
    return opened


def _open_round(unit: Unit, survey: SurveyRow, key: str, partnership_id: str | None, people: list[str],
                now: datetime) -> bool:
    round_id = f"sr-{uuid4().hex[:12]}"
    values = {"round_id": round_id, "survey_id": survey.survey_id, "program_id": survey.program_id,
              "round_key": key, "partnership_id": partnership_id, "opened_at": now}
    if not insert_if_absent(unit.session, SurveyRoundRow.__table__, values, "round_id"):  # type: ignore[attr-defined]
        return False  # another instance (or an earlier run) opened it
    for person_id in people:
        inv = SurveyInvitationRow(round_id=round_id, survey_id=survey.survey_id, program_id=survey.program_id,
                                  person_id=person_id, invited_at=now)
        unit.session.add(inv)
        unit.session.flush()
        unit.emit(SurveyInvited(invitation_id=str(inv.id), round_id=round_id, survey_id=survey.survey_id,
                                program_id=survey.program_id, person_id=person_id, title=survey.title,
                                partnership_id=partnership_id))
    return True


def send_reminders(unit: Unit, now: datetime) -> int:
    s = unit.session
    rows = s.exec(
        select(SurveyInvitationRow, SurveyRow, SurveyRoundRow)
        .join(SurveyRow, col(SurveyRow.survey_id) == col(SurveyInvitationRow.survey_id))
        .join(SurveyRoundRow, col(SurveyRoundRow.round_id) == col(SurveyInvitationRow.round_id))
        .where(col(SurveyInvitationRow.answered_at).is_(None), col(SurveyInvitationRow.reminded_at).is_(None),
               col(SurveyRow.remind_after_days).is_not(None))
    ).all()
    sent = 0
    for inv, survey, rnd in rows:
        if not rules.reminder_due(as_utc(inv.invited_at), survey.remind_after_days, now):
            continue
        claimed = s.execute(  # type: ignore[attr-defined]
            update(SurveyInvitationRow).where(col(SurveyInvitationRow.id) == inv.id,
                                              col(SurveyInvitationRow.reminded_at).is_(None),
                                              col(SurveyInvitationRow.answered_at).is_(None))
            .values(reminded_at=now)
        ).rowcount
        if claimed == 1:
            unit.emit(SurveyInvited(invitation_id=str(inv.id), round_id=inv.round_id, survey_id=survey.survey_id,
                                    program_id=survey.program_id, person_id=inv.person_id, title=survey.title,
                                    partnership_id=rnd.partnership_id, reminder=True))
            sent += 1
    return sent


# -- answers ------------------------------------------------------------------------------------
def answer(unit: Unit, program_id: str, round_id: str, person_id: str, answers: dict[str, Any],
           now: datetime) -> SurveyAnswerRow:
    s = unit.session
    rnd = s.get(SurveyRoundRow, round_id)
    if rnd is None or rnd.program_id != program_id:
        raise NotFound("round_id", f"no survey round {round_id!r}")
    inv = s.exec(select(SurveyInvitationRow).where(SurveyInvitationRow.round_id == round_id,
                                                   SurveyInvitationRow.person_id == person_id)).first()
    if inv is None:
        raise Forbidden("person_id", f"{person_id!r} was not invited to this survey round", "not_invited")
    if inv.answered_at is not None:
        raise Conflict("person_id", f"{person_id!r} has already answered this survey round", "already_answered")
    survey = s.get(SurveyRow, rnd.survey_id)
    assert survey is not None
    questions = questions_of(survey)
    checked = rules.check_answers(questions, answers)
    row = SurveyAnswerRow(
        answer_id=f"sa-{uuid4().hex[:12]}", round_id=round_id, survey_id=rnd.survey_id, program_id=rnd.program_id,
        person_id=person_id, partnership_id=rnd.partnership_id, answers=json.dumps(checked.answers),
        average_rating=rules.average_rating(questions, checked.answers), answered_at=now,
    )
    s.add(row)
    s.flush()  # the unique (round, person) refuses a racing second answer here
    inv.answered_at = now
    s.add(inv)
    unit.emit(SurveyAnswered(answer_id=row.answer_id, round_id=round_id, survey_id=rnd.survey_id,
                             program_id=rnd.program_id, person_id=person_id, partnership_id=rnd.partnership_id,
                             average_rating=row.average_rating))
    if checked.flagged_by is not None and rnd.partnership_id is not None:
        q = next(q for q in questions if q.question_id == checked.flagged_by)
        reason = f"{q.prompt} -> {checked.answers[q.question_id]}"
        s.add(PartnershipFlagRow(flag_id=f"fl-{uuid4().hex[:12]}", partnership_id=rnd.partnership_id,
                                 program_id=rnd.program_id, round_id=round_id, person_id=person_id,
                                 reason=reason, flagged_at=now))
        unit.emit(PartnershipFlagged(partnership_id=rnd.partnership_id, program_id=rnd.program_id,
                                     round_id=round_id, person_id=person_id, reason=reason))
    return row


# -- views --------------------------------------------------------------------------------------
def survey_view(row: SurveyRow) -> dict[str, Any]:
    return {"survey_id": row.survey_id, "program_id": row.program_id, "title": row.title,
            "questions": json.loads(row.questions), "schedule": row.schedule, "every_days": row.every_days,
            "start_date": row.start_date.isoformat() if row.start_date else None,
            "remind_after_days": row.remind_after_days, "audience": row.audience, "active": row.active,
            "created_by": row.created_by, "created_at": as_utc(row.created_at).isoformat()}


def answer_view(row: SurveyAnswerRow) -> dict[str, Any]:
    return {"answer_id": row.answer_id, "round_id": row.round_id, "survey_id": row.survey_id,
            "person_id": row.person_id, "partnership_id": row.partnership_id, "answers": json.loads(row.answers),
            "average_rating": row.average_rating, "answered_at": as_utc(row.answered_at).isoformat()}


def program_surveys(s: Session, program_id: str) -> dict[str, Any]:
    rows = s.exec(select(SurveyRow).where(SurveyRow.program_id == program_id).order_by(col(SurveyRow.created_at))).all()
    return {"program_id": program_id, "surveys": [survey_view(r) for r in rows]}


def survey_results(s: Session, program_id: str) -> dict[str, Any]:
    """Per survey: rounds, invitations, answers, response rate and average rating (one query each)."""
    invited = dict(s.exec(select(SurveyInvitationRow.survey_id, func.count())
                          .where(SurveyInvitationRow.program_id == program_id)
                          .group_by(col(SurveyInvitationRow.survey_id))).all())
    answered = {sid: (n, avg) for sid, n, avg in s.exec(
        select(SurveyAnswerRow.survey_id, func.count(), func.avg(SurveyAnswerRow.average_rating))
        .where(SurveyAnswerRow.program_id == program_id).group_by(col(SurveyAnswerRow.survey_id))).all()}
    rounds = dict(s.exec(select(SurveyRoundRow.survey_id, func.count())
                         .where(SurveyRoundRow.program_id == program_id)
                         .group_by(col(SurveyRoundRow.survey_id))).all())
    out = []
    for row in s.exec(select(SurveyRow).where(SurveyRow.program_id == program_id)
                      .order_by(col(SurveyRow.created_at))).all():
        n_inv = int(invited.get(row.survey_id, 0))
        n_ans, avg = answered.get(row.survey_id, (0, None))
        out.append({"survey_id": row.survey_id, "title": row.title, "schedule": row.schedule,
                    "rounds": int(rounds.get(row.survey_id, 0)), "invited": n_inv, "answered": int(n_ans),
                    "response_rate": round(n_ans / n_inv, 4) if n_inv else None,
                    "average_rating": round(float(avg), 2) if avg is not None else None})
    return {"program_id": program_id, "surveys": out}


def partnership_flags(s: Session, program_id: str) -> dict[str, Any]:
    rows = s.exec(select(PartnershipFlagRow).where(PartnershipFlagRow.program_id == program_id)
                  .order_by(col(PartnershipFlagRow.flagged_at))).all()
    return {"program_id": program_id, "flags": [
        {"flag_id": r.flag_id, "partnership_id": r.partnership_id, "round_id": r.round_id,
         "person_id": r.person_id, "reason": r.reason, "flagged_at": as_utc(r.flagged_at).isoformat()}
        for r in rows]}


def person_invitations(s: Session, program_id: str, person_id: str) -> dict[str, Any]:
    rows = s.exec(select(SurveyInvitationRow, SurveyRow)
                  .join(SurveyRow, col(SurveyRow.survey_id) == col(SurveyInvitationRow.survey_id))
                  .where(SurveyInvitationRow.program_id == program_id, SurveyInvitationRow.person_id == person_id)
                  .order_by(col(SurveyInvitationRow.id))).all()
    return {"program_id": program_id, "person_id": person_id, "invitations": [
        {"round_id": inv.round_id, "survey_id": sv.survey_id, "title": sv.title,
         "questions": json.loads(sv.questions), "invited_at": as_utc(inv.invited_at).isoformat(),
         "answered": inv.answered_at is not None} for inv, sv in rows]}
