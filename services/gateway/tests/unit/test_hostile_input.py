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


# -- defects the fuzzing of the real platform found (tests/faults/test_hostile_http.py) -------------
def _one_shape(r: Any) -> dict[str, str]:
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail and all({"field", "reason", "code"} <= set(d) for d in detail), r.text
    first: dict[str, str] = detail[0]
    return first


async def test_the_document_promises_the_error_body_the_gateway_sends(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        spec = (await h.client.get("/openapi.json")).json()
    error = spec["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["detail"]
    assert spec["components"]["schemas"]["ProblemOut"]["required"] == ["field", "reason", "code"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's loc/msg/type, never sent
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in ops.items():
            for status in ("400", "401", "403", "404", "409", "413", "422", "503"):
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)


async def test_unknown_paths_methods_and_unparsable_json_answer_in_the_one_shape(tmp_path) -> None:
    fakes = world()
    async with running_gateway(tmp_path, {n: f.app() for n, f in fakes.items()}) as h:
        h.user("admin", Role.ADMIN)
        r = await h.client.get("/api/v1/no-such-thing", headers=h.auth("admin"))
        assert r.status_code == 404 and _one_shape(r) == {"field": "path", "reason": "not found", "code": "not_found"}
        r = await h.client.put("/health")
        assert r.status_code == 405 and _one_shape(r)["code"] == "method_not_allowed"
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"name": 1' + b"0" * 5000 + b"}", b'{"name": "\xff"}'):
            r = await h.client.post("/api/v1/programs", content=body,
                                    headers=h.auth("admin", **{"Content-Type": "application/json"}))
            assert r.status_code == 400, r.text
            assert _one_shape(r)["field"] == "body" and _one_shape(r)["code"] == "invalid_json"
        assert fakes["matching"].mutations() == []


async def test_json_that_cannot_be_sent_on_is_refused_not_a_500(tmp_path) -> None:
    """Python's parser takes NaN, Infinity and unpaired surrogates; JSON has none of them, and
    forwarding them raised in the gateway (500)."""
    fakes = world()
    async with running_gateway(tmp_path, {n: f.app() for n, f in fakes.items()}) as h:
        h.user("admin", Role.ADMIN)
        headers = h.auth("admin", **{"Content-Type": "application/json"})
        for body, code in ((b'{"name": NaN}', "invalid_json"), (b'{"name": -Infinity}', "invalid_json"),
                           (b'{"name": "\\ud800"}', "invalid_unicode")):
            r = await h.client.post("/api/v1/programs", content=body, headers=headers)
            assert r.status_code == 422, r.text
            assert _one_shape(r) == {"field": "body", "reason": _one_shape(r)["reason"], "code": code}
        assert fakes["matching"].mutations() == []
        r = await h.client.post("/api/v1/programs", content='{"name": "Café \\u00e9t\\u00e9"}'.encode(), headers=headers)
        assert r.status_code == 200 and fakes["matching"].mutations()[-1].json == {"name": "Café été"}


@pytest.mark.parametrize("where, url, body", [
    ("path", "/api/v1/programs/prog-a%00", None),
    ("query", "/api/v1/messages?person_id=mentee-1%00", None),
    ("body", "/api/v1/programs", b'{"name": "a\\u0000b"}'),
    ("body", "/api/v1/programs", b'{"name": "a\\\\\\u0000"}'),  # an escaped backslash, then the escape
])
async def test_a_nul_character_never_reaches_a_service(tmp_path, where: str, url: str, body: bytes | None) -> None:
    """PostgreSQL cannot store or even compare text with NUL: behind the gateway that was a 500."""
    fakes = world()
    async with running_gateway(tmp_path, {n: f.app() for n, f in fakes.items()}) as h:
        h.user("admin", Role.ADMIN)
        headers = h.auth("admin", **{"Content-Type": "application/json"})
        r = await (h.client.get(url, headers=headers) if body is None else h.client.post(url, content=body,
                                                                                       headers=headers))
        assert r.status_code == 400, r.text
        assert _one_shape(r)["field"] == where and _one_shape(r)["code"] == "nul_character"
        assert all(not c.calls for c in fakes.values())
        # The text "\u0000" (an escaped backslash before "u0000") is no NUL; %2500 is "%00" as text.
        r = await h.client.post("/api/v1/programs", content=b'{"name": "a\\\\u0000"}', headers=headers)
        assert r.status_code == 200 and fakes["matching"].mutations()[-1].json == {"name": "a\\u0000"}
        r = await h.client.get("/api/v1/programs/x%2500", headers=headers)
        assert r.status_code == 404 and fakes["matching"].calls[-1].path == "/programs/x%00"


async def test_paging_offsets_past_what_a_database_integer_holds_are_refused(tmp_path) -> None:
    fakes = world()
    async with running_gateway(tmp_path, {n: f.app() for n, f in fakes.items()}) as h:
        h.user("admin", Role.ADMIN)
        for path in ("/api/v1/messages", "/api/v1/messages/failed", "/api/v1/statements"):
            r = await h.client.get(path, params={"offset": str(2**63)}, headers=h.auth("admin"))
            assert r.status_code == 422 and _one_shape(r)["field"] == "offset", (path, r.text)
        assert all(not c.calls for c in fakes.values())


async def test_user_and_token_times_are_rfc3339_with_a_zone(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        h.user("admin", Role.ADMIN)
        me = (await h.client.get("/api/v1/me", headers=h.auth("admin"))).json()
        user = (await h.client.get(f"/api/v1/users/{me['user_id']}", headers=h.auth("admin"))).json()
        tokens = (await h.client.get(f"/api/v1/users/{me['user_id']}/tokens", headers=h.auth("admin"))).json()
    for stamp in (user["created_at"], *(t["created_at"] for t in tokens)):
        assert stamp.endswith("+00:00") or stamp.endswith("Z"), stamp
