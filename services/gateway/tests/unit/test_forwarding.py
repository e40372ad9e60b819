"""What the services receive and what the client gets back: actor and request-id headers, 4xx
bodies unchanged, 5xx mapped, lists narrowed to what the caller may see, the overview composed,
and Idempotency-Key on forwarded writes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.gateway.domain.access import Role
from services.gateway.tests import fakes
from services.gateway.tests.fakes import FakeService, world
from services.gateway.tests.support import Harness, running_gateway

pytestmark = pytest.mark.unit


class Env:
    def __init__(self, h: Harness, fakes: dict[str, FakeService]) -> None:
        self.h, self.fakes = h, fakes

    def calls(self, service: str, method: str | None = None) -> list[Any]:
        return [c for c in self.fakes[service].calls if method is None or c.method == method]


@pytest.fixture
async def env(tmp_path) -> AsyncIterator[Env]:
    fakes = world()
    async with running_gateway(tmp_path, {n: f.app() for n, f in fakes.items()}) as h:
        h.user("admin", Role.ADMIN)
        h.user("coord_a", Role.COORDINATOR, ["prog-a"])
        h.user("coord_ab", Role.COORDINATOR, ["prog-a", "prog-b"])
        h.user("meta_1", Role.METAMENTOR, ["prog-a"], "meta-1")
        h.user("mentor_1", Role.MENTOR, ["prog-a"], "mentor-1")
        h.user("mentee_1", Role.MENTEE, ["prog-a"], "mentee-1")
        h.user("mentor_2", Role.MENTOR, ["prog-a"], "mentor-2")
        yield Env(h, fakes)


async def test_services_get_request_id_and_actor(env: Env) -> None:
    r = await env.h.client.post("/api/v1/meetings", json={"partnership_id": "pa-1", "minutes": 1},
                                headers=env.h.auth("mentor_1", **{"X-Request-ID": "req-42"}))
    assert r.status_code == 200, r.text
    [write] = env.calls("activity", "POST")
    assert write.headers["x-request-id"] == "req-42"
    assert write.headers["x-actor-id"] == "mentor-1"
    assert write.headers["x-actor-role"] == "mentor"
    assert write.json == {"partnership_id": "pa-1", "minutes": 1}
    assert r.headers["X-Request-ID"] == "req-42"
    await env.h.client.post("/api/v1/meetings", json={"partnership_id": "pa-1"}, headers=env.h.auth("coord_a"))
    staff_write = env.calls("activity", "POST")[-1]
    assert staff_write.headers["x-actor-role"] == "staff"
    assert staff_write.headers["x-actor-staff-role"] == "coordinator"
    assert staff_write.headers["x-actor-id"].startswith("usr_")
    assert len(staff_write.headers["x-request-id"]) == 32  # made by the gateway when the client sent none


async def test_service_refusals_pass_through_unchanged(env: Env) -> None:
    refusal = {"detail": [{"field": "duration_minutes", "reason": "must be at most 480", "code": "too_long"}]}
    env.fakes["activity"].routes[("POST", "/meetings")] = (422, refusal)
    r = await env.h.client.post("/api/v1/meetings", json={"partnership_id": "pa-1", "duration_minutes": 900},
                                headers=env.h.auth("mentor_1"))
    assert r.status_code == 422 and r.json() == refusal
    conflict = {"detail": [{"field": "month", "reason": "2026-12 is not due yet", "code": "not_due"}]}
    env.fakes["activity"].routes[("POST", "/programs/prog-a/month-closes")] = (409, conflict)
    r = await env.h.client.post("/api/v1/programs/prog-a/month-closes", json={"month": "2026-12"},
                                headers=env.h.auth("coord_a"))
    assert r.status_code == 409 and r.json() == conflict


async def test_service_errors_become_502_or_503_naming_the_service(env: Env) -> None:
    env.fakes["payments"].routes[("POST", "/statements/st-1/approve")] = (500, {"oops": "trace"})
    r = await env.h.client.post("/api/v1/statements/st-1/approve", json={}, headers=env.h.auth("coord_a"))
    assert r.status_code == 502
    assert r.json() == {"detail": [{"field": "service", "reason": "payments failed (HTTP 500)", "code": "service_error"}]}
    env.fakes["payments"].routes[("POST", "/statements/st-1/approve")] = (503, {"store": "down"})
    r = await env.h.client.post("/api/v1/statements/st-1/approve", json={}, headers=env.h.auth("coord_a"))
    assert r.status_code == 503
    assert r.json()["detail"][0] == {"field": "service", "reason": "payments is unavailable", "code": "service_unavailable"}


async def test_gateway_refuses_missing_fields_it_needs_in_the_same_shape(env: Env) -> None:
    r = await env.h.client.post("/api/v1/meetings", json={"started_at": "x"}, headers=env.h.auth("mentor_1"))
    assert r.status_code == 422
    assert r.json() == {"detail": [{"field": "partnership_id", "reason": "required: a non-empty string", "code": "missing"}]}
    r = await env.h.client.post("/api/v1/meetings", content=b"{not json", headers=env.h.auth("mentor_1",
                                **{"Content-Type": "application/json"}))
    assert r.status_code == 422 and r.json()["detail"][0]["field"]
    assert env.calls("activity", "POST") == []


async def test_lists_show_each_role_only_what_it_may_see(env: Env) -> None:
    async def ids(who: str, path: str, key: str, items: str | None = None) -> set[str]:
        r = await env.h.client.get("/api/v1" + path, headers=env.h.auth(who))
        assert r.status_code == 200, (who, path, r.text)
        body = r.json()
        return {i[key] for i in (body[items] if items else body)}

    assert await ids("admin", "/programs", "program_id") == {"prog-a", "prog-b"}
    assert await ids("coord_a", "/programs", "program_id") == {"prog-a"}
    assert await ids("mentee_1", "/programs", "program_id") == {"prog-a"}
    mine = "/me/partnerships"
    assert await ids("admin", mine, "partnership_id") == {"pa-1", "pa-2", "pb-1"}
    assert await ids("coord_ab", mine, "partnership_id") == {"pa-1", "pa-2", "pb-1"}
    assert await ids("coord_a", mine, "partnership_id") == {"pa-1", "pa-2"}
    assert await ids("meta_1", mine, "partnership_id") == {"pa-1"}
    assert await ids("mentor_2", mine, "partnership_id") == {"pa-2"}
    path = "/programs/prog-a/partnerships"
    assert await ids("coord_a", path, "partnership_id") == {"pa-1", "pa-2"}
    assert await ids("meta_1", path, "partnership_id") == {"pa-1"}
    assert await ids("mentor_2", path, "partnership_id") == {"pa-2"}
    assert await ids("mentee_1", path, "partnership_id") == {"pa-1"}
    assert await ids("mentor_1", "/programs/prog-a/mentees", "person_id") == {"mentee-1"}
    assert await ids("mentor_1", "/programs/prog-a/mentors", "person_id") == {"mentor-1"}
    assert await ids("coord_a", "/programs/prog-a/mentees", "person_id") == {"mentee-1", "mentee-2"}
    comp = "/programs/prog-a/compliance"
    assert await ids("meta_1", comp, "partnership_id", "partnerships") == {"pa-1"}
    assert await ids("coord_a", comp, "partnership_id", "partnerships") == {"pa-1", "pa-2"}
    assert await ids("admin", "/statements", "statement_id") == {"st-1", "st-2", "st-b"}
    assert await ids("coord_a", "/statements", "statement_id") == {"st-1", "st-2"}
    assert await ids("coord_ab", "/statements", "statement_id") == {"st-1", "st-2", "st-b"}
    assert await ids("mentor_1", "/statements", "statement_id") == {"st-1"}
    assert await ids("mentor_1", "/statements?mentor_id=mentor-2", "statement_id") == {"st-1"}
    assert await ids("coord_a", "/batches", "batch_id") == {"b-1"}
    assert await ids("coord_a", "/payouts/pending", "statement_id") == {"st-1", "st-2"}
    assert await ids("coord_a", "/reimbursements", "reimbursement_id") == {"r-1"}
    assert await ids("mentee_1", "/messages", "message_id", "items") == {"m-1"}
    assert env.calls("notify", "GET")[-1].query["person_id"] == "mentee-1"
    assert await ids("coord_a", "/messages", "message_id", "items") == {"m-1", "m-2"}
    assert await ids("coord_a", "/messages/failed", "message_id", "items") == {"m-1"}
    assert await ids("mentor_1", "/mentors/mentor-1/time-entries", "entry_id", "entries") == {"te-1"}
    for who, path in [("mentee_1", "/statements"), ("meta_1", "/statements"), ("mentor_1", "/batches"),
                      ("mentor_1", "/payouts/pending"), ("mentor_1", "/reimbursements"),
                      ("mentor_1", "/messages/failed"), ("mentor_2", "/mentors/mentor-1/time-entries"),
                      ("coord_a", "/statements?program_id=prog-b"), ("coord_a", "/batches?program_id=prog-b")]:
        r = await env.h.client.get("/api/v1" + path, headers=env.h.auth(who))
        assert r.status_code == 403, (who, path, r.status_code)
    r = await env.h.client.get("/api/v1/messages", headers=env.h.auth("coord_ab"))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "program_id"


async def test_who_asked_is_set_by_the_gateway_not_the_body(env: Env) -> None:
    r = await env.h.client.post("/api/v1/partnerships/pa-1/rematch", json={"requested_by": "staff"},
                                headers=env.h.auth("mentee_1"))
    assert r.status_code == 200
    assert env.calls("matching", "POST")[-1].json["requested_by"] == "mentee"
    r = await env.h.client.post("/api/v1/partnerships/pa-1/incidents",
                                json={"description": "rude", "reported_by": "mentor-2"}, headers=env.h.auth("mentee_1"))
    assert r.status_code == 200
    assert env.calls("matching", "POST")[-1].json["reported_by"] == "mentee-1"
    # Staff report for one of the partners, named; nobody else.
    r = await env.h.client.post("/api/v1/partnerships/pa-1/incidents",
                                json={"description": "rude", "reported_by": "mentor-1"}, headers=env.h.auth("coord_a"))
    assert r.status_code == 200
    assert env.calls("matching", "POST")[-1].json["reported_by"] == "mentor-1"
    for reporter in ({}, {"reported_by": "mentor-2"}, {"reported_by": "coord-a"}):
        before = len(env.calls("matching", "POST"))
        r = await env.h.client.post("/api/v1/partnerships/pa-1/incidents", json={"description": "rude", **reporter},
                                    headers=env.h.auth("coord_a"))
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reported_by", r.text
        assert len(env.calls("matching", "POST")) == before
    r = await env.h.client.post("/api/v1/time-entries", json={"program_id": "prog-a", "kind": "planning",
                                                              "work_date": "2026-10-06", "minutes": 30},
                                headers=env.h.auth("mentor_1"))
    assert r.status_code == 200
    assert env.calls("activity", "POST")[-1].json["mentor_id"] == "mentor-1"
    r = await env.h.client.post("/api/v1/time-entries", json={"program_id": "prog-a", "mentor_id": "mentor-2",
                                                              "kind": "planning", "work_date": "2026-10-06",
                                                              "minutes": 30}, headers=env.h.auth("mentor_1"))
    assert r.status_code == 403
    r = await env.h.client.post("/api/v1/time-entries", json={"program_id": "prog-a", "mentor_id": "mentor-1",
                                                              "kind": "planning", "work_date": "2026-10-06",
                                                              "minutes": 30, "partnership_id": "pa-2"},
                                headers=env.h.auth("coord_a"))
    assert r.status_code == 403 and r.json()["detail"][0]["field"] == "partnership_id"
    # staff record time only for a mentor of that program
    r = await env.h.client.post("/api/v1/time-entries", json={"program_id": "prog-a", "mentor_id": "mentor-b",
                                                              "kind": "planning", "work_date": "2026-10-06",
                                                              "minutes": 30}, headers=env.h.auth("coord_ab"))
    assert r.status_code == 403 and r.json()["detail"][0]["field"] == "mentor_id"


async def test_csv_import_reaches_the_service_as_sent(env: Env) -> None:
    csv = "name,email\nMaria,maria@example.org\n"
    r = await env.h.client.post("/api/v1/programs/prog-a/mentors/import?import_good_rows=true", content=csv.encode(),
                                headers=env.h.auth("coord_a", **{"Content-Type": "text/csv"}))
    assert r.status_code == 200, r.text
    [call] = env.calls("matching", "POST")
    assert call.path == "/programs/prog-a/mentors/import"
    assert call.json == csv and call.headers["content-type"] == "text/csv"
    assert call.query == {"import_good_rows": "true"}


async def test_batch_csv_comes_back_as_a_file(env: Env) -> None:
    r = await env.h.client.get("/api/v1/batches/b-1/csv", headers=env.h.auth("coord_a"))
    assert r.status_code == 200
    assert r.text.startswith("payee,amount,currency")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]


async def test_partnership_overview_composes_three_services(env: Env) -> None:
    r = await env.h.client.get("/api/v1/partnerships/pa-1/overview", headers=env.h.auth("mentor_1"))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["partnership"]["partnership_id"] == "pa-1"
    assert view["mentor"]["person_id"] == "mentor-1" and view["mentee"]["name"] == "Name of mentee-1"
    assert view["metamentor"]["person_id"] == "meta-1"
    assert view["compliance"]["status"] == "behind"
    assert [m["meeting_id"] for m in view["recent_meetings"]] == ["mtg-1"]
    assert [s["statement_id"] for s in view["pay"]["statements"]] == ["st-1"]
    assert view["unavailable"] == []
    mentee_view = (await env.h.client.get("/api/v1/partnerships/pa-1/overview", headers=env.h.auth("mentee_1"))).json()
    assert mentee_view["pay"] is None  # a mentee does not see the mentor's stipend
    assert mentee_view["compliance"]["status"] == "behind"


async def test_overview_names_a_missing_service_and_still_answers(tmp_path) -> None:
    fakes = world()
    async with running_gateway(tmp_path, {"matching": fakes["matching"].app()}) as h:
        h.user("coord_a", Role.COORDINATOR, ["prog-a"])
        r = await h.client.get("/api/v1/partnerships/pa-1/overview", headers=h.auth("coord_a"))
        assert r.status_code == 200, r.text
        assert r.json()["unavailable"] == ["activity", "payments"]
        assert r.json()["compliance"] is None and r.json()["mentor"]["person_id"] == "mentor-1"


async def test_idempotency_key_on_a_forwarded_write(env: Env) -> None:
    meeting = {"partnership_id": "pa-1", "duration_minutes": 45}
    headers = env.h.auth("mentor_1", **{"Idempotency-Key": "meet-1"})
    first = await env.h.client.post("/api/v1/meetings", json=meeting, headers=headers)
    again = await env.h.client.post("/api/v1/meetings", json=meeting, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert len(env.calls("activity", "POST")) == 1  # one effect
    assert env.calls("activity", "POST")[0].headers["idempotency-key"] == "meet-1"
    other = await env.h.client.post("/api/v1/meetings", json={**meeting, "duration_minutes": 50}, headers=headers)
    assert other.status_code == 422 and other.json()["detail"][0]["code"] == "idempotency_key_reused"
    assert len(env.calls("activity", "POST")) == 1
    # another user's same key is their own request
    r = await env.h.client.post("/api/v1/meetings", json=meeting,
                                headers=env.h.auth("coord_a", **{"Idempotency-Key": "meet-1"}))
    assert r.status_code == 200 and len(env.calls("activity", "POST")) == 2


async def test_running_a_payout_now_is_forwarded_once_per_idempotency_key(env: Env) -> None:
    issued = {"program_id": "prog-a", "pay_date": "2026-11-02", "created": True, "batch": {"batch_id": "b-9"}}
    env.fakes["payments"].routes[("POST", "/programs/prog-a/payouts")] = (201, issued)
    headers = env.h.auth("coord_a", **{"Idempotency-Key": "payout-nov"})
    first = await env.h.client.post("/api/v1/programs/prog-a/payouts", json={"pay_date": "2026-11-02"},
                                    headers=headers)
    again = await env.h.client.post("/api/v1/programs/prog-a/payouts", json={"pay_date": "2026-11-02"},
                                    headers=headers)
    assert first.status_code == again.status_code == 201 and again.json() == first.json() == issued
    assert again.headers["Idempotent-Replayed"] == "true"
    [call] = env.calls("payments", "POST")
    assert (call.path, call.json, call.headers["idempotency-key"]) == (
        "/programs/prog-a/payouts", {"pay_date": "2026-11-02"}, "payout-nov")
    assert call.headers["x-actor-id"].startswith("usr_") and call.headers["x-actor-role"] == "staff"
    # without a body payments gets an empty one: its own default pay date (today in the program)
    r = await env.h.client.post("/api/v1/programs/prog-a/payouts", headers=env.h.auth("admin"))
    assert r.status_code == 201 and env.calls("payments", "POST")[-1].json == {}


async def test_a_failed_write_releases_its_key_so_the_retry_goes_through(env: Env) -> None:
    env.fakes["activity"].routes[("POST", "/meetings")] = (503, {"ready": False})
    headers = env.h.auth("mentor_1", **{"Idempotency-Key": "k-retry"})
    r = await env.h.client.post("/api/v1/meetings", json={"partnership_id": "pa-1"}, headers=headers)
    assert r.status_code == 503
    env.fakes["activity"].routes[("POST", "/meetings")] = (201, {"meeting_id": "mtg-9"})
    r = await env.h.client.post("/api/v1/meetings", json={"partnership_id": "pa-1"}, headers=headers)
    assert r.status_code == 201 and r.json() == {"meeting_id": "mtg-9"}
    env.fakes["activity"].routes[("POST", "/meetings")] = (201, {"meeting_id": "mtg-10"})
    r = await env.h.client.post("/api/v1/meetings", json={"partnership_id": "pa-1"}, headers=headers)
    assert r.json() == {"meeting_id": "mtg-9"} and r.headers["Idempotent-Replayed"] == "true"
    assert len(env.calls("activity", "POST")) == 2


async def test_concurrent_retries_with_one_key_have_one_effect(env: Env) -> None:
    import asyncio

    headers = env.h.auth("coord_a", **{"Idempotency-Key": "burst"})
    results = await asyncio.gather(*(
        env.h.client.post("/api/v1/programs/prog-a/proposals", json={}, headers=headers) for _ in range(8)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {200, 409}, codes
    assert codes.count(200) >= 1
    assert len(env.calls("matching", "POST")) == 1
    assert all(r.json()["detail"][0]["code"] == "in_progress" for r in results if r.status_code == 409)


async def test_ops_routes_are_off_unless_clock_control_is_allowed(env: Env) -> None:
    r = await env.h.client.post("/api/v1/ops/clock", json={"now": "2026-11-04T08:00:00+00:00"},
                                headers=env.h.auth("admin"))
    assert r.status_code == 404
    assert env.calls("matching", "POST") == []


async def test_ops_clock_and_jobs_reach_every_service(tmp_path) -> None:
    fakes = world()
    async with running_gateway(tmp_path, {n: f.app() for n, f in fakes.items() if n != "notify"},
                               allow_clock_control=True) as h:
        h.user("admin", Role.ADMIN)
        h.user("coord_a", Role.COORDINATOR, ["prog-a"])
        body = {"now": "2026-11-04T08:00:00+00:00"}
        assert (await h.client.post("/api/v1/ops/clock", json=body, headers=h.auth("coord_a"))).status_code == 403
        r = await h.client.post("/api/v1/ops/clock", json=body, headers=h.auth("admin"))
        assert r.status_code == 200
        assert r.json()["notify"] == {"error": "notify is unavailable"}
        for name in ("matching", "activity", "payments"):
            [call] = fakes[name].mutations()
            assert call.path == "/admin/clock" and call.json == body
        r = await h.client.post("/api/v1/ops/jobs/payments/pay-day", headers=h.auth("admin"))
        assert r.status_code == 200 and fakes["payments"].mutations()[-1].path == "/admin/jobs/pay-day"


LISTS_OF_MATCHING = re.compile(r"^/programs(/[^/]+/(partnerships|mentors|mentees|metamentors))?$")


async def test_a_partnership_or_person_is_read_by_id_without_downloading_a_list(env: Env) -> None:
    checks = [
        ("mentor_1", "GET", "/partnerships/pa-1", None),
        ("mentee_1", "GET", "/partnerships/pa-1/meetings", None),
        ("meta_1", "GET", "/partnerships/pa-1/overview", None),
        ("mentor_1", "POST", "/meetings", {"partnership_id": "pa-1"}),
        ("coord_a", "PATCH", "/people/mentee-1", {"email": "e@example.org"}),
        ("admin", "PATCH", "/people/mentor-2", {"email": "m@example.org"}),
        ("coord_a", "PUT", "/mentors/mentor-1/capacity", {"capacity": 2}),
    ]
    for who, method, path, body in checks:
        env.fakes["matching"].calls.clear()
        r = await env.h.client.request(method, "/api/v1" + path, json=body, headers=env.h.auth(who))
        assert r.status_code == 200, (who, path, r.text)
        reads = [c.path for c in env.calls("matching", "GET")]
        assert not [p for p in reads if LISTS_OF_MATCHING.match(p)], (path, reads)
        assert reads or path == "/meetings", path  # pa-1's owners are remembered from the reads above
    r = await env.h.client.get("/api/v1/partnerships/pa-1", headers=env.h.auth("mentor_1"))
    assert r.json() == fakes.PARTNERSHIPS["prog-a"][0]  # matching's item, unchanged
    overview = (await env.h.client.get("/api/v1/partnerships/pa-1/overview", headers=env.h.auth("mentor_1"))).json()
    assert overview["partnership"] == fakes.PARTNERSHIPS["prog-a"][0]
    assert [overview[k]["person_id"] for k in ("mentor", "mentee", "metamentor")] == ["mentor-1", "mentee-1", "meta-1"]
    # out of reach stays 404 with a read by id too: another program's partnership and person
    env.h.user("mentor_b", Role.MENTOR, ["prog-b"], "mentor-b")
    env.h.user("coord_b", Role.COORDINATOR, ["prog-b"])
    env.fakes["matching"].calls.clear()
    for who, method, path, body in [("mentor_b", "GET", "/partnerships/pa-1", None),
                                    ("mentor_2", "GET", "/partnerships/pa-1", None),
                                    ("coord_b", "PATCH", "/people/mentee-1", {"email": "e@example.org"})]:
        r = await env.h.client.request(method, "/api/v1" + path, json=body, headers=env.h.auth(who))
        assert r.status_code == 404, (who, path, r.text)
        assert r.json()["detail"][0]["field"] in ("partnership_id", "person_id")
    assert [c.method for c in env.calls("matching")] == ["GET", "GET", "GET"]  # one read each, no write


async def test_a_missing_read_by_id_is_remembered_and_a_new_one_is_used(env: Env) -> None:
    fakes.without_reads_by_id(env.fakes["matching"])
    for _ in range(3):
        r = await env.h.client.get("/api/v1/partnerships/pa-1/meetings", headers=env.h.auth("mentor_1"))
        assert r.status_code == 200
    direct = [c for c in env.calls("matching", "GET") if c.path == "/partnerships/pa-1"]
    assert len(direct) == 1  # asked once; then the program's list is used
    overview = (await env.h.client.get("/api/v1/partnerships/pa-1/overview", headers=env.h.auth("mentor_1"))).json()
    assert [overview[k]["person_id"] for k in ("mentor", "mentee", "metamentor")] == ["mentor-1", "mentee-1", "meta-1"]
    # a matching that offers the read by id is used directly once the gateway re-checks
    env.fakes["matching"].routes[("GET", "/partnerships/pa-2")] = (200, {
        "partnership_id": "pa-2", "program_id": "prog-a", "mentor_id": "mentor-2", "mentee_id": "mentee-2",
        "metamentor_id": "meta-2"})
    env.h.gateway._missing_routes.clear()
    env.fakes["matching"].calls.clear()
    r = await env.h.client.get("/api/v1/partnerships/pa-2/compliance", headers=env.h.auth("mentor_2"))
    assert r.status_code == 404  # the fake activity has no compliance for pa-2: its refusal, passed on
    assert [c.path for c in env.calls("matching")] == ["/partnerships/pa-2"]
    r = await env.h.client.get("/api/v1/partnerships/pa-2/compliance", headers=env.h.auth("mentor_1"))
    assert r.status_code == 404 and r.json()["detail"][0]["field"] == "partnership_id"


async def test_without_a_read_by_id_a_program_id_stays_one_path_segment(tmp_path) -> None:
    """The fallback through program lists percent-encodes the program id: "prog?x" must not turn
    into the path /programs/prog with a query."""
    matching = fakes.without_reads_by_id(fakes.matching())
    item = {"partnership_id": "px-1", "program_id": "prog?x", "mentor_id": "mentor-x", "mentee_id": "mentee-x",
            "metamentor_id": None, "status": "active"}
    matching.routes[("GET", "/programs/prog?x/partnerships")] = (200, [item])
    async with running_gateway(tmp_path, {"matching": matching.app()}) as h:
        h.user("coord_x", Role.COORDINATOR, ["prog?x"])
        r = await h.client.get("/api/v1/partnerships/px-1", headers=h.auth("coord_x"))
        assert r.status_code == 200, r.text
        assert r.json() == item
    assert {c.path for c in matching.calls} == {"/partnerships/px-1", "/programs/prog?x/partnerships"}


async def test_who_a_partnership_belongs_to_is_remembered_for_a_few_seconds(tmp_path) -> None:
    meeting = {"partnership_id": "pa-1", "started_at": "2026-10-06T16:30:00-06:00", "duration_minutes": 45}
    for seconds, reads_expected in ((0.3, 1), (0, 4)):  # 4 requests
        fakes = world()
        async with running_gateway(tmp_path / str(seconds), {n: f.app() for n, f in fakes.items()},
                                   partnership_cache_seconds=seconds) as h:
            h.user("mentor_1", Role.MENTOR, ["prog-a"], "mentor-1")
            h.user("mentor_2", Role.MENTOR, ["prog-a"], "mentor-2")
            for _ in range(3):
                assert (await h.client.post("/api/v1/meetings", json=meeting, headers=h.auth("mentor_1"))).status_code == 200
            # A remembered partnership is still refused to who may not see it, without asking again.
            assert (await h.client.post("/api/v1/meetings", json=meeting, headers=h.auth("mentor_2"))).status_code == 404
            reads = [c for c in fakes["matching"].calls if c.method == "GET" and c.path == "/partnerships/pa-1"]
            assert len(reads) == reads_expected, (seconds, reads)
            assert len(fakes["activity"].mutations()) == 3
            if seconds:
                await asyncio.sleep(seconds + 0.05)  # expired: asked again
                assert (await h.client.post("/api/v1/meetings", json=meeting, headers=h.auth("mentor_1"))).status_code == 200
                assert len([c for c in fakes["matching"].calls if c.path == "/partnerships/pa-1"]) == 2
