"""Every route against every role: admin, the program's coordinator, another program's
coordinator, the partnership's metamentor, mentor and mentee, another mentor of the same program,
and a mentor of another program. Resources belong to prog-a's partnership pa-1 (mentor-1,
mentee-1, meta-1). A refused request is 403 or 404 and never reaches the service's write."""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.gateway.domain.access import Role
from services.gateway.tests.fakes import FakeService, world
from services.gateway.tests.support import Harness, running_gateway

pytestmark = pytest.mark.unit

WHO: dict[str, tuple[Role, list[str], str | None]] = {
    "admin": (Role.ADMIN, [], None),
    "coord_a": (Role.COORDINATOR, ["prog-a"], None),
    "coord_b": (Role.COORDINATOR, ["prog-b"], None),
    "meta_1": (Role.METAMENTOR, ["prog-a"], "meta-1"),
    "mentor_1": (Role.MENTOR, ["prog-a"], "mentor-1"),
    "mentee_1": (Role.MENTEE, ["prog-a"], "mentee-1"),
    "mentor_2": (Role.MENTOR, ["prog-a"], "mentor-2"),
    "mentor_b": (Role.MENTOR, ["prog-b"], "mentor-b"),
}
STAFF_A = {"admin", "coord_a"}
VIEW_PA1 = STAFF_A | {"meta_1", "mentor_1", "mentee_1"}
IN_A = STAFF_A | {"meta_1", "mentor_1", "mentee_1", "mentor_2"}
MENTOR_1 = STAFF_A | {"mentor_1"}

CSV = "name,email\nMaria,maria@example.org\n"
MEETING = {"partnership_id": "pa-1", "started_at": "2026-10-06T16:30:00-06:00", "duration_minutes": 45,
           "mode": "video", "intentional": True}

