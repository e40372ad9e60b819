"""Fake services behind the gateway: FastAPI apps answering the same paths as the real services
with canned data for two programs, recording every call (path, query, body, actor headers).

prog-a: pa-1 (mentor-1, mentee-1, metamentor meta-1), pa-2 (mentor-2, mentee-2, meta-2)
prog-b: pb-1 (mentor-b, mentee-b, meta-b)

A GET the fake does not know answers like a missing route ({"detail": "Not Found"}), as the real
services do for reads they do not offer. `without_reads_by_id` gives a matching as it was before
GET /partnerships/{id} and GET /people/{id} (the gateway then searches program lists).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

Answer = tuple[int, Any] | Callable[[dict[str, str], Any], tuple[int, Any]]


@dataclass
class Call:
    service: str
    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]


@dataclass
class FakeService:
    name: str
    routes: dict[tuple[str, str], Answer] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def mutations(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    def app(self) -> FastAPI:
        fake = FastAPI()

        @fake.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def any_route(path: str, request: Request) -> Response:
            raw = await request.body()
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw) if request.headers.get("content-type", "").startswith(
                        "application/json") else raw.decode()
                except ValueError:
                    body = raw.decode(errors="replace")
            call = Call(self.name, request.method, "/" + path, dict(request.query_params), body,
                        {k.lower(): v for k, v in request.headers.items()})
            self.calls.append(call)
            answer = self.routes.get((request.method, call.path))
            if answer is None:
                if request.method == "GET":
                    return JSONResponse({"detail": "Not Found"}, status_code=404)
                answer = (200, {"ok": True, "service": self.name, "path": call.path, "echo": body,
                                "actor": call.headers.get("x-actor-id")})
            status, payload = answer(call.query, body) if callable(answer) else answer
            if isinstance(payload, str):
                return Response(payload, status_code=status, media_type="text/csv",
                                headers={"Content-Disposition": 'attachment; filename="payout.csv"'})
            return JSONResponse(payload, status_code=status)

        return fake


PARTNERSHIPS = {
    "prog-a": [
        {"partnership_id": "pa-1", "program_id": "prog-a", "mentor_id": "mentor-1", "mentee_id": "mentee-1",
         "metamentor_id": "meta-1", "status": "active", "started_at": "2026-09-01T15:00:00+00:00"},
        {"partnership_id": "pa-2", "program_id": "prog-a", "mentor_id": "mentor-2", "mentee_id": "mentee-2",
         "metamentor_id": "meta-2", "status": "active", "started_at": "2026-09-02T15:00:00+00:00"},
    ],
    "prog-b": [
        {"partnership_id": "pb-1", "program_id": "prog-b", "mentor_id": "mentor-b", "mentee_id": "mentee-b",
         "metamentor_id": "meta-b", "status": "active", "started_at": "2026-09-03T15:00:00+00:00"},
    ],
}


def _people(program: str, kind: str, ids: list[str]) -> list[dict[str, Any]]:
    return [{"person_id": i, "program_id": program, "kind": kind, "name": f"Name of {i}",
             "email": f"{i}@example.org", "status": "active"} for i in ids]


def matching() -> FakeService:
    f = FakeService("matching")
    f.routes[("GET", "/programs")] = (200, [{"program_id": "prog-a", "name": "A"}, {"program_id": "prog-b", "name": "B"}])
    for program, items in PARTNERSHIPS.items():
        f.routes[("GET", f"/programs/{program}")] = (200, {"program_id": program, "name": program.upper()})
        f.routes[("GET", f"/programs/{program}/partnerships")] = (200, items)
        for item in items:
            f.routes[("GET", f"/partnerships/{item['partnership_id']}")] = (200, item)
        for kind, key in (("mentors", "mentor_id"), ("mentees", "mentee_id"), ("metamentors", "metamentor_id")):
            people = _people(program, kind[:-1], [i[key] for i in items])
            f.routes[("GET", f"/programs/{program}/{kind}")] = (200, people)
            for person in people:
                f.routes[("GET", f"/people/{person['person_id']}")] = (200, person)
    f.routes[("GET", "/proposals/prop-a")] = (200, {"proposal_id": "prop-a", "program_id": "prog-a", "pairs": []})
    f.routes[("GET", "/programs/prog-a/transitions")] = (200, [{"transition_id": "tr-a", "partnership_id": "pa-1"}])
    f.routes[("GET", "/programs/prog-b/transitions")] = (200, [])
    f.routes[("GET", "/programs/prog-a/incidents")] = (200, [{"incident_id": "inc-a", "partnership_id": "pa-1"}])
    f.routes[("GET", "/programs/prog-b/incidents")] = (200, [])
    return f


def without_reads_by_id(f: FakeService) -> FakeService:
    """The matching fake without GET /partnerships/{id} and GET /people/{id}."""
    for method, path in list(f.routes):
        if method == "GET" and path.startswith(("/partnerships/", "/people/")) and path.count("/") == 2:
            del f.routes[(method, path)]
    return f


def activity() -> FakeService:
    f = FakeService("activity")
    meeting = {"meeting_id": "mtg-1", "partnership_id": "pa-1", "program_id": "prog-a", "mentor_id": "mentor-1",
               "mentee_id": "mentee-1", "started_at": "2026-10-06T22:30:00+00:00", "duration_minutes": 45,
               "intentional": True}
    f.routes[("GET", "/meetings/mtg-1")] = (200, meeting)
    f.routes[("GET", "/partnerships/pa-1/meetings")] = (200, {"partnership_id": "pa-1", "meetings": [meeting]})
    f.routes[("GET", "/partnerships/pa-1/activities")] = (200, [])
    f.routes[("GET", "/partnerships/pa-1/compliance")] = (200, {
        "partnership_id": "pa-1", "program_id": "prog-a", "status": "behind", "reasons": ["1 of 2 meetings"],
        "findings": [], "evaluated_at": "2026-10-20T00:00:00+00:00", "active": True})
    entry = {"entry_id": "te-1", "program_id": "prog-a", "mentor_id": "mentor-1", "kind": "planning", "minutes": 90}
    f.routes[("GET", "/time-entries/te-1")] = (200, entry)
    f.routes[("GET", "/mentors/mentor-1/time-entries")] = (200, {"mentor_id": "mentor-1", "month": None,
                                                                  "entries": [entry]})
    f.routes[("GET", "/programs/prog-a/compliance")] = (200, {"program_id": "prog-a", "counts": {"behind": 2}, "partnerships": [
        {**{k: p[k] for k in ("partnership_id", "mentor_id", "mentee_id", "metamentor_id")}, "status": "behind"}
        for p in PARTNERSHIPS["prog-a"]]})
    f.routes[("GET", "/programs/prog-a/month-closes")] = (200, {"program_id": "prog-a", "closed": []})
    f.routes[("GET", "/programs/prog-a/mentors/mentor-1/month-closes")] = (200, {"closes": []})
    f.routes[("GET", "/programs/prog-a/surveys")] = (200, {"program_id": "prog-a", "surveys": []})
    f.routes[("GET", "/programs/prog-a/survey-results")] = (200, {"program_id": "prog-a", "surveys": []})
    f.routes[("GET", "/programs/prog-a/partnership-flags")] = (200, {"program_id": "prog-a", "flags": []})
    f.routes[("GET", "/programs/prog-a/people/mentor-1/survey-invitations")] = (200, {"invitations": []})
    f.routes[("GET", "/programs/prog-a/mentors/mentor-1/feedback-entries")] = (200, {"entries": []})
    f.routes[("GET", "/programs/prog-a/review-rubric")] = (200, {"criteria": [], "sample_size": 3})
    f.routes[("GET", "/programs/prog-a/mentors/mentor-1/reviews")] = (200, {"months": []})
    f.routes[("GET", "/programs/prog-a/health")] = (200, {"program_id": "prog-a", "partnerships": []})
    return f


def payments() -> FakeService:
    f = FakeService("payments")
    st1 = {"statement_id": "st-1", "program_id": "prog-a", "mentor_id": "mentor-1", "month": "2026-10",
           "status": "in_review", "total": "120.00", "currency": "USD"}
    st2 = {**st1, "statement_id": "st-2", "mentor_id": "mentor-2"}
    stb = {**st1, "statement_id": "st-b", "program_id": "prog-b", "mentor_id": "mentor-b"}
    everything = [st1, st2, stb]

    def listing(query: dict[str, str], _: Any) -> tuple[int, Any]:
        return 200, [s for s in everything if all(s[k] == query[k] for k in ("program_id", "mentor_id") if k in query)]

    f.routes[("GET", "/statements")] = listing
    f.routes[("GET", "/statements/st-1")] = (200, {**st1, "lines": []})
    f.routes[("GET", "/statements/st-b")] = (200, {**stb, "lines": []})
    f.routes[("GET", "/statements/st-1/audit")] = (200, [])
    f.routes[("GET", "/payouts/pending")] = (200, everything)
    batches = [{"batch_id": "b-1", "program_id": "prog-a", "pay_date": "2026-11-02", "total": "100.00",
                "currency": "USD", "items": 1},
               {"batch_id": "b-b", "program_id": "prog-b", "pay_date": "2026-11-02", "total": "50.00",
                "currency": "USD", "items": 1}]
    f.routes[("GET", "/batches")] = (200, batches)
    f.routes[("GET", "/batches/b-1")] = (200, {**batches[0], "payout_items": []})
    f.routes[("GET", "/batches/b-1/csv")] = (200, "payee,amount,currency,memo,reference\n")
    f.routes[("GET", "/reimbursements")] = (200, [{"reimbursement_id": "r-1", "program_id": "prog-a",
                                                   "partnership_id": "pa-1", "status": "approved"}])
    f.routes[("GET", "/partnerships/pa-1/budgets")] = (200, {"partnership_id": "pa-1"})
    return f


def notify() -> FakeService:
    f = FakeService("notify")
    m1 = {"message_id": "m-1", "program_id": "prog-a", "recipient_id": "mentee-1", "status": "failed"}
    m2 = {"message_id": "m-2", "program_id": "prog-a", "recipient_id": "mentor-2", "status": "sent"}
    mb = {"message_id": "m-b", "program_id": "prog-b", "recipient_id": "mentee-b", "status": "sent"}
    f.routes[("GET", "/messages")] = (200, {"total": 3, "items": [m1, m2, mb]})
    f.routes[("GET", "/messages/failed")] = (200, {"total": 1, "items": [m1]})
    f.routes[("GET", "/messages/m-1")] = (200, m1)
    f.routes[("GET", "/people/mentee-1/preferences")] = (200, {"person_id": "mentee-1", "newsletter": True})
    f.routes[("GET", "/newsletters/nl-a")] = (200, {"newsletter_id": "nl-a", "program_id": "prog-a"})
    f.routes[("GET", "/newsletters/nl-a/preview")] = (200, {"subject": "October"})
    f.routes[("GET", "/announcements/ann-a")] = (200, {"announcement_id": "ann-a", "program_id": "prog-a"})
    f.routes[("GET", "/announcements/ann-a/preview")] = (200, {"subject": "Dates"})
    f.routes[("GET", "/messages/m-1/content")] = (200, {"subject": "Welcome", "text": "Hello"})
    f.routes[("GET", "/newsletters")] = (200, [{"newsletter_id": "nl-a", "program_id": "prog-a"}])
    return f


def world() -> dict[str, FakeService]:
    services = {"matching": matching(), "activity": activity(), "payments": payments(), "notify": notify()}
    for fake in services.values():
        fake.routes[("GET", "/ready")] = (200, {"store": "ok", "broker": "ok", "ready": True})
    return services
