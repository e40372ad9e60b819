"""Programs, people, matching, rematch, transitions, metamentors and incidents (matching service).

Staff of a program do everything in it; admins create programs; a mentor changes their own
capacity and pauses; a mentee asks to change mentor; either partner reports an incident; people
see the partnerships (and the people in them) that are theirs."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.gateway.domain.access import (
    STAFF_ROLES,
    Role,
    can_act_as_mentor,
    can_report_incident,
    can_request_rematch,
    can_view_partnership,
    visible_partnerships,
)
from services.gateway.entrypoints import lookups
from services.gateway.entrypoints.deps import API_PREFIX, Caller, caller, mutation, seg
from services.gateway.entrypoints.routes.common import (
    MentorId,
    PartnershipId,
    ProgramId,
    id_path,
    json_body,
    optional_json_body,
    text_field,
)
from services.gateway.errors import Unprocessable
from shared.errors import Forbidden, NotFound

router = APIRouter(prefix=API_PREFIX)
M = "matching"

PROGRAM_EXAMPLE = {
    "program_id": "prog-mentormt", "name": "MentorMT 2026-27",
    "policy": {"timezone": "America/Denver", "cadence": {"intentional_meetings_per_month": 2},
               "pay": {"currency": "USD", "hourly_rates": {"meeting": "40.00", "planning": "30.00"}}},
}
PERSON_EXAMPLE = {
    "name": "Maria Lopez", "email": "maria@example.org", "grade_band": "6-8", "subjects": ["math"],
    "role": "teacher", "site": "Lincoln MS", "region": "north", "languages": ["en", "es"],
    "years_in_position": 4, "years_in_program": 2, "training_completed": True, "capacity": 2,
}


# -- programs -------------------------------------------------------------------------------------
@router.post("/programs", status_code=201, tags=["programs"], dependencies=mutation,
             summary="Create a program with its policy (admin)")
async def create_program(body: dict[str, Any] = json_body(PROGRAM_EXAMPLE), c: Caller = Depends(caller)) -> Response:
    c.require_admin()
    return await c.forward(M, json=body)


@router.get("/programs", tags=["programs"], summary="Programs you belong to")
async def list_programs(c: Caller = Depends(caller)) -> list[dict[str, Any]]:
    programs: list[dict[str, Any]] = await c.read(M, "/programs")
    return [p for p in programs if c.principal.in_program(str(p.get("program_id")))]


@router.get("/programs/{program_id}", tags=["programs"], summary="A program and its policy")
async def get_program(program_id: str = ProgramId, c: Caller = Depends(caller)) -> Response:
    c.require_in_program(program_id)
    return await c.forward(M)


@router.put("/programs/{program_id}", tags=["programs"], dependencies=mutation,
            summary="Change a program's name or policy (staff)")
async def change_program(
    program_id: str = ProgramId, body: dict[str, Any] = json_body({"policy": PROGRAM_EXAMPLE["policy"]}),
    c: Caller = Depends(caller),
) -> Response:
    c.require_staff(program_id)
    return await c.forward(M, json=body)


# -- people ---------------------------------------------------------------------------------------
Kinds = Literal["mentors", "mentees", "metamentors"]


def _people_routes(kinds: Kinds) -> None:
    singular = kinds.removesuffix("s")

    @router.post(f"/programs/{{program_id}}/{kinds}", status_code=201, tags=["people"], dependencies=mutation,
                 summary=f"Enrol a {singular} (staff)", name=f"enrol_{singular}")
    async def enrol(program_id: str = ProgramId, body: dict[str, Any] = json_body(PERSON_EXAMPLE),
                    c: Caller = Depends(caller)) -> Response:
        c.require_staff(program_id)
        return await c.forward(M, json=body)

    @router.post(f"/programs/{{program_id}}/{kinds}/import", status_code=201, tags=["people"],
                 dependencies=mutation, name=f"import_{kinds}",
                 summary=f"Import {kinds} from a CSV file (staff)",
                 description="The request body is the CSV file itself (Content-Type: text/csv). Every bad row "
                 "is reported (line, field, reason); nothing is imported from a file with errors unless "
                 "`import_good_rows=true`.",
                 openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {
                     "schema": {"type": "string"},
                     "example": "name,email,grade_band,subjects\nMaria Lopez,maria@example.org,6-8,math\n"}}}})
    async def import_roster(request: Request, program_id: str = ProgramId,
                            import_good_rows: bool = Query(False), c: Caller = Depends(caller)) -> Response:
        c.require_staff(program_id)
        return await c.forward(M, params={"import_good_rows": str(import_good_rows).lower()}, raw_body=True)

    @router.get(f"/programs/{{program_id}}/{kinds}", tags=["people"], name=f"list_{kinds}",
                summary=f"The program's {kinds} (staff: all; others: the people of their own partnerships)")
    async def list_people(program_id: str = ProgramId, c: Caller = Depends(caller)) -> list[dict[str, Any]]:
        c.require_in_program(program_id)
        people: list[dict[str, Any]] = await c.read(M, f"/programs/{seg(program_id)}/{kinds}")
        if c.principal.is_staff_of(program_id):
            return people
        mine = visible_partnerships(c.principal, await lookups.partnerships_of(c, program_id))
        known = {c.principal.person_id} | {i for f in mine for i in (f.mentor_id, f.mentee_id, f.metamentor_id)}
        return [p for p in people if p.get("person_id") in known]


for _kinds in ("mentors", "mentees", "metamentors"):
    _people_routes(_kinds)


# What a participant may change on their own record; eligibility facts (years, training) and
# matching attributes stay with staff.
SELF_SERVICE_FIELDS = frozenset({"name", "email", "languages", "availability"})


@router.patch("/people/{person_id}", tags=["people"], dependencies=mutation,
              summary="Update a profile: staff any field; the person their name, email, languages, availability")
async def update_profile(person_id: str = id_path("mentor-7f3a", "A mentor, mentee or metamentor id"),
                         body: dict[str, Any] = json_body({"email": "maria.lopez@example.org",
                                                           "availability": ["weekday afternoons"]}),
                         c: Caller = Depends(caller)) -> Response:
    p = c.principal
    if p.role in STAFF_ROLES:
        program_id = await lookups.person_program(c, person_id)
        c.require_staff(program_id)
    elif p.person_id == person_id:
        others = sorted(set(body) - SELF_SERVICE_FIELDS)
        if others:
            raise Forbidden(others[0], "only staff change this; you may change "
                            + ", ".join(sorted(SELF_SERVICE_FIELDS)))
    else:
        raise NotFound("person_id", f"no person {person_id}")
    return await c.forward(M, json=body)


async def _mentor_program(c: Caller, mentor_id: str) -> str:
    """The mentor's program; refuses unless the caller is that mentor or staff of that program."""
    is_self = c.principal.is_person(Role.MENTOR, mentor_id)
    if not (is_self or c.principal.role in STAFF_ROLES):
        raise Forbidden("mentor_id", "only the mentor or the program's staff may do this")
    program_id = await lookups.person_program(c, mentor_id, ("mentors",))
    if not can_act_as_mentor(c.principal, program_id, mentor_id):
        raise Forbidden("mentor_id", "only the mentor or the program's staff may do this")
    return program_id


