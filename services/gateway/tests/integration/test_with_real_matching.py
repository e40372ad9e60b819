"""The gateway in front of the REAL matching service (its app and store in-process; no broker is
needed for its HTTP API: the outbox just waits). Proves the gateway reads matching's real answers
right: a program set up through the gateway, users linked to enrolled people, the partnership
found for role checks, a mentee's rematch and incident, staff-only resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.gateway.domain.access import Role
from services.gateway.tests.support import free_port, running_gateway
from services.matching.entrypoints.app import create_app as matching_app
from shared.clock import ManualClock
from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


async def test_people_and_partnerships_through_the_gateway(tmp_path) -> None:
    # Nothing listens on this broker port: matching answers HTTP and keeps its events in the outbox.
    settings = ServiceSettings(data_dir=tmp_path / "matching", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    matching = matching_app(settings, ManualClock(datetime(2026, 9, 1, 15, tzinfo=UTC)))
    async with matching.router.lifespan_context(matching), running_gateway(tmp_path, {"matching": matching}) as h:
        h.user("ops", Role.ADMIN)

        async def call(who: str, method: str, path: str, status: int, csv: str | None = None, **kw: Any) -> Any:
            headers = h.auth(who)
            if csv is not None:
                kw["content"] = csv.encode()
                headers["Content-Type"] = "text/csv"
            r: httpx.Response = await h.client.request(method, "/api/v1" + path, headers=headers, **kw)
            assert r.status_code == status, (who, method, path, r.text)
            return r.json()

        await call("ops", "POST", "/programs", 201, json={"program_id": "prog-x", "name": "X"})
        await call("ops", "POST", "/programs", 201, json={"program_id": "prog-y", "name": "Y"})
        h.user("coord", Role.COORDINATOR, ["prog-x"])
        h.user("coord_y", Role.COORDINATOR, ["prog-y"])
        enrolled: dict[str, str] = {}
        for kinds, name in (("mentors", "Maria"), ("mentees", "Ed"), ("mentees", "Flo"), ("metamentors", "Mo")):
            profile = {"capacity": 2, "years_in_position": 5, "years_in_program": 2, "training_completed": True}
            person = await call("coord", "POST", f"/programs/prog-x/{kinds}", 201, json={
                "name": name, "email": f"{name.lower()}@example.org", **(profile if kinds == "mentors" else {})})
            enrolled[name] = person["person_id"]
        await call("coord_y", "POST", "/programs/prog-x/mentees", 403, json={"name": "Z", "email": "z@example.org"})
        csv = "name,email\nGus,gus@example.org\nbad row without email,\n"
        imported = await call("coord", "POST", "/programs/prog-x/mentees/import?import_good_rows=true", 201,
                              csv=csv)
        assert imported["imported"] == 1 and imported["skipped"][0]["line"] == 3

        pair = await call("coord", "POST", "/programs/prog-x/partnerships", 201,
                          json={"mentee_id": enrolled["Ed"], "mentor_id": enrolled["Maria"], "confirm_warnings": True})
        partnership_id = pair["partnership_id"]
        await call("coord", "POST", "/programs/prog-x/metamentors/assign", 200)

        for name, role, person in (("maria", Role.MENTOR, "Maria"), ("ed", Role.MENTEE, "Ed"),
                                   ("flo", Role.MENTEE, "Flo"), ("mo", Role.METAMENTOR, "Mo")):
            made = await call("coord", "POST", "/users", 201, json={
                "name": name, "role": role.value, "program_ids": ["prog-x"], "person_id": enrolled[person]})
            token = await call("coord", "POST", f"/users/{made['id']}/tokens", 201, json={})
            h.tokens[name] = token["token"]

        for who in ("coord", "maria", "ed", "mo", "ops"):
            seen = await call(who, "GET", f"/partnerships/{partnership_id}", 200)
            assert seen["mentor_id"] == enrolled["Maria"]
        for who in ("flo", "coord_y"):
            await call(who, "GET", f"/partnerships/{partnership_id}", 404)
        mentees = await call("maria", "GET", "/programs/prog-x/mentees", 200)
        assert [m["name"] for m in mentees] == ["Ed"]

        await call("maria", "PUT", f"/mentors/{enrolled['Maria']}/capacity", 200, json={"capacity": 3})
        await call("ed", "PUT", f"/mentors/{enrolled['Maria']}/capacity", 403, json={"capacity": 0})
        await call("coord_y", "PUT", f"/mentors/{enrolled['Maria']}/capacity", 404, json={"capacity": 0})

        await call("flo", "POST", f"/partnerships/{partnership_id}/incidents", 404, json={"description": "x"})
        await call("ed", "POST", f"/partnerships/{partnership_id}/incidents", 201, json={"description": "Dismissive"})
        [incident] = await call("coord", "GET", "/programs/prog-x/incidents", 200)
        assert incident["reported_by"] == enrolled["Ed"]
        await call("ed", "POST", f"/incidents/{incident['incident_id']}/resolve", 403, json={"action": "close"})
        await call("coord_y", "POST", f"/incidents/{incident['incident_id']}/resolve", 404, json={"action": "close"})
        await call("coord", "POST", f"/incidents/{incident['incident_id']}/resolve", 200, json={"action": "close"})

        await call("maria", "POST", f"/partnerships/{partnership_id}/rematch", 403, json={})
        rematch = await call("ed", "POST", f"/partnerships/{partnership_id}/rematch", 200, json={"reason": "times"})
        assert rematch["proposal"]["purpose"]
        ended = await call("coord", "GET", f"/partnerships/{partnership_id}", 200)
        assert ended["status"] != "active"
