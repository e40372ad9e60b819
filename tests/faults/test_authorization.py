"""Authorization against the real platform: every route of the authorization table
(services/gateway/tests/matrix.py) as each of eight principals, through the gateway to the real
services, with real tokens and real resources.

The world is seeded through the gateway as staff would build it: programs prog-a and prog-b, their
people, the partnerships pa-1 (mentor-1, mentee-1, metamentor meta-1), pa-2 (mentor-2) and pb-1
(mentor-b), September closed and paid, and one of each thing the table names (a proposal, a
transition, an incident, a meeting, a time entry, a survey round, a feedback entry, statements, a
payout batch, an email, a newsletter, an announcement). The table's ids are replaced by the
real ones.

What counts as "let through" is read from the services themselves: every service counts the
requests it answers by method and route (/metrics). A refused call must be a 403 or 404 in the one
error shape, and no service may have seen a write from it. An allowed call must reach the
service (a write counted there) or read successfully; the service may still refuse it on its own
rules (a proposal already published, a statement already approved): that is not the gateway's
refusal, and the table of who got what is printed when a case fails.

The gateway's own routes (users, tokens, operator controls) are played the same way, a write read
back from the gateway's store and the services' clock and job counters; and every list is read as
every principal, to show that nobody sees another program's people, partnerships or statements.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest

from services.gateway.tests.matrix import CASES, LISTS, WHO
from tests.e2e.harness import Gateway, Platform, running_platform, wait_for
from tests.faults.conftest import record
from tests.mail import RecordingSMTP, smtp_server

pytestmark = [pytest.mark.faults, pytest.mark.kafka]

POLICY = {
    "timezone": "America/Denver",
    "cadence": {"intentional_meetings_per_month": 2},
    "matching": {"metamentor_caseload_min": 0, "metamentor_caseload_max": 40},
    "pay": {"currency": "USD", "hourly_rates": {"meeting": "40.00", "planning": "30.00", "workshop": "50.00"},
            "planning_multiple_of_workshop": "2", "month_close_grace_days": 2, "pay_day": 5},
}
# Business time: matched on 1 September, September met, closed and paid on 5 October; the table
# is played on 10 October (its meetings and time entries are dated 6 October).
MATCH_DAY = "2026-09-01T16:00:00+00:00"
MID_SEPTEMBER = "2026-09-15T18:00:00+00:00"
PAY_DAY = "2026-10-05T16:00:00+00:00"
TABLE_DAY = "2026-10-10T16:00:00+00:00"

PEOPLE = {  # person id: (program, kind, capacity)
    "mentor-1": ("prog-a", "mentors", 2), "mentor-2": ("prog-a", "mentors", 2),
    "mentee-1": ("prog-a", "mentees", None), "mentee-2": ("prog-a", "mentees", None),
    "mentee-3": ("prog-a", "mentees", None), "mentee-4": ("prog-a", "mentees", None),
    "meta-1": ("prog-a", "metamentors", None),
    "mentor-b": ("prog-b", "mentors", 2), "mentee-b": ("prog-b", "mentees", None),
}
# Played last: it ends pa-1, which the rest of the table acts on.
LAST = {("POST", "/partnerships/pa-1/rematch")}
# Writes where no allowed principal can succeed in this world, and why (the service refuses on
# its own rules; the gateway let it through, which the services' counters show).
NO_SUCCESS_EXPECTED: dict[tuple[str, str], str] = {
    ("POST", "/messages/m-1/resend"): "only a failed email is sent again, and m-1 was delivered",
}
ID = re.compile(r"(?<![\w-])(pa-1|prop-a|tr-a|inc-a|mtg-1|te-1|sr-1|fb-1|st-1|st-b|b-1|m-1|nl-a|ann-a)(?![\w-])")


@dataclass
class World:
    platform: Platform
    admin: Gateway
    # One client for the whole run: a new httpx client per request costs ~25 ms (its TLS context).
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    calls: int = 0  # made as a principal, and how many of the refused ones got through (must be 0)
    let_in: int = 0

    def real(self, value: Any) -> Any:
        """The table's placeholder ids replaced by the seeded ones, in a path or a JSON body."""
        if isinstance(value, str):
            return ID.sub(lambda m: self.ids[m.group(1)], value)
        if isinstance(value, list):
            return [self.real(v) for v in value]
        if isinstance(value, dict):
            return {k: self.real(v) for k, v in value.items()}
        return value