@router.put("/mentors/{mentor_id}/capacity", tags=["people"], dependencies=mutation,
            summary="Change a mentor's capacity (the mentor, or staff)")
async def change_capacity(mentor_id: str = MentorId, body: dict[str, Any] = json_body({"capacity": 3}),
                          c: Caller = Depends(caller)) -> Response:
    await _mentor_program(c, mentor_id)
    return await c.forward(M, json=body)


@router.post("/mentors/{mentor_id}/pause", tags=["people"], dependencies=mutation,
             summary="Pause (or leave) as a mentor: each mentee awaits a transition decision (the mentor, or staff)")
async def pause(mentor_id: str = MentorId,
                body: dict[str, Any] = json_body({"reason": "parental leave", "leaving": False}),
                c: Caller = Depends(caller)) -> Response:
    await _mentor_program(c, mentor_id)
    return await c.forward(M, json=body)


@router.post("/mentors/{mentor_id}/resume", tags=["people"], dependencies=mutation,
             summary="Resume mentoring with a capacity (the mentor, or staff)")
async def resume(mentor_id: str = MentorId, body: dict[str, Any] = json_body({"capacity": 2}),
                 c: Caller = Depends(caller)) -> Response:
    await _mentor_program(c, mentor_id)
    return await c.forward(M, json=body)


