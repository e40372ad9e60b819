"""Facts a role check needs, asked of the service that owns them (the gateway keeps no copy):
which program, mentor, mentee and metamentor a partnership has; which program a person is in;
which program a statement, batch, meeting, time entry or newsletter belongs to.

Partnerships and people are read by id from matching (GET /partnerships/{id}, /people/{id}).
Only a matching without those routes (an older one) makes the gateway search the lists of the
programs the caller belongs to (the only programs they could reach anyway); the missing route is
remembered for a minute.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.gateway.adapters.upstream import checked
from services.gateway.domain.access import PartnershipFacts, can_view_partnership
from services.gateway.entrypoints.deps import Caller, seg
from shared.errors import Forbidden, NotFound

PEOPLE_KINDS = ("mentors", "mentees", "metamentors")


def route_missing(response: httpx.Response) -> bool:
    """A 404/405 from the framework (no such route), not a domain 'not found'."""
    if response.status_code not in (404, 405):
        return False
    try:
        return isinstance(response.json().get("detail"), str)
    except ValueError:
        return True


def facts_of(item: dict[str, Any]) -> PartnershipFacts:
    return PartnershipFacts(
        partnership_id=str(item["partnership_id"]), program_id=str(item["program_id"]),
        mentor_id=str(item["mentor_id"]), mentee_id=str(item["mentee_id"]),
        metamentor_id=item.get("metamentor_id"),
    )


async def programs_in_reach(c: Caller) -> list[str]:
    """The programs the caller belongs to (every program, for an admin)."""
    if c.principal.is_admin:
        return [str(p["program_id"]) for p in await c.read("matching", "/programs")]
    return sorted(c.principal.program_ids)


async def _raw(c: Caller, service: str, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
    return await c.gateway.upstreams.send(
        service, "GET", path, principal=c.principal, request_id=c.request_id, params=params
    )


_NO_ROUTE = httpx.Response(404, json={"detail": "Not Found"})


async def read_by_id(c: Caller, service: str, route: str, path: str) -> httpx.Response:
    """GET a resource by id from a route the service may not have; remembers a missing route."""
    key = f"{service} {route}"
    if c.gateway.route_missing_recently(key):
        return _NO_ROUTE
    response = await _raw(c, service, path)
    if route_missing(response):
        c.gateway.note_route_missing(key)
    return response


async def partnership_item(c: Caller, partnership_id: str) -> dict[str, Any]:
    """The partnership exactly as matching shows it; 404 when it does not exist or the caller cannot
    see it. One read by id; only a matching without that route makes this search program lists."""
    cache: dict[str, dict[str, Any]] = c.request.state.__dict__.setdefault("partnerships", {})
    if partnership_id in cache:
        return cache[partnership_id]
    found: dict[str, Any] | None = None
    response = await read_by_id(c, "matching", "/partnerships/{id}", f"/partnerships/{seg(partnership_id)}")
    if response.status_code == 200:
        found = response.json()
    elif route_missing(response):  # matching has no read-by-id: look in the caller's programs
        for program_id in await programs_in_reach(c):
            items = await c.read("matching", f"/programs/{seg(program_id)}/partnerships")
            found = next((i for i in items if i.get("partnership_id") == partnership_id), None)
            if found is not None:
                break
    elif response.status_code != 404:
        checked("matching", response)
    if found is None or not can_view_partnership(c.principal, facts_of(found)):
        # Out of reach looks exactly like unknown: nobody learns another program's ids.
        raise NotFound("partnership_id", f"no partnership {partnership_id}")
    cache[partnership_id] = found
    return found


async def partnership(c: Caller, partnership_id: str) -> PartnershipFacts:
    """Who a partnership belongs to, for a role check (see partnership_item); remembered for a few
    seconds (settings.partnership_cache_seconds): logging a meeting asked matching every time."""
    known = c.gateway.known_partnership(partnership_id)
    if known is not None:
        if not can_view_partnership(c.principal, known):
            raise NotFound("partnership_id", f"no partnership {partnership_id}")
        return known
    facts = facts_of(await partnership_item(c, partnership_id))
    c.gateway.remember_partnership(facts)
    return facts


async def partnerships_of(c: Caller, program_id: str, status: str | None = None) -> list[PartnershipFacts]:
    items = await c.read("matching", f"/programs/{seg(program_id)}/partnerships", {"status": status})
    return [facts_of(i) for i in items]


async def require_partnership(c: Caller, partnership_id: str, rule: Any, action: str) -> PartnershipFacts:
    """The partnership, when the caller may see it and the rule allows the action (else 404 / 403)."""
    facts = await partnership(c, partnership_id)
    if not rule(c.principal, facts):
        raise Forbidden("partnership_id", f"you may not {action} for partnership {partnership_id}")
    return facts


async def person_item(c: Caller, person_id: str, program_id: str, kinds: str) -> dict[str, Any] | None:
    """A person of a program the caller may already see, as matching's `kinds` list shows them;
    None when matching does not know them there."""
    response = await read_by_id(c, "matching", "/people/{id}", f"/people/{seg(person_id)}")
    if response.status_code == 200:
        found: dict[str, Any] = response.json()
        same = str(found.get("program_id")) == program_id and f"{found.get('kind')}s" == kinds
        return found if same else None
    if not route_missing(response):
        if response.status_code != 404:
            checked("matching", response)
        return None
    people: list[dict[str, Any]] = await c.read("matching", f"/programs/{seg(program_id)}/{kinds}")
    return next((p for p in people if p.get("person_id") == person_id), None)


async def person_record(c: Caller, person_id: str, kinds: tuple[str, ...] = PEOPLE_KINDS) -> tuple[str, str]:
    """(program id, kind) of a mentor / mentee / metamentor, among the programs the caller reaches;
    kind is "mentor", "mentee" or "metamentor"."""
    response = await read_by_id(c, "matching", "/people/{id}", f"/people/{seg(person_id)}")
    if response.status_code == 200:
        found = response.json()
        program_id, kind = str(found["program_id"]), str(found.get("kind", ""))
        if c.principal.in_program(program_id) and f"{kind}s" in kinds:
            return program_id, kind
    elif route_missing(response):
        for program_id in await programs_in_reach(c):
            for kind_list in kinds:
                people = await c.read("matching", f"/programs/{seg(program_id)}/{kind_list}")
                if any(p.get("person_id") == person_id for p in people):
                    return program_id, kind_list.removesuffix("s")
    elif response.status_code != 404:
        checked("matching", response)
    raise NotFound("person_id", f"no person {person_id}")


async def person_program(c: Caller, person_id: str, kinds: tuple[str, ...] = PEOPLE_KINDS) -> str:
    """The program a mentor / mentee / metamentor is enrolled in (among those the caller reaches)."""
    return (await person_record(c, person_id, kinds))[0]


async def owned(c: Caller, service: str, path: str, field: str, ident: str) -> dict[str, Any]:
    """A service's resource read by id, for its program and owner; 404 when out of the caller's reach."""
    response = await _raw(c, service, path)
    if response.status_code == 404:
        raise NotFound(field, f"no {field.removesuffix('_id')} {ident}")
    item: dict[str, Any] = checked(service, response).json()
    program_id = item.get("program_id")
    if program_id is None or not c.principal.in_program(str(program_id)):
        raise NotFound(field, f"no {field.removesuffix('_id')} {ident}")
    return item
