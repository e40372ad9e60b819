"""Every operation of the gateway's own OpenAPI document, called with hostile path values, query
values and bodies, by an admin and by a mentee: never a 5xx (the fake services are up), always
the one error body shape on a refusal."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from services.gateway.domain.access import Role
from services.gateway.tests.fakes import world
from services.gateway.tests.support import running_gateway

pytestmark = pytest.mark.unit

PATH_VALUES = ["pa-1", "%2F..%2Fadmin", "x" * 300, "caf%C3%A9%00", "a%3Fstatus%3Dall"]
BODIES: list[Any] = [{}, [], "not json", {"partnership_id": 7, "program_id": ["x"], "statement_ids": "st-1"},
                     {"partnership_id": "pa-1", "program_id": "prog-a", "statement_ids": [1, 2]}]


def _fill(path: str, value: str) -> str:
    out = path
    while "{" in out:
        start = out.index("{")
        out = out[:start] + value + out[out.index("}", start) + 1:]
    return out


async def test_no_operation_answers_5xx_to_hostile_input(tmp_path) -> None:
    fakes = world()
    async with running_gateway(tmp_path, {n: f.app() for n, f in fakes.items()}, allow_clock_control=True) as h:
        h.user("admin", Role.ADMIN)
        h.user("mentee", Role.MENTEE, ["prog-a"], "mentee-1")
        spec = (await h.client.get("/openapi.json")).json()
        tried = 0
        for path, ops in spec["paths"].items():
            for method, value, body, who in itertools.product(ops, PATH_VALUES, BODIES, ("admin", "mentee")):
                if method == "get" and body != {}:
                    continue  # reads take no body: one pass each
                kwargs: dict[str, Any] = {}
                if isinstance(body, str):
                    kwargs["content"] = body.encode()
                    kwargs["headers"] = {**h.auth(who), "Content-Type": "application/json"}
                else:
                    kwargs["headers"] = h.auth(who)
                    if method != "get":
                        kwargs["json"] = body
                url = _fill(path, value) + "?status=%FF&limit=-1&on=yesterday&month=13&program_id="
                r = await h.client.request(method.upper(), url, **kwargs)
                tried += 1
                assert r.status_code < 500, (method, url, body, who, r.status_code, r.text)
                if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
                    detail = r.json().get("detail")
                    if isinstance(detail, list):  # the one shape (or a service's own body, passed on)
                        assert all({"field", "reason", "code"} <= set(d) for d in detail), r.text
        assert tried > 2000