# -- seeding ---------------------------------------------------------------------------------------
def set_clock(admin: Gateway, now: str) -> None:
    answers = admin.post("/ops/clock", {"now": now})
    assert all(a.get("now", "").startswith(now[:16]) for a in answers.values()), answers


def seed(platform: Platform, smtp: RecordingSMTP) -> World:
    admin = platform.client(platform.admin_token)
    w = World(platform, admin)
    set_clock(admin, MATCH_DAY)
    for program in ("prog-a", "prog-b"):
        admin.post("/programs", {"program_id": program, "name": program.upper(), "policy": POLICY}, expect=201)
    for person, (program, kinds, capacity) in PEOPLE.items():
        body: dict[str, Any] = {"person_id": person, "name": person.title(), "email": f"{person}@authz.example.org",
                                "training_completed": True}
        if capacity is not None:
            body["capacity"] = capacity
        admin.post(f"/programs/{program}/{kinds}", body, expect=201)

    def pair(program: str, mentee: str, mentor: str) -> str:
        made = admin.post(f"/programs/{program}/partnerships",
                          {"mentee_id": mentee, "mentor_id": mentor, "confirm_warnings": True}, expect=201)
        partnership_id: str = made["partnership_id"]
        return partnership_id

    w.ids["pa-1"] = pair("prog-a", "mentee-1", "mentor-1")
    pa2 = pair("prog-a", "mentee-2", "mentor-2")
    pb1 = pair("prog-b", "mentee-b", "mentor-b")
    admin.post("/programs/prog-a/metamentors/assign")
    assert admin.get(f"/partnerships/{w.ids['pa-1']}")["metamentor_id"] == "meta-1"
    def known(partnership_id: str) -> bool:
        return admin.http.get(f"/partnerships/{partnership_id}/compliance").status_code == 200

    for partnership_id in (w.ids["pa-1"], pa2, pb1):
        wait_for(partial(known, partnership_id), f"activity knows partnership {partnership_id}")

    # September: a meeting per partnership, mentor-1's workshop, a first-meeting survey.
    set_clock(admin, MID_SEPTEMBER)
    for partnership_id in (w.ids["pa-1"], pa2, pb1):
        admin.post("/meetings", {"partnership_id": partnership_id, "started_at": "2026-09-10T16:00:00-06:00",
                                 "duration_minutes": 60, "mode": "video", "intentional": True}, expect=201)
    w.ids["te-1"] = admin.post("/time-entries", {"program_id": "prog-a", "mentor_id": "mentor-1", "kind": "workshop",
                                                 "work_date": "2026-09-08", "minutes": 60}, expect=201)["entry_id"]
    admin.post("/programs/prog-a/surveys", {"title": "First meeting", "schedule": "first_meeting",
                                            "questions": [{"question_id": "overall", "kind": "rating",
                                                          "prompt": "How is it going?"}]}, expect=201)
    admin.post("/ops/jobs/activity/surveys")
    invitations = wait_for(lambda: admin.get("/programs/prog-a/people/mentor-1/survey-invitations")["invitations"],
                           "mentor-1's first-meeting survey invitation")
    w.ids["sr-1"] = invitations[0]["round_id"]

    # September closed (the scheduler or this call, whichever first), its statements; mentor-2 paid.
    set_clock(admin, PAY_DAY)
    for program in ("prog-a", "prog-b"):
        admin.post(f"/programs/{program}/month-closes", {"month": "2026-09"})

    def statement(program: str, mentor: str) -> str | None:
        found = admin.get("/statements", params={"program_id": program, "mentor_id": mentor, "month": "2026-09"})
        return found[0]["statement_id"] if found else None

    w.ids["st-1"] = wait_for(lambda: statement("prog-a", "mentor-1"), "mentor-1's September statement", 60)
    w.ids["st-b"] = wait_for(lambda: statement("prog-b", "mentor-b"), "mentor-b's September statement", 60)
    st2 = wait_for(lambda: statement("prog-a", "mentor-2"), "mentor-2's September statement", 60)
    admin.post(f"/statements/{st2}/approve", {})
    paid = admin.http.post("/programs/prog-a/payouts", json={"pay_date": "2026-10-05"})  # or the scheduler first
    assert paid.status_code in (200, 201), paid.text
    w.ids["b-1"] = wait_for(lambda: admin.get("/batches", params={"program_id": "prog-a"}), "the payout batch")[0][
        "batch_id"]

    # October: the rest of what the table names.
    set_clock(admin, TABLE_DAY)
    w.ids["mtg-1"] = admin.post("/meetings", {"partnership_id": w.ids["pa-1"],
                                              "started_at": "2026-10-05T16:30:00-06:00", "duration_minutes": 45,
                                              "mode": "video", "intentional": True}, expect=201)["meeting_id"]
    w.ids["inc-a"] = admin.post(f"/partnerships/{w.ids['pa-1']}/incidents", {"description": "missed twice", "reported_by": "mentee-1"},
                                expect=201)["incident_id"]
    admin.call("PUT", "/programs/prog-a/review-rubric", json={"criteria": [{"criterion_id": "c"}]})
    w.ids["fb-1"] = admin.post("/programs/prog-a/feedback-entries",
                               {"given_on": "2026-10-06", "text": "clear goals", "mentor_id": "mentor-1"},
                               expect=201)["entry_id"]
    admin.post("/programs/prog-a/mentors/mentor-1/review-samples", {"month": "2026-10"})  # fb-1, the only one
    w.ids["prop-a"] = admin.post("/programs/prog-a/proposals", {"mentee_ids": ["mentee-3"]},
                                 expect=201)["proposal_id"]  # mentee-4 stays for the manual pairing
    admin.post("/mentors/mentor-2/pause", {"reason": "leave"})
    admin.post("/mentors/mentor-2/resume", {"capacity": 2})
    w.ids["tr-a"] = admin.get("/programs/prog-a/transitions")[0]["transition_id"]
    w.ids["m-1"] = wait_for(lambda: admin.get("/messages", params={"program_id": "prog-a", "person_id": "mentee-1"})["items"],
                            "an email to mentee-1")[0]["message_id"]
    w.ids["nl-a"] = admin.post("/newsletters", {"program_id": "prog-a", "month": "2026-09"},
                               expect=201)["newsletter_id"]
    w.ids["ann-a"] = admin.post("/announcements", {"program_id": "prog-a", "audience": "mentors", "title": "Hello",
                                                   "body": "Welcome"}, expect=201)["announcement_id"]

    # A user and a token for each principal, as an admin makes them.
    w.tokens["admin"] = platform.admin_token
    for who, (role, programs, person_id) in WHO.items():
        if who == "admin":
            continue
        user = admin.post("/users", {"name": who, "role": role.value, "program_ids": programs,
                                     "person_id": person_id,
                                     "email": f"{person_id}@authz.example.org" if person_id else None}, expect=201)
        w.user_ids[who] = user["id"]
        w.tokens[who] = admin.post(f"/users/{user['id']}/tokens", {"label": "authz"}, expect=201)["token"]
    return w