@router.post("/programs/{program_id}/banned-pairs", status_code=201, tags=["matching"], dependencies=mutation,
             summary="Never pair this mentee with this mentor (staff)")
async def ban_pair(program_id: str = ProgramId,
                   body: dict[str, Any] = json_body({"mentee_id": "mentee-12", "mentor_id": "mentor-7f3a",
                                                     "reason": "same school, conflict of interest"}),
                   c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(M, json=body)


# -- matching -------------------------------------------------------------------------------------
@router.post("/programs/{program_id}/proposals", status_code=201, tags=["matching"], dependencies=mutation,
             summary="Propose an optimal whole-pool matching with each pair's score and reasons (staff)")
async def propose(program_id: str = ProgramId,
                  body: dict[str, Any] = json_body({"objective": "max_participation"}, {}),
                  c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(M, json=body)


ProposalId = id_path("prop-1c2d3e", "A matching proposal id")


async def _staff_of_proposal(c: Caller, proposal_id: str) -> None:
    proposal = await lookups.owned(c, M, f"/proposals/{seg(proposal_id)}", "proposal_id", proposal_id)
    c.require_staff(str(proposal["program_id"]))


@router.get("/proposals/{proposal_id}", tags=["matching"], summary="A proposal (staff)")
async def get_proposal(proposal_id: str = ProposalId, c: Caller = Depends(caller)) -> Response:
    await _staff_of_proposal(c, proposal_id)
    return await c.forward(M)


@router.post("/proposals/{proposal_id}/publish", tags=["matching"], dependencies=mutation,
             summary="Publish all or some pairs of a proposal: each becomes a partnership (staff)")
async def publish(proposal_id: str = ProposalId,
                  body: dict[str, Any] = json_body({}, {"mentee_ids": ["mentee-12", "mentee-13"]}),
                  c: Caller = Depends(caller)) -> Response:
    await _staff_of_proposal(c, proposal_id)
    return await c.forward(M, json=body)


@router.post("/programs/{program_id}/partnerships", status_code=201, tags=["matching"], dependencies=mutation,
             summary="Pair a mentee and a mentor directly; broken constraints must be confirmed (staff)")
async def manual_match(program_id: str = ProgramId,
                       body: dict[str, Any] = json_body({"mentee_id": "mentee-12", "mentor_id": "mentor-7f3a",
                                                         "confirm_warnings": False}),
                       c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(M, json=body)


@router.get("/programs/{program_id}/partnerships", tags=["partnerships"],
            summary="Partnerships of a program (staff: all; metamentor: caseload; mentor/mentee: their own)")
async def list_partnerships(program_id: str = ProgramId, status: str | None = Query(None, max_length=40),
                            c: Caller = Depends(caller)) -> list[dict[str, Any]]:
    c.require_in_program(program_id)
    items: list[dict[str, Any]] = await c.read(M, f"/programs/{seg(program_id)}/partnerships", {"status": status})
    if c.principal.is_staff_of(program_id):
        return items
    return [i for i in items if can_view_partnership(c.principal, lookups.facts_of(i))]


@router.get("/me/partnerships", tags=["partnerships"],
            summary="Your partnerships in every program you belong to (a mentor's or mentee's own, a "
            "metamentor's caseload, a coordinator's programs)")
async def my_partnerships(status: str | None = Query("active", max_length=40),
                          c: Caller = Depends(caller)) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for program_id in await lookups.programs_in_reach(c):
        items: list[dict[str, Any]] = await c.read(M, f"/programs/{seg(program_id)}/partnerships",
                                                   {"status": status or None})
        out += [i for i in items if can_view_partnership(c.principal, lookups.facts_of(i))]
    return out


@router.get("/partnerships/{partnership_id}", tags=["partnerships"],
            summary="One partnership (staff, its metamentor, its mentor, its mentee)")
async def get_partnership(partnership_id: str = PartnershipId, c: Caller = Depends(caller)) -> dict[str, Any]:
    return await lookups.partnership_item(c, partnership_id)


@router.post("/partnerships/{partnership_id}/rematch", tags=["matching"], dependencies=mutation,
             summary="Change mentor: ends the partnership and proposes a new mentor (the mentee, or staff)")
async def rematch(partnership_id: str = PartnershipId,
                  body: dict[str, Any] | None = optional_json_body({"reason": "schedules do not fit"}),
                  c: Caller = Depends(caller)) -> Response:
    facts = await lookups.require_partnership(c, partnership_id, can_request_rematch, "ask to change mentor")
    body = dict(body or {})
    # Who asked is what the gateway knows, not what the body claims.
    body["requested_by"] = "staff" if c.principal.is_staff_of(facts.program_id) else "mentee"
    return await c.forward(M, json=body)


@router.get("/programs/{program_id}/transitions", tags=["matching"],
            summary="Mentees awaiting (or past) a transition decision after their mentor paused (staff)")
async def list_transitions(program_id: str = ProgramId, status: str | None = Query("awaiting", max_length=40),
                           c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(M, params={"status": status or ""})


async def _find_in_programs(c: Caller, path: str, key: str, ident: str) -> dict[str, Any]:
    """An item of a per-program staff list (transitions, incidents) in a program the caller is staff of."""
    for program_id in await lookups.programs_in_reach(c):
        if not c.principal.is_staff_of(program_id):
            continue
        for item in await c.read(M, f"/programs/{seg(program_id)}/{path}", {"status": ""}):
            if item.get(key) == ident:
                return {**item, "program_id": program_id}
    raise NotFound(key, f"no {key.removesuffix('_id')} {ident}")


@router.post("/transitions/{transition_id}/decision", tags=["matching"], dependencies=mutation,
             summary="Decide a mentee's transition: reassign (a proposal is offered), hold, or end (staff)")
async def decide_transition(transition_id: str = id_path("tr-5a6b7c"),
                            body: dict[str, Any] = json_body({"decision": "reassign", "note": "prefers math"}),
                            c: Caller = Depends(caller)) -> Response:
    if c.principal.role not in STAFF_ROLES:
        raise Forbidden("authorization", "only staff decide transitions")
    await _find_in_programs(c, "transitions", "transition_id", transition_id)
    return await c.forward(M, json=body)


@router.post("/programs/{program_id}/metamentors/assign", tags=["matching"], dependencies=mutation,
             summary="Give every active partnership a metamentor, balancing caseloads (staff)")
async def assign_metamentors(program_id: str = ProgramId, c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(M)


# -- incidents ------------------------------------------------------------------------------------
@router.post("/partnerships/{partnership_id}/incidents", status_code=201, tags=["partnerships"],
             dependencies=mutation,
             summary="Report a disrespectful interaction (the mentee or mentor; staff for one of them)",
             description="A partner reports as themselves. Staff report what a partner told them, naming that "
                         "partner in `reported_by` (the partnership's mentee_id or mentor_id).")
async def report_incident(partnership_id: str = PartnershipId,
                          body: dict[str, Any] = json_body({"description": "Dismissive comments in our last call"}),
                          c: Caller = Depends(caller)) -> Response:
    facts = await lookups.require_partnership(c, partnership_id, can_report_incident, "report an incident")
    text_field(body, "description")
    reporter = c.principal.actor_id
    if c.principal.role in STAFF_ROLES:
        reporter = text_field(body, "reported_by")
        if reporter not in (facts.mentee_id, facts.mentor_id):
            raise Unprocessable("reported_by", f"staff report for one of the partners: {facts.mentee_id} (mentee) "
                                f"or {facts.mentor_id} (mentor)", "not_a_partner")
    return await c.forward(M, json={**body, "reported_by": reporter})


@router.get("/programs/{program_id}/incidents", tags=["partnerships"], summary="Incidents of a program (staff)")
async def list_incidents(program_id: str = ProgramId, status: str | None = Query("open", max_length=40),
                         c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(M, params={"status": status or ""})


@router.post("/incidents/{incident_id}/resolve", tags=["partnerships"], dependencies=mutation,
             summary="Close an incident, or end the partnership and rematch (staff)")
async def resolve_incident(incident_id: str = id_path("inc-9d8e7f"),
                           body: dict[str, Any] = json_body({"action": "end_and_rematch", "note": "spoke to both"}),
                           c: Caller = Depends(caller)) -> Response:
    if c.principal.role not in STAFF_ROLES:
        raise Forbidden("authorization", "only staff resolve incidents")
    await _find_in_programs(c, "incidents", "incident_id", incident_id)
    return await c.forward(M, json=body)

