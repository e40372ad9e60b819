"""Aggregate read view: one partnership as its people and staff need to see it, composed from
matching (the pair, its metamentor), activity (compliance, recent meetings) and payments (the
mentor's pay status, the partnership's reimbursements). Pay is shown to staff and the mentor only.

Matching is required (it says who may see the partnership); when another service is down its
section is null and named under `unavailable`, so the rest of the view still answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from services.gateway.adapters.upstream import UpstreamAnswer
from services.gateway.domain.access import can_act_as_mentor
from services.gateway.entrypoints import lookups
from services.gateway.entrypoints.deps import API_PREFIX, Caller, caller, seg
from services.gateway.entrypoints.routes.common import PartnershipId
from services.gateway.errors import ServiceFailed, ServiceUnavailable

router = APIRouter(prefix=API_PREFIX, tags=["partnerships"])


class Overview(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "partnership": {"partnership_id": "pa-0f3c9e21", "program_id": "prog-mentormt", "status": "active",
                        "started_at": "2026-09-01T15:00:00+00:00"},
        "mentor": {"person_id": "mentor-7f3a", "name": "Maria Lopez", "email": "maria@example.org"},
        "mentee": {"person_id": "mentee-12", "name": "Ed Park", "email": "ed@example.org"},
        "metamentor": {"person_id": "meta-2", "name": "Mo Reyes", "email": "mo@example.org"},
        "compliance": {"status": "behind", "reasons": ["1 of 2 intentional meetings in 2026-10"]},
        "recent_meetings": [{"meeting_id": "mtg-4c5d6e", "started_at": "2026-10-06T22:30:00+00:00",
                             "duration_minutes": 45, "intentional": True}],
        "pay": {"statements": [{"month": "2026-09", "status": "approved", "total": "120.00", "currency": "USD"}]},
        "reimbursements": [],
        "unavailable": [],
    }]})
    partnership: dict[str, Any]
    mentor: dict[str, Any] | None
    mentee: dict[str, Any] | None
    metamentor: dict[str, Any] | None
    compliance: dict[str, Any] | None
    recent_meetings: list[dict[str, Any]] | None
    pay: dict[str, Any] | None
    reimbursements: list[dict[str, Any]] | None
    unavailable: list[str]


_PERSON_FIELDS = ("person_id", "name", "email", "status")


async def _section(unavailable: list[str], service: str, call: Awaitable[Any]) -> Any:
    """A section of the view, or None when its service is down or has nothing for this partnership."""
    try:
        return await call
    except (ServiceUnavailable, ServiceFailed):
        unavailable.append(service)
        return None
    except UpstreamAnswer:
        return None  # e.g. activity has not seen the match yet: no compliance to show


@router.get("/partnerships/{partnership_id}/overview", response_model=Overview,
            summary="The pair, its metamentor, compliance, recent meetings and pay status in one view "
            "(its people and metamentor; pay: staff and the mentor only)")
async def overview(partnership_id: str = PartnershipId, meetings: int = Query(5, ge=0, le=50),
                   c: Caller = Depends(caller)) -> Overview:
    item = await lookups.partnership_item(c, partnership_id)
    facts = lookups.facts_of(item)
    pid = seg(partnership_id)
    unavailable: list[str] = []
    sees_pay = can_act_as_mentor(c.principal, facts.program_id, facts.mentor_id)

    async def pay() -> dict[str, Any] | None:
        if not sees_pay:
            return None
        statements = await c.read("payments", "/statements", {
            "program_id": facts.program_id, "mentor_id": facts.mentor_id, "limit": 1000})
        keep = ("statement_id", "month", "status", "total", "currency", "approved_at", "batch_id")
        recent = [{k: s.get(k) for k in keep} for s in statements[-3:]]
        return {"statements": recent[::-1]}

    async def person(person_id: str | None, kinds: str) -> dict[str, Any] | None:
        found = await lookups.person_item(c, person_id, facts.program_id, kinds) if person_id else None
        return {k: found.get(k) for k in _PERSON_FIELDS} if found else None

    mentor, mentee, metamentor, compliance, logged, pay_status, reimbursements = await asyncio.gather(
        person(facts.mentor_id, "mentors"),
        person(facts.mentee_id, "mentees"),
        person(facts.metamentor_id, "metamentors"),
        _section(unavailable, "activity", c.read("activity", f"/partnerships/{pid}/compliance")),
        _section(unavailable, "activity", c.read("activity", f"/partnerships/{pid}/meetings")),
        _section(unavailable, "payments", pay()),
        _section(unavailable, "payments", c.read("payments", "/reimbursements", {"partnership_id": partnership_id})),
    )

    recent = None
    if logged is not None:
        recent = sorted(logged.get("meetings", []), key=lambda m: str(m.get("started_at")), reverse=True)[:meetings]
    if compliance is not None:
        compliance = {k: compliance.get(k) for k in ("status", "reasons", "findings", "evaluated_at", "active")}
    return Overview(
        partnership=item, mentor=mentor, mentee=mentee,
        metamentor=metamentor, compliance=compliance, recent_meetings=recent,
        pay=pay_status, reimbursements=reimbursements, unavailable=sorted(set(unavailable)),
    )
