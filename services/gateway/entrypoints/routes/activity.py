"""Meetings, activities, time entries, compliance and month close (activity service).

A mentor logs and corrects meetings, activities and time of their own partnerships only; staff
do it for anyone in their programs; the people of a partnership (and its metamentor) see its
meetings, activities and compliance; only staff close months."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from services.gateway.domain.access import (
    Role,
    can_act_as_mentor,
    can_log_for_partnership,
    can_view_partnership,
)
from services.gateway.entrypoints import lookups
from services.gateway.entrypoints.deps import API_PREFIX, Caller, caller, mutation, seg
from services.gateway.entrypoints.routes.common import (
    MentorId,
    PartnershipId,
    ProgramId,
    id_path,
    json_body,
    text_field,
)
from shared.errors import Forbidden, NotFound

router = APIRouter(prefix=API_PREFIX, tags=["activity"])
A = "activity"

MEETING_EXAMPLE = {
    "partnership_id": "pa-0f3c9e21", "started_at": "2026-10-06T16:30:00-06:00", "duration_minutes": 45,
    "mode": "video", "intentional": True, "topics": ["classroom management"], "notes": "planned a PIP",
}
TIME_EXAMPLE = {"program_id": "prog-mentormt", "kind": "planning", "work_date": "2026-10-06", "minutes": 90,
                "partnership_id": "pa-0f3c9e21"}
MeetingId = id_path("mtg-4c5d6e", "A meeting id")
EntryId = id_path("te-8a9b0c", "A time entry id")


# -- meetings -------------------------------------------------------------------------------------
@router.post("/meetings", status_code=201, dependencies=mutation,
             summary="Log a meeting of a partnership (its mentor, or staff)")
async def log_meeting(body: dict[str, Any] = json_body(MEETING_EXAMPLE), c: Caller = Depends(caller)) -> Response:
    partnership_id = text_field(body, "partnership_id")
    await lookups.require_partnership(c, partnership_id, can_log_for_partnership, "log meetings")
    return await c.forward(A, json=body)


async def _meeting(c: Caller, meeting_id: str) -> dict[str, Any]:
    meeting = await lookups.owned(c, A, f"/meetings/{seg(meeting_id)}", "meeting_id", meeting_id)
    await lookups.partnership(c, str(meeting["partnership_id"]))  # 404 unless the caller sees it
    return meeting


@router.post("/meetings/{meeting_id}/corrections", dependencies=mutation,
             summary="Correct or void a logged meeting (the partnership's mentor, or staff)")
async def correct_meeting(meeting_id: str = MeetingId,
                          body: dict[str, Any] = json_body({"duration_minutes": 30, "reason": "ended early"},
                                                           {"voided": True, "reason": "logged twice"}),
                          c: Caller = Depends(caller)) -> Response:
    meeting = await _meeting(c, meeting_id)
    await lookups.require_partnership(c, str(meeting["partnership_id"]), can_log_for_partnership, "correct meetings")
    return await c.forward(A, json=body)


@router.get("/meetings/{meeting_id}", summary="A meeting (the partnership's people, its metamentor, staff)")
async def get_meeting(meeting_id: str = MeetingId, c: Caller = Depends(caller)) -> dict[str, Any]:
    return await _meeting(c, meeting_id)


@router.get("/partnerships/{partnership_id}/meetings", tags=["partnerships"],
            summary="A partnership's meetings (its people, its metamentor, staff)")
async def list_meetings(partnership_id: str = PartnershipId, c: Caller = Depends(caller)) -> Response:
    await lookups.partnership(c, partnership_id)
    return await c.forward(A)


# -- time entries ---------------------------------------------------------------------------------
@router.post("/time-entries", status_code=201, dependencies=mutation,
             summary="Record time for pay (a mentor their own; staff for a mentor of their program)")
async def record_time(body: dict[str, Any] = json_body(TIME_EXAMPLE, {**TIME_EXAMPLE, "mentor_id": "mentor-7f3a"}),
                      c: Caller = Depends(caller)) -> Response:
    program_id = text_field(body, "program_id")
    p = c.principal
    if p.is_staff_of(program_id):
        mentor_id = text_field(body, "mentor_id")
        try:
            enrolled_in = await lookups.person_program(c, mentor_id, ("mentors",))
        except NotFound:
            enrolled_in = None
        if enrolled_in != program_id:
            raise Forbidden("mentor_id", f"{mentor_id} is not a mentor of program {program_id}")
    elif p.role is Role.MENTOR and p.in_program(program_id):
        claimed = body.get("mentor_id") or p.person_id
        if not can_act_as_mentor(p, program_id, str(claimed)):
            raise Forbidden("mentor_id", "a mentor records only their own time")
        body = {**body, "mentor_id": p.person_id}
    else:
        raise Forbidden("program_id", f"only a mentor or staff of program {program_id} records time there")
    if body.get("partnership_id"):
        facts = await lookups.partnership(c, str(body["partnership_id"]))
        if facts.program_id != program_id or facts.mentor_id != body["mentor_id"]:
            raise Forbidden("partnership_id", "the partnership is not this mentor's in this program")
    return await c.forward(A, json=body)


async def _entry(c: Caller, entry_id: str) -> dict[str, Any]:
    entry = await lookups.owned(c, A, f"/time-entries/{seg(entry_id)}", "entry_id", entry_id)
    if not can_act_as_mentor(c.principal, str(entry["program_id"]), str(entry["mentor_id"])):
        raise Forbidden("entry_id", "only the mentor or the program's staff see this time entry")
    return entry


@router.post("/time-entries/{entry_id}/amendments", dependencies=mutation,
             summary="Amend or void a time entry, e.g. to answer a clarification (the mentor, or staff)")
async def amend_time(entry_id: str = EntryId,
                     body: dict[str, Any] = json_body({"minutes": 60, "reason": "was 60, not 90"}),
                     c: Caller = Depends(caller)) -> Response:
    await _entry(c, entry_id)
    return await c.forward(A, json=body)


@router.get("/time-entries/{entry_id}", summary="A time entry (the mentor, or staff)")
async def get_time_entry(entry_id: str = EntryId, c: Caller = Depends(caller)) -> dict[str, Any]:
    return await _entry(c, entry_id)


@router.get("/mentors/{mentor_id}/time-entries", summary="A mentor's time entries, by month (the mentor, or staff)")
async def list_time(mentor_id: str = MentorId,
                    month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$", examples=["2026-10"]),
                    c: Caller = Depends(caller)) -> dict[str, Any]:
    p = c.principal
    if not (p.is_person(Role.MENTOR, mentor_id) or p.role in (Role.ADMIN, Role.COORDINATOR)):
        raise Forbidden("mentor_id", "only the mentor or staff see a mentor's time")
    found: dict[str, Any] = await c.read(A, f"/mentors/{seg(mentor_id)}/time-entries", {"month": month})
    found["entries"] = [e for e in found.get("entries", [])
                        if can_act_as_mentor(p, str(e.get("program_id")), mentor_id)]
    return found


# -- activities -----------------------------------------------------------------------------------
@router.post("/activities", status_code=201, dependencies=mutation,
             summary="Record an activity: PIP stage, book study, site visit, orientation, agreement, "
             "checklist, log, reflection, recognition (the partnership's mentor, or staff)")
async def record_activity(
    body: dict[str, Any] = json_body({"partnership_id": "pa-0f3c9e21", "kind": "pip_stage", "stage": "exploration",
                                      "occurred_on": "2026-10-06", "details": {"module": "formative assessment"}}),
    c: Caller = Depends(caller),
) -> Response:
    partnership_id = text_field(body, "partnership_id")
    await lookups.require_partnership(c, partnership_id, can_log_for_partnership, "record activities")
    return await c.forward(A, json=body)


@router.get("/partnerships/{partnership_id}/activities", tags=["partnerships"],
            summary="A partnership's activities (its people, its metamentor, staff)")
async def list_activities(partnership_id: str = PartnershipId, c: Caller = Depends(caller)) -> Response:
    await lookups.partnership(c, partnership_id)
    return await c.forward(A)


# -- compliance -----------------------------------------------------------------------------------
@router.get("/partnerships/{partnership_id}/compliance", tags=["partnerships"],
            summary="Cadence compliance of a partnership with reasons and numbers (its people, metamentor, staff)")
async def partnership_compliance(partnership_id: str = PartnershipId, c: Caller = Depends(caller)) -> Response:
    await lookups.partnership(c, partnership_id)
    return await c.forward(A)


@router.get("/programs/{program_id}/compliance",
            summary="Compliance of a program's partnerships (staff: all; metamentor: caseload; others: their own)")
async def program_compliance(program_id: str = ProgramId,
                             status: str | None = Query(None, pattern="^(on_track|behind|at_risk)$"),
                             c: Caller = Depends(caller)) -> dict[str, Any]:
    c.require_in_program(program_id)
    found: dict[str, Any] = await c.read(A, f"/programs/{seg(program_id)}/compliance", {"status": status})
    if c.principal.is_staff_of(program_id):
        return found
    mine = [i for i in found.get("partnerships", []) if can_view_partnership(c.principal, lookups.facts_of(
        {**i, "program_id": program_id}))]
    counts: dict[str, int] = {}
    for i in mine:
        key = i.get("status") or "not_evaluated"
        counts[key] = counts.get(key, 0) + 1
    return {**found, "counts": counts, "partnerships": mine}


# -- month close ----------------------------------------------------------------------------------
@router.get("/programs/{program_id}/month-closes", summary="Which months are closed and when the next closes (staff)")
async def month_closes(program_id: str = ProgramId, c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A)


@router.get("/programs/{program_id}/mentors/{mentor_id}/month-closes",
            summary="A mentor's closed months (the mentor, or staff)")
async def mentor_closes(program_id: str = ProgramId, mentor_id: str = MentorId, c: Caller = Depends(caller)) -> Response:
    if not can_act_as_mentor(c.principal, program_id, mentor_id):
        raise Forbidden("mentor_id", "only the mentor or the program's staff see this")
    return await c.forward(A)


@router.post("/programs/{program_id}/month-closes", dependencies=mutation,
             summary="Close every due month now (or up to a month) instead of waiting for the scheduler (staff)")
async def close_months(program_id: str = ProgramId,
                       body: dict[str, Any] = json_body({}, {"month": "2026-10"}),
                       c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A, json=body)


# -- surveys --------------------------------------------------------------------------------------
SURVEY_EXAMPLE = {
    "title": "After the first meeting", "schedule": "first_meeting", "audience": "mentor_and_mentee",
    "remind_after_days": 5,
    "questions": [{"question_id": "fit", "kind": "choice", "prompt": "Is this a good fit?",
                   "options": ["good fit", "not sure", "not a good fit"], "flag_answer": "not a good fit"},
                  {"question_id": "overall", "kind": "rating", "prompt": "How did it go (1-5)?"}],
}
RoundId = id_path("sr-1a2b3c4d5e6f", "A survey round id")
PersonId = id_path("mentor-7f3a", "A person id")


@router.post("/programs/{program_id}/surveys", status_code=201, dependencies=mutation, tags=["surveys"],
             summary="Define a survey and its schedule: first_meeting, periodic, partnership_end, on_date (staff)")
async def create_survey(program_id: str = ProgramId, body: dict[str, Any] = json_body(SURVEY_EXAMPLE),
                        c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A, json=body)


@router.get("/programs/{program_id}/surveys", tags=["surveys"], summary="A program's surveys (staff)")
async def list_surveys(program_id: str = ProgramId, c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A)


@router.get("/programs/{program_id}/survey-results", tags=["surveys"],
            summary="Per survey: rounds, invitations, answers, response rate, average rating (staff)")
async def survey_results(program_id: str = ProgramId, c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A)


@router.get("/programs/{program_id}/partnership-flags", tags=["surveys"],
            summary="Partnerships flagged by a survey answer, e.g. not a good fit (staff; rematch from here)")
async def partnership_flags(program_id: str = ProgramId, c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A)


@router.get("/programs/{program_id}/people/{person_id}/survey-invitations", tags=["surveys"],
            summary="A person's survey invitations with their questions (the person, or staff)")
async def survey_invitations(program_id: str = ProgramId, person_id: str = PersonId,
                             c: Caller = Depends(caller)) -> Response:
    p = c.principal
    if not (p.is_staff_of(program_id) or (p.in_program(program_id) and p.person_id == person_id)):
        if not p.in_program(program_id):
            raise NotFound("program_id", f"no program {program_id!r}")
        raise Forbidden("person_id", "only the person or staff see their survey invitations")
    return await c.forward(A)


@router.post("/programs/{program_id}/survey-rounds/{round_id}/answers", status_code=201, dependencies=mutation,
             tags=["surveys"], summary="Answer a survey round you were invited to (once)")
async def answer_survey(program_id: str = ProgramId, round_id: str = RoundId,
                        body: dict[str, Any] = json_body({"answers": {"fit": "good fit", "overall": 4}}),
                        c: Caller = Depends(caller)) -> Response:
    c.require_in_program(program_id)
    return await c.forward(A, json=body)


# -- feedback-quality reviews ---------------------------------------------------------------------
def _mentor_or_staff(c: Caller, program_id: str, mentor_id: str, what: str) -> None:
    p = c.principal
    if p.is_staff_of(program_id) or (p.in_program(program_id) and p.is_person(Role.MENTOR, mentor_id)):
        return
    if not p.in_program(program_id):
        raise NotFound("program_id", f"no program {program_id!r}")
    raise Forbidden("mentor_id", f"only the mentor or staff {what}")


@router.post("/programs/{program_id}/feedback-entries", status_code=201, dependencies=mutation, tags=["reviews"],
             summary="Record written feedback given to a mentee: text or a link (a mentor for themselves, or staff)")
async def record_feedback(program_id: str = ProgramId,
                          body: dict[str, Any] = json_body({"partnership_id": "pa-0f3c9e21", "given_on": "2026-10-06",
                                                            "text": "You named the exit-ticket routine clearly..."}),
                          c: Caller = Depends(caller)) -> Response:
    p = c.principal
    if not p.is_staff_of(program_id):
        c.require_in_program(program_id)
        if p.role is not Role.MENTOR:
            raise Forbidden("authorization", "mentors record their feedback (or staff for them)")
        body = {**body, "mentor_id": p.person_id}
    return await c.forward(A, json=body)


@router.get("/programs/{program_id}/mentors/{mentor_id}/feedback-entries", tags=["reviews"],
            summary="A mentor's written feedback entries, by month (the mentor, or staff)")
async def list_feedback(program_id: str = ProgramId, mentor_id: str = MentorId,
                        month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$", examples=["2026-10"]),
                        c: Caller = Depends(caller)) -> Response:
    _mentor_or_staff(c, program_id, mentor_id, "see the feedback entries")
    return await c.forward(A)


@router.put("/programs/{program_id}/review-rubric", dependencies=mutation, tags=["reviews"],
            summary="Set the program's feedback review rubric (criteria scored 1-4) and monthly sample size (staff)")
async def put_rubric(program_id: str = ProgramId,
                     body: dict[str, Any] = json_body({"sample_size": 3, "criteria": [
                         {"criterion_id": "specific", "description": "names what the teacher did"},
                         {"criterion_id": "actionable", "description": "gives one next step"}]}),
                     c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A, json=body)


@router.get("/programs/{program_id}/review-rubric", tags=["reviews"], summary="The program's review rubric (anyone in it)")
async def get_rubric(program_id: str = ProgramId, c: Caller = Depends(caller)) -> Response:
    c.require_in_program(program_id)
    return await c.forward(A)


@router.post("/programs/{program_id}/mentors/{mentor_id}/review-samples", dependencies=mutation, tags=["reviews"],
             summary="Draw a mentor's monthly sample of feedback entries: reproducible, kept once drawn (staff)")
async def draw_sample(program_id: str = ProgramId, mentor_id: str = MentorId,
                      body: dict[str, Any] = json_body({"month": "2026-10", "count": 3}),
                      c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A, json=body)


@router.post("/programs/{program_id}/mentors/{mentor_id}/reviews", status_code=201, dependencies=mutation,
             tags=["reviews"], summary="Score a sampled entry against the rubric and comment; the mentor is emailed (staff)")
async def review_feedback(program_id: str = ProgramId, mentor_id: str = MentorId,
                          body: dict[str, Any] = json_body({"entry_id": "fb-1a2b3c", "scores": {"specific": 3,
                                                            "actionable": 2}, "comment": "Name one next step."}),
                          c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(A, json=body)


@router.get("/programs/{program_id}/mentors/{mentor_id}/reviews", tags=["reviews"],
            summary="A mentor's review history by month (the mentor, or staff)")
async def review_history(program_id: str = ProgramId, mentor_id: str = MentorId, c: Caller = Depends(caller)) -> Response:
    _mentor_or_staff(c, program_id, mentor_id, "see the review history")
    return await c.forward(A)
