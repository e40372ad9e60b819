"""Every matching command through HTTP, on the real broker and the real store (SQLite and
PostgreSQL): each emits its events exactly once, keyed by the aggregate, caused by the request."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from services.matching.entrypoints.app import build_service
from services.matching.entrypoints.http import make_router
from shared.clock import ManualClock
from shared.messaging import OutboxRecord
from shared.messaging.admin import ensure_topics
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import MATCHING
from tests.support import headers_of, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.requests: list[str] = []

    async def call(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        rid = f"req-{uuid.uuid4().hex[:8]}"
        self.requests.append(rid)
        headers = {"X-Request-ID": rid, "X-Actor-Id": "staff-7", "X-Actor-Role": "staff", **kw.pop("headers", {})}
        r = await self.client.request(method, path, headers=headers, **kw)
        assert r.status_code == status, r.text
        return r.json()


async def _service(tmp_path: Path, bootstrap: str, store_url: str) -> tuple[Service, str]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, data_dir=tmp_path, database_url=store_url,
                               topic_prefix=prefix)
    return build_service(settings, ManualClock(datetime(2026, 9, 1, 15, tzinfo=UTC))), prefix


@pytest.fixture
async def api(tmp_path: Path, bootstrap: str, store_url: str) -> AsyncIterator[tuple[Api, Service, str]]:
    service, prefix = await _service(tmp_path, bootstrap, store_url)
    app = service.http_app(make_router(service))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://m") as c:
        yield Api(c), service, prefix


async def wait_until_async(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout_s}s"
        await asyncio.sleep(0.2)


async def published(bootstrap: str, topic: str, expected: int) -> list[Any]:
    records: list[Any] = []

    async def enough() -> bool:
        nonlocal records
        records = await read_topic(bootstrap, topic)
        return len(records) >= expected

    await wait_until_async(enough)
    return records


async def test_every_command_emits_its_event_once_with_the_aggregate_key(
    api: tuple[Api, Service, str], bootstrap: str
) -> None:
    client, service, prefix = api
    await client.call("POST", "/programs", 201, json={"program_id": "prog-a", "name": "MentorMT"})
    await client.call("PUT", "/programs/prog-a", json={"name": "MentorMT 2026"})
    await client.call("POST", "/programs/prog-a/metamentors", 201,
                      json={"person_id": "mm1", "name": "Meta", "email": "mm1@x.org"})
    for mid in ("m1", "m2"):
        await client.call("POST", "/programs/prog-a/mentors", 201, json={
            "person_id": mid, "name": mid, "email": f"{mid}@x.org", "grade_band": "6-8", "capacity": 2})
    csv = "name,email,grade_band,subjects\nEve,eve@x.org,6-8,math\nFay,fay@x.org,k-2,\n"
    imported = await client.call("POST", "/programs/prog-a/mentees/import", 201, content=csv.encode(),
                                 headers={"Content-Type": "text/csv"})
    eve, fay = imported["person_ids"]
    await client.call("PUT", "/mentors/m1/capacity", json={"capacity": 3})
    proposal = await client.call("POST", "/programs/prog-a/proposals", 201, json={"objective": "best_total"})
    assert {p["mentee_id"] for p in proposal["pairs"]} == {eve, fay}
    result = await client.call("POST", f"/proposals/{proposal['proposal_id']}/publish", json={})
    by_mentee = {p["mentee_id"]: p for p in result["partnerships"]}
    eve_p = by_mentee[eve]["partnership_id"]
    fay_p = by_mentee[fay]["partnership_id"]
    rematch = await client.call("POST", f"/partnerships/{eve_p}/rematch", json={"requested_by": "mentee"})
    assert all(p["mentor_id"] != by_mentee[eve]["mentor_id"] for p in rematch["proposal"]["pairs"])
    incident = await client.call("POST", f"/partnerships/{fay_p}/incidents", 201,
                                 json={"reported_by": fay, "description": "dismissive remarks"})
    open_incidents = await client.call("GET", "/programs/prog-a/incidents")
    assert [i["incident_id"] for i in open_incidents] == [incident["incident_id"]]
    resolved = await client.call("POST", f"/incidents/{incident['incident_id']}/resolve",
                                 json={"action": "end_and_rematch", "note": "staff stepped in"})
    assert resolved["status"] == "closed" and await client.call("GET", "/programs/prog-a/incidents") == []
    new_eve = (await client.call("POST", f"/proposals/{rematch['proposal']['proposal_id']}/publish",
                                 json={}))["partnerships"][0]
    eve_p2, eve_mentor = new_eve["partnership_id"], new_eve["mentor_id"]
    assert eve_mentor != by_mentee[eve]["mentor_id"] and new_eve["previous_partnership_id"] == eve_p
    await client.call("PATCH", f"/people/{eve_mentor}", json={"years_in_program": 3})
    pause = await client.call("POST", f"/mentors/{eve_mentor}/pause", json={"reason": "sick leave"})
    assert [t["mentee_id"] for t in pause["awaiting_transition"]] == [eve]
    awaiting = await client.call("GET", "/programs/prog-a/transitions")
    assert [t["mentee_id"] for t in awaiting] == [eve]
    await client.call("POST", f"/transitions/{awaiting[0]['transition_id']}/decision", json={"decision": "end"})
    assert await client.call("GET", "/programs/prog-a/transitions") == []
    await client.call("POST", f"/mentors/{eve_mentor}/resume", json={"capacity": 1})

    expected = [
        ("ProgramConfigured", "prog-a"), ("ProgramConfigured", "prog-a"), ("MetamentorEnrolled", "mm1"),
        ("MentorEnrolled", "m1"), ("MentorEnrolled", "m2"), ("MenteeEnrolled", eve), ("MenteeEnrolled", fay),
        ("MentorCapacityChanged", "m1"), ("MenteeMatched", eve_p), ("MenteeMatched", fay_p),
        ("MetamentorAssigned", eve_p), ("MetamentorAssigned", fay_p), ("PartnershipEnded", eve_p),
        ("RematchRequested", eve_p), ("IncidentReported", fay_p), ("PartnershipEnded", fay_p),
        ("RematchRequested", fay_p), ("MenteeMatched", eve_p2), ("MetamentorAssigned", eve_p2),
        ("MentorProfileUpdated", eve_mentor), ("MentorPaused", eve_mentor), ("PartnershipEnded", eve_p2),
        ("MentorResumed", eve_mentor),
    ]
    await published(bootstrap, prefix + MATCHING, len(expected))

    async def outbox_drained() -> bool:
        with service.db.session() as s:
            return not s.exec(select(OutboxRecord).where(col(OutboxRecord.published_at).is_(None))).first()

    await wait_until_async(outbox_drained)
    records = await read_topic(bootstrap, prefix + MATCHING)
    seen = Counter((headers_of(r)["event_type"], r.key.decode()) for r in records)
    assert seen == Counter(expected)
    assert len({headers_of(r)["event_id"] for r in records}) == len(records)
    assert all(headers_of(r)["producer"] == "matching" for r in records)
    # Each event is caused by one of our requests (the X-Request-ID travels as correlation id).
    assert {headers_of(r)["correlation_id"] for r in records} <= set(client.requests)
    matched = [r for r in records if headers_of(r)["event_type"] == "MenteeMatched"]
    assert sorted(json.loads(r.value)["mentee_id"] for r in matched) == sorted([eve, fay, eve])
    ended = {json.loads(r.value)["partnership_id"]: json.loads(r.value)["reason"] for r in records
             if headers_of(r)["event_type"] == "PartnershipEnded"}
    assert ended == {eve_p: "rematch requested by the mentee", fay_p: "incident reported: staff stepped in",
                     eve_p2: "mentor paused: partnership ended"}


async def test_refusals_name_the_field_and_the_reason(api: tuple[Api, Service, str]) -> None:
    client, _, _ = api
    await client.call("POST", "/programs", 201, json={"program_id": "prog-b", "name": "B"})
    bad = await client.call("POST", "/programs", 400, json={
        "name": "C", "policy": {"matching": {"criteria_weights": {"shoe_size": 2}}}})
    assert bad["detail"][0]["field"] == "policy.matching.criteria_weights"
    missing = await client.call("POST", "/programs/nope/mentees", 404, json={"name": "x", "email": "x@x.org"})
    assert missing == {"detail": [{"field": "program_id", "reason": "no program 'nope'", "code": "not_found"}]}
    rows = await client.call("POST", "/programs/prog-b/mentors/import", 422,
                             content=b"name,email,capacity\nA,a@x.org,2\nB,b@x,2\n")
    assert rows == {"detail": [{"line": 3, "field": "email", "reason": "'b@x' is not an email address",
                                "code": "invalid_row"}]}
    assert await client.call("GET", "/programs/prog-b/mentors") == []
    await client.call("POST", "/programs/prog-b/mentors", 201, json={
        "person_id": "mb", "name": "m", "email": "mb@x.org", "capacity": 0})
    await client.call("POST", "/programs/prog-b/mentees", 201, json={"person_id": "eb", "name": "e", "email": "eb@x.org"})
    warn = await client.call("POST", "/programs/prog-b/partnerships", 409, json={"mentee_id": "eb", "mentor_id": "mb"})
    assert warn["detail"] == [{"field": "confirm_warnings", "reason": "mentor is at capacity (0 of 0)",
                               "code": "unconfirmed_warning"}]
    ok = await client.call("POST", "/programs/prog-b/partnerships", 201,
                           json={"mentee_id": "eb", "mentor_id": "mb", "confirm_warnings": True})
    assert ok["confirmed_warnings"] == ["mentor is at capacity (0 of 0)"] and ok["created_by"] == "staff-7"
    # read by id: exactly the program lists' item; unknown ids name the field
    [listed] = await client.call("GET", "/programs/prog-b/partnerships")
    assert await client.call("GET", f"/partnerships/{ok['partnership_id']}") == listed
    for kinds, person_id in (("mentors", "mb"), ("mentees", "eb")):
        [person] = await client.call("GET", f"/programs/prog-b/{kinds}")
        assert await client.call("GET", f"/people/{person_id}") == person
    assert await client.call("GET", "/people/nobody", 404) == {
        "detail": [{"field": "person_id", "reason": "no person 'nobody'", "code": "not_found"}]}
    assert await client.call("GET", "/partnerships/nope", 404) == {
        "detail": [{"field": "partnership_id", "reason": "no partnership 'nope'", "code": "not_found"}]}


async def test_two_programs_are_fully_separate(api: tuple[Api, Service, str]) -> None:
    client, _, _ = api
    for pid in ("p-x", "p-y"):
        await client.call("POST", "/programs", 201, json={"program_id": pid, "name": pid})
    await client.call("POST", "/programs/p-x/mentors", 201, json={"person_id": "mx", "name": "m", "email": "m@x.org"})
    await client.call("POST", "/programs/p-y/mentees", 201, json={"person_id": "ey", "name": "e", "email": "e@x.org"})
    proposal = await client.call("POST", "/programs/p-y/proposals", 201, json={})
    assert proposal["pairs"] == []
    assert proposal["unmatched"] == [{"mentee_id": "ey", "reason": "no eligible mentor with free capacity"}]
    cross = await client.call("POST", "/programs/p-y/partnerships", 409, json={"mentee_id": "ey", "mentor_id": "mx"})
    assert cross["detail"] == [{"field": "mentor_id", "code": "other_program",
                                "reason": "belongs to another program; partners must be in the same program"}]