# (method, gateway path, JSON body or CSV text, who may)
CASES: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/programs", {"program_id": "prog-c", "name": "C"}, {"admin"}),
    ("GET", "/programs/prog-a", None, IN_A),
    ("PUT", "/programs/prog-a", {"name": "A2"}, STAFF_A),
    ("POST", "/programs/prog-a/mentors", {"name": "M", "email": "m@example.org"}, STAFF_A),
    ("POST", "/programs/prog-a/mentees", {"name": "E", "email": "e@example.org"}, STAFF_A),
    ("POST", "/programs/prog-a/metamentors", {"name": "X", "email": "x@example.org"}, STAFF_A),
    ("POST", "/programs/prog-a/mentees/import", CSV, STAFF_A),
    ("PATCH", "/people/mentor-1", {"email": "new@example.org"}, MENTOR_1),
    ("PATCH", "/people/mentee-1", {"availability": ["mornings"]}, STAFF_A | {"mentee_1"}),
    ("PATCH", "/people/mentee-1", {"years_in_position": 9}, STAFF_A),
    ("PUT", "/mentors/mentor-1/capacity", {"capacity": 3}, MENTOR_1),
    ("POST", "/mentors/mentor-1/pause", {"reason": "leave"}, MENTOR_1),
    ("POST", "/mentors/mentor-1/resume", {"capacity": 1}, MENTOR_1),
    ("POST", "/programs/prog-a/banned-pairs", {"mentee_id": "mentee-1", "mentor_id": "mentor-2"}, STAFF_A),
    ("POST", "/programs/prog-a/proposals", {}, STAFF_A),
    ("GET", "/proposals/prop-a", None, STAFF_A),
    ("POST", "/proposals/prop-a/publish", {}, STAFF_A),
    ("POST", "/programs/prog-a/partnerships", {"mentee_id": "mentee-1", "mentor_id": "mentor-2"}, STAFF_A),
    ("GET", "/me/partnerships", None, set(WHO)),  # each sees only their own (test_forwarding)
    ("GET", "/partnerships/pa-1", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/overview", None, VIEW_PA1),
    ("POST", "/partnerships/pa-1/rematch", {"reason": "schedules"}, STAFF_A | {"mentee_1"}),
    ("GET", "/programs/prog-a/transitions", None, STAFF_A),
    ("POST", "/transitions/tr-a/decision", {"decision": "hold"}, STAFF_A),
    ("POST", "/programs/prog-a/metamentors/assign", None, STAFF_A),
    ("POST", "/partnerships/pa-1/incidents", {"description": "rude"}, STAFF_A | {"mentor_1", "mentee_1"}),
    ("GET", "/programs/prog-a/incidents", None, STAFF_A),
    ("POST", "/incidents/inc-a/resolve", {"action": "close"}, STAFF_A),
    ("POST", "/meetings", MEETING, MENTOR_1),
    ("POST", "/meetings/mtg-1/corrections", {"duration_minutes": 30}, MENTOR_1),
    ("GET", "/meetings/mtg-1", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/meetings", None, VIEW_PA1),
    ("POST", "/time-entries", {"program_id": "prog-a", "mentor_id": "mentor-1", "kind": "planning",
                               "work_date": "2026-10-06", "minutes": 30, "partnership_id": "pa-1"}, MENTOR_1),
    ("POST", "/time-entries/te-1/amendments", {"minutes": 20}, MENTOR_1),
    ("GET", "/time-entries/te-1", None, MENTOR_1),
    ("POST", "/activities", {"partnership_id": "pa-1", "kind": "pip_stage", "occurred_on": "2026-10-06"}, MENTOR_1),
    ("GET", "/partnerships/pa-1/activities", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/compliance", None, VIEW_PA1),
    ("GET", "/programs/prog-a/compliance", None, IN_A),
    ("GET", "/programs/prog-a/month-closes", None, STAFF_A),
    ("GET", "/programs/prog-a/mentors/mentor-1/month-closes", None, MENTOR_1),
    ("POST", "/programs/prog-a/month-closes", {}, STAFF_A),
    ("POST", "/programs/prog-a/surveys", {"title": "Fit", "schedule": "first_meeting", "questions": []}, STAFF_A),
    ("GET", "/programs/prog-a/surveys", None, STAFF_A),
    ("GET", "/programs/prog-a/survey-results", None, STAFF_A),
    ("GET", "/programs/prog-a/partnership-flags", None, STAFF_A),
    ("GET", "/programs/prog-a/people/mentor-1/survey-invitations", None, MENTOR_1),
    ("POST", "/programs/prog-a/survey-rounds/sr-1/answers", {"answers": {"overall": 4}}, IN_A),
    ("POST", "/programs/prog-a/feedback-entries", {"given_on": "2026-10-06", "text": "t", "mentor_id": "mentor-1"},
     STAFF_A | {"mentor_1", "mentor_2"}),
    ("GET", "/programs/prog-a/mentors/mentor-1/feedback-entries", None, MENTOR_1),
    ("PUT", "/programs/prog-a/review-rubric", {"criteria": [{"criterion_id": "c"}]}, STAFF_A),
    ("GET", "/programs/prog-a/review-rubric", None, IN_A),
    ("POST", "/programs/prog-a/mentors/mentor-1/review-samples", {"month": "2026-10"}, STAFF_A),
    ("POST", "/programs/prog-a/mentors/mentor-1/reviews", {"entry_id": "fb-1", "scores": {"c": 3}}, STAFF_A),
    ("GET", "/programs/prog-a/mentors/mentor-1/reviews", None, MENTOR_1),
    ("GET", "/programs/prog-a/reports/health", None, STAFF_A),
    ("GET", "/programs/prog-a/reports/health?format=csv", None, STAFF_A),
    ("GET", "/statements/st-1", None, MENTOR_1),
    ("GET", "/statements/st-1/audit", None, MENTOR_1),
    ("POST", "/statements/st-1/approve", {}, STAFF_A),
    ("POST", "/statements/approvals", {"statement_ids": ["st-1"]}, STAFF_A),
    ("POST", "/statements/st-1/clarifications", {"entry_ids": ["te-1"], "question": "90?"}, STAFF_A),
    ("POST", "/programs/prog-a/payouts", {"pay_date": "2026-11-02"}, STAFF_A),
    ("GET", "/batches/b-1", None, STAFF_A),
    ("GET", "/batches/b-1/csv", None, STAFF_A),
    ("POST", "/reimbursements", {"partnership_id": "pa-1", "kind": "book", "amount": "24.99",
                                 "spent_on": "2026-10-03"}, MENTOR_1),
    ("GET", "/reimbursements?partnership_id=pa-1", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/budgets?on=2026-10-06", None, VIEW_PA1),
    ("GET", "/messages/m-1", None, STAFF_A | {"mentee_1"}),
    ("POST", "/messages/m-1/resend", None, STAFF_A),
    ("GET", "/people/mentee-1/preferences", None, STAFF_A | {"mentee_1"}),
    ("PUT", "/people/mentee-1/preferences", {"newsletter": False}, STAFF_A | {"mentee_1"}),
    ("POST", "/newsletters", {"program_id": "prog-a", "month": "2026-10"}, STAFF_A),
    ("GET", "/newsletters/nl-a", None, STAFF_A),
    ("POST", "/newsletters/nl-a/items", {"title": "T", "body": "B"}, STAFF_A),
    ("GET", "/newsletters/nl-a/preview", None, STAFF_A),
    ("POST", "/newsletters/nl-a/publish", None, STAFF_A),
    ("POST", "/announcements", {"program_id": "prog-a", "audience": "mentors", "title": "T", "body": "B"}, STAFF_A),
    ("GET", "/announcements/ann-a", None, STAFF_A),
    ("GET", "/announcements/ann-a/preview", None, STAFF_A),
    ("POST", "/announcements/ann-a/send", None, STAFF_A),
    ("GET", "/messages/m-1/content", None, STAFF_A | {"mentee_1"}),
    ("GET", "/newsletters?program_id=prog-a", None, STAFF_A),
]


class World:
    def __init__(self, h: Harness, fakes: dict[str, FakeService]) -> None:
        self.h, self.fakes = h, fakes

    def reset(self) -> None:
        for f in self.fakes.values():
            f.calls.clear()

    def writes(self) -> list[Any]:
        return [c for f in self.fakes.values() for c in f.mutations()]

    async def call(self, who: str, method: str, path: str, body: Any = None) -> Any:
        headers = self.h.auth(who)
        kwargs: dict[str, Any] = {}
        if isinstance(body, str):
            kwargs["content"] = body.encode()
            headers["Content-Type"] = "text/csv"
        elif body is not None:
            kwargs["json"] = body
        return await self.h.client.request(method, "/api/v1" + path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    fakes = world()
    tmp: Path = tmp_path_factory.mktemp("gateway-authz")
    async with running_gateway(tmp, {n: f.app() for n, f in fakes.items()}) as h:
        for name, (role, programs, person) in WHO.items():
            h.user(name, role, programs, person)
        yield World(h, fakes)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), CASES, ids=[f"{m} {p}" for m, p, _, _ in CASES])
async def test_every_role_against_the_route(env: World, method: str, path: str, body: Any, allowed: set[str]) -> None:
    for who in WHO:
        env.reset()
        r = await env.call(who, method, path, body)
        if who in allowed:
            assert r.status_code < 300, (who, r.status_code, r.text)
            if method != "GET":
                assert len(env.writes()) == 1, (who, env.writes())
        else:
            assert r.status_code in (403, 404), (who, r.status_code, r.text)
            assert env.writes() == [], (who, env.writes())
            assert r.json()["detail"][0]["field"], r.text


async def test_every_route_needs_a_token(env: World) -> None:
    for method, path, body, _ in CASES:
        r = await env.h.client.request(method, "/api/v1" + path, json=body if isinstance(body, dict) else None)
        assert r.status_code == 401, (method, path)
    assert env.writes() == []


OPS_PATHS = ("/health", "/ready", "/metrics", "/admin/")


def _real_routes(tmp: Path) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """(method, path pattern) of every route of the real services' HTTP apps (built, not started)."""
    from shared.settings import ServiceSettings

    routes: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for name in ("matching", "activity", "payments", "notify"):
        module = importlib.import_module(f"services.{name}.entrypoints.app")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate operation ids of GET+POST routes
            paths = module.create_app(ServiceSettings(data_dir=tmp / name)).openapi()["paths"]
        routes[name] = [
            (method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
            for path, ops in paths.items() for method in ops if not path.startswith(OPS_PATHS)
        ]
    return routes


# Lists (each role gets its own narrowed view: test_forwarding) and the signed unsubscribe link.
LISTS = [("GET", "/programs"), ("GET", "/programs/prog-a/mentors"), ("GET", "/statements"),
         ("GET", "/payouts/pending"), ("GET", "/batches"), ("GET", "/reimbursements"),
         ("GET", "/messages?program_id=prog-a"), ("GET", "/messages/failed?program_id=prog-a"),
         ("GET", "/mentors/mentor-1/time-entries"), ("GET", "/unsubscribe/mentee-1?token=t"),
         ("POST", "/unsubscribe/mentee-1?token=t")]


async def test_without_a_read_of_an_announcement_only_admins_send_it(env: World) -> None:
    announcement = env.fakes["notify"].routes.pop(("GET", "/announcements/ann-a"))
    env.h.gateway._missing_routes.clear()
    try:
        env.reset()
        assert (await env.call("coord_a", "POST", "/announcements/ann-a/send")).status_code == 403
        assert env.writes() == []
        assert (await env.call("admin", "POST", "/announcements/ann-a/send")).status_code == 200
    finally:
        env.fakes["notify"].routes[("GET", "/announcements/ann-a")] = announcement
        env.h.gateway._missing_routes.clear()


async def test_a_coordinator_cannot_slip_another_programs_statement_into_a_bulk_approval(env: World) -> None:
    env.reset()
    r = await env.call("coord_a", "POST", "/statements/approvals", {"statement_ids": ["st-1", "st-b"]})
    assert r.status_code == 404 and env.writes() == []
    r = await env.call("admin", "POST", "/statements/approvals", {"statement_ids": ["st-1", "st-b"]})
    assert r.status_code == 200 and len(env.writes()) == 1


async def test_every_call_the_gateway_makes_exists_in_the_real_service(env: World, tmp_path: Path) -> None:
    """Contract check: the fakes answer whatever they are asked, so prove each path the gateway
    called (for every route, as admin and as a participant) is a route of the real service."""
    real = _real_routes(tmp_path)
    seen: set[tuple[str, str, str]] = set()
    for method, path, body in [(m, p, b) for m, p, b, _ in CASES] + [(m, p, None) for m, p in LISTS]:
        for who in ("admin", "mentor_1", "mentee_1", "meta_1"):
            env.reset()
            await env.call(who, method, path, body)
            seen |= {(c.service, c.method, c.path) for f in env.fakes.values() for c in f.calls}
    missing = [
        call for call in sorted(seen)
        if not any(m == call[1] and rx.match(call[2]) for m, rx in real[call[0]])
    ]
    assert missing == []
    # ...and every capability of every service is reachable through some gateway route.
    unreached = [
        (service, method, rx.pattern) for service, routes in real.items() for method, rx in routes
        if not any(s == service and m == method and rx.match(p) for s, m, p in seen)
    ]
    assert unreached == [], f"{unreached}: service routes with no gateway route (add one in services/gateway/entrypoints/routes)"