@pytest.fixture(scope="module")
def world(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with smtp_server() as smtp, running_platform(bootstrap, tmp_path_factory.mktemp("authz"), smtp, tag="authz") as p:
        w = seed(p, smtp)
        yield w
        record(f"authorization: {len(CASES) + len(USER_CASES)} routes x {len(WHO)} principals through the gateway "
               "(a refused call that got through counts as lost)", test="test_authorization",
               sent=w.calls, received=w.calls - w.let_in, lost=w.let_in, duplicated=0)
        w.admin.close()
        w.http.close()


# -- what the services saw -------------------------------------------------------------------------
SERVICES = ("matching", "activity", "payments", "notify")
SAMPLE = re.compile(r"^http_requests_total\{(?P<labels>.*)\} (?P<value>\S+)$", re.M)  # routes hold braces


def writes_seen(w: World) -> int:
    """Write requests (not GET, not the ops routes) every service has answered so far."""
    total = 0
    for name in SERVICES:
        text = w.http.get(w.platform.system.url(name) + "/metrics").text
        for m in SAMPLE.finditer(text):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
            if labels["method"] != "GET" and not labels["route"].startswith("/admin/"):
                total += int(float(m["value"]))
    return total


@dataclass
class Outcome:
    who: str
    status: int
    writes: int
    body: str


def play(w: World, who: str, method: str, path: str, body: Any) -> Outcome:
    headers = {"Authorization": f"Bearer {w.tokens[who]}"}
    kwargs: dict[str, Any] = {}
    if isinstance(body, str):
        kwargs["content"], headers["Content-Type"] = body.encode(), "text/csv"
    elif body is not None:
        kwargs["json"] = w.real(body)
    before = writes_seen(w)
    r = w.http.request(method, w.platform.gateway_url + "/api/v1" + w.real(path), headers=headers, **kwargs)
    return Outcome(who, r.status_code, writes_seen(w) - before, r.text[:300])


ORDERED = sorted(CASES, key=lambda c: (c[0], c[1]) in LAST)


def test_each_principal_lists_only_the_partnerships_they_may_see(world: World) -> None:
    for who, (_, programs, person) in WHO.items():
        r = world.http.get(world.platform.gateway_url + "/api/v1/me/partnerships",
                           headers={"Authorization": f"Bearer {world.tokens[who]}"})
        assert r.status_code == 200, (who, r.text)
        items = r.json()
        assert items, (who, "sees none")
        for item in items:
            if person:
                assert person in (item["mentor_id"], item["mentee_id"], item.get("metamentor_id")), (who, item)
            elif who != "admin":
                assert item["program_id"] in programs, (who, item)
    assert {i["program_id"] for i in world.http.get(world.platform.gateway_url + "/api/v1/me/partnerships", headers={
        "Authorization": f"Bearer {world.tokens['admin']}"}).json()} == {"prog-a", "prog-b"}


OTHER_PROGRAM = {"prog-a": ("prog-b", "mentor-b", "mentee-b"), "prog-b": ("prog-a", "mentor-1", "mentee-1", "meta-1")}


@pytest.mark.parametrize(("method", "path"), [c for c in LISTS if not c[1].startswith("/unsubscribe")],
                         ids=[f"{m} {p}" for m, p in LISTS if not p.startswith("/unsubscribe")])
def test_no_list_shows_another_programs_records(world: World, method: str, path: str) -> None:
    shown = 0
    for who, (_, programs, _) in WHO.items():
        if who == "admin":
            continue
        r = world.http.request(method, world.platform.gateway_url + "/api/v1" + world.real(path),
                               headers={"Authorization": f"Bearer {world.tokens[who]}"})
        assert r.status_code in (200, 403, 404), (who, r.status_code, r.text)
        if r.status_code == 200:
            shown += 1
            # (an id the caller named in the path is only echoed back, not learned)
            leaked = [ident for ident in OTHER_PROGRAM[programs[0]] if f'"{ident}"' in r.text and ident not in path]
            assert not leaked, (who, path, leaked, r.text[:500])
    assert shown, f"nobody but the admin could read {path}"


def test_a_token_is_needed_everywhere(world: World) -> None:
    for method, path, body, _ in CASES:
        started = time.monotonic()
        before = writes_seen(world)
        r = world.http.request(method, world.platform.gateway_url + "/api/v1" + world.real(path),
                               json=world.real(body) if isinstance(body, dict) else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert writes_seen(world) == before, (method, path)
        assert time.monotonic() - started < 5


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ORDERED, ids=[f"{m} {p}" for m, p, _, _ in ORDERED])
def test_only_the_allowed_principals_reach_the_service(world: World, method: str, path: str, body: Any,
                                                       allowed: set[str]) -> None:
    outcomes = [play(world, who, method, path, body) for who in WHO]
    table = "\n".join(f"  {o.who:9} {'allowed' if o.who in allowed else 'refused'}  {o.status}  writes={o.writes}  "
                      f"{o.body[:160]}" for o in outcomes)
    refused = [o for o in outcomes if o.who not in allowed]
    let_in = [o for o in refused if o.status not in (403, 404) or o.writes]
    world.calls, world.let_in = world.calls + len(outcomes), world.let_in + len(let_in)
    assert not let_in, f"refused principals got through:\n{table}"
    for o in refused:
        detail = httpx.Response(o.status, content=o.body.encode()).json()["detail"]
        assert detail and {"field", "reason", "code"} <= set(detail[0]), table
    for o in outcomes:
        if o.who not in allowed:
            continue
        if method == "GET":
            assert o.status == 200, f"{o.who} may read this:\n{table}"
        else:  # let through; the service may still refuse it on its own rules (not invited, already sent)
            assert o.writes >= 1 and o.status < 500, f"{o.who} is allowed but no service saw the write:\n{table}"
    if method != "GET" and (method, path) not in NO_SUCCESS_EXPECTED:
        assert any(o.status < 300 for o in outcomes if o.who in allowed), f"no allowed principal succeeded:\n{table}"


# -- the gateway's own routes: users, tokens, operator controls ------------------------------------
# {mentee_1} is mentee_1's user; {token} a token of theirs issued just before each call.
USER_CASES: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/users", {"name": "New mentee", "role": "mentee", "program_ids": ["prog-a"], "person_id": "mentee-2"},
     {"admin", "coord_a"}),
    ("POST", "/users", {"name": "New coordinator", "role": "coordinator", "program_ids": ["prog-a"]}, {"admin"}),
    ("GET", "/users/{mentee_1}", None, {"admin", "coord_a", "mentee_1"}),
    ("PATCH", "/users/{mentee_1}", {"name": "Mentee One"}, {"admin"}),
    ("POST", "/users/{mentee_1}/tokens", {"label": "phone"}, {"admin", "coord_a", "mentee_1"}),
    ("GET", "/users/{mentee_1}/tokens", None, {"admin", "coord_a", "mentee_1"}),
    ("DELETE", "/tokens/{token}", None, {"admin", "coord_a", "mentee_1"}),
    ("POST", "/ops/clock", {"now": TABLE_DAY}, {"admin"}),
    ("POST", "/ops/jobs/activity/compliance", None, {"admin"}),
]


def gateway_state(w: World) -> Any:
    """What a write to the gateway's own store or to a service's clock and jobs would change."""
    users = w.admin.get("/users")
    tokens = w.admin.get(f"/users/{w.user_ids['mentee_1']}/tokens")
    ops = 0
    for name in SERVICES:
        for m in SAMPLE.finditer(w.http.get(w.platform.system.url(name) + "/metrics").text):
            if '"/admin/' in m["labels"]:
                ops += int(float(m["value"]))
    return users, tokens, ops


@pytest.mark.parametrize(("method", "path", "body", "allowed"), USER_CASES,
                         ids=[f"{m} {p} {i}" for i, (m, p, _, _) in enumerate(USER_CASES)])
def test_the_gateways_own_routes(world: World, method: str, path: str, body: Any, allowed: set[str]) -> None:
    rows = []
    for who in WHO:
        token_id = world.admin.post(f"/users/{world.user_ids['mentee_1']}/tokens", {"label": "spare"},
                                    expect=201)["id"]
        url = path.format(mentee_1=world.user_ids["mentee_1"], token=token_id)
        before = gateway_state(world)
        r = world.http.request(method, world.platform.gateway_url + "/api/v1" + url, json=body,
                               headers={"Authorization": f"Bearer {world.tokens[who]}"})
        changed = gateway_state(world) != before
        rows.append((who, r.status_code, changed, r.text[:160]))
    table = "\n".join(f"  {who:9} {'allowed' if who in allowed else 'refused'}  {status}  changed={changed}  {text}"
                      for who, status, changed, text in rows)
    let_in = [row for row in rows if row[0] not in allowed and (row[1] not in (403, 404) or row[2])]
    world.calls, world.let_in = world.calls + len(rows), world.let_in + len(let_in)
    assert not let_in, f"refused principals got through:\n{table}"
    for who, status, _changed, _ in rows:
        if who in allowed:  # a 409: let through, then refused by the store's own rule (one user per person)
            assert status < 300 or (status == 409 and method != "GET"), f"{who} is allowed:\n{table}"
    if method != "GET":
        assert any(status < 300 and changed for who, status, changed, _ in rows if who in allowed), table
