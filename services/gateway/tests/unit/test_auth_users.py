"""Bearer tokens, users and tokens through the API, request ids, health, metrics, body limit and
Idempotency-Key on the gateway's own resources."""

from __future__ import annotations

import pytest
from sqlmodel import select

from services.gateway.adapters.tables import GatewayToken, GatewayUser
from services.gateway.domain.access import Role
from services.gateway.service_layer.accounts import hash_token
from services.gateway.tests.fakes import matching
from services.gateway.tests.support import running_gateway

pytestmark = pytest.mark.unit


async def test_requests_without_a_valid_token_are_refused(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        h.user("ops", Role.ADMIN)
        for headers in ({}, {"Authorization": "Bearer mtg_not-a-token"}, {"Authorization": "Basic abc"},
                        {"Authorization": f"bearer {h.tokens['ops']}x"}):
            r = await h.client.get("/api/v1/me", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["detail"][0]["field"] == "Authorization"
            assert r.json()["detail"][0]["code"] == "unauthenticated"
        me = await h.client.get("/api/v1/me", headers=h.auth("ops"))
        assert me.status_code == 200
        assert me.json()["role"] == "admin"


async def test_tokens_are_stored_hashed_and_can_be_revoked(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        secret = h.user("ops", Role.ADMIN)
        with h.gateway.db.session() as s:
            [token] = s.exec(select(GatewayToken)).all()
        assert token.token_hash == hash_token(secret) and secret not in token.token_hash
        issued = await h.client.post("/api/v1/users/" + token.user_id + "/tokens", json={"label": "second"},
                                     headers=h.auth("ops"))
        assert issued.status_code == 201
        second = issued.json()["token"]
        assert (await h.client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})).status_code == 200
        listed = await h.client.get(f"/api/v1/users/{token.user_id}/tokens", headers=h.auth("ops"))
        assert [t["label"] for t in listed.json()] == ["test", "second"]
        assert all("token" not in t for t in listed.json())
        revoked = await h.client.delete(f"/api/v1/tokens/{issued.json()['id']}", headers=h.auth("ops"))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert (await h.client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})).status_code == 401
        assert (await h.client.get("/api/v1/me", headers=h.auth("ops"))).status_code == 200


async def test_who_may_create_users(tmp_path) -> None:
    async with running_gateway(tmp_path, {"matching": matching().app()}) as h:
        h.user("ops", Role.ADMIN)
        h.user("coord", Role.COORDINATOR, ["prog-a"])
        h.user("mentor", Role.MENTOR, ["prog-a"], "mentor-1")
        mentee = {"name": "Ed", "role": "mentee", "program_ids": ["prog-a"], "person_id": "mentee-1"}
        r = await h.client.post("/api/v1/users", json=mentee, headers=h.auth("coord"))
        assert r.status_code == 201, r.text
        assert r.json()["person_id"] == "mentee-1"
        other_program = {**mentee, "program_ids": ["prog-b"], "person_id": "mentee-9"}
        assert (await h.client.post("/api/v1/users", json=other_program, headers=h.auth("coord"))).status_code == 403
        coordinator = {"name": "C2", "role": "coordinator", "program_ids": ["prog-a"]}
        assert (await h.client.post("/api/v1/users", json=coordinator, headers=h.auth("coord"))).status_code == 403
        assert (await h.client.post("/api/v1/users", json=coordinator, headers=h.auth("ops"))).status_code == 201
        assert (await h.client.post("/api/v1/users", json=mentee, headers=h.auth("mentor"))).status_code == 403
        # the same person cannot get two users of the same role
        dup = await h.client.post("/api/v1/users", json=mentee, headers=h.auth("ops"))
        assert dup.status_code == 409 and dup.json()["detail"][0]["field"] == "person_id"
        # the person must be enrolled in matching, as that kind, in one of the user's programs
        for wrong in ({**mentee, "person_id": "mentee-b"}, {**mentee, "person_id": "nobody"},
                      {**mentee, "role": "mentor", "person_id": "mentee-2"}):
            r = await h.client.post("/api/v1/users", json=wrong, headers=h.auth("coord"))
            assert r.status_code == 400 and r.json()["detail"][0]["code"] == "unknown_person", wrong
        missing = await h.client.post("/api/v1/users", json={"name": "Z", "role": "mentor", "program_ids": ["prog-a"]},
                                      headers=h.auth("ops"))
        assert missing.status_code == 400 and missing.json()["detail"][0]["field"] == "person_id"
        bad = await h.client.post("/api/v1/users", json={"name": "", "role": "boss"}, headers=h.auth("ops"))
        assert bad.status_code == 422
        assert {d["field"] for d in bad.json()["detail"]} == {"name", "role"}


async def test_users_see_only_users_they_manage_or_themselves(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        h.user("ops", Role.ADMIN)
        h.user("coord-a", Role.COORDINATOR, ["prog-a"])
        h.user("mentor-a", Role.MENTOR, ["prog-a"], "mentor-1")
        h.user("mentor-b", Role.MENTOR, ["prog-b"], "mentor-9")
        names = {u["name"] for u in (await h.client.get("/api/v1/users", headers=h.auth("ops"))).json()}
        assert names == {"ops", "coord-a", "mentor-a", "mentor-b"}
        names = {u["name"] for u in (await h.client.get("/api/v1/users", headers=h.auth("coord-a"))).json()}
        assert names == {"coord-a", "mentor-a"}
        names = {u["name"] for u in (await h.client.get("/api/v1/users", headers=h.auth("mentor-a"))).json()}
        assert names == {"mentor-a"}
        with h.gateway.db.session() as s:
            b = s.exec(select(GatewayUser).where(GatewayUser.name == "mentor-b")).one()
        for who in ("coord-a", "mentor-a"):
            assert (await h.client.get(f"/api/v1/users/{b.id}", headers=h.auth(who))).status_code == 404
            r = await h.client.post(f"/api/v1/users/{b.id}/tokens", json={}, headers=h.auth(who))
            assert r.status_code == 404


async def test_idempotency_key_gives_one_effect_and_the_first_answer(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        h.user("ops", Role.ADMIN)
        h.user("ops2", Role.ADMIN)
        body = {"name": "Dana", "role": "coordinator", "program_ids": ["prog-a"]}
        first = await h.client.post("/api/v1/users", json=body, headers=h.auth("ops", **{"Idempotency-Key": "k1"}))
        again = await h.client.post("/api/v1/users", json=body, headers=h.auth("ops", **{"Idempotency-Key": "k1"}))
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        with h.gateway.db.session() as s:
            assert len(s.exec(select(GatewayUser).where(GatewayUser.name == "Dana")).all()) == 1
        changed = await h.client.post("/api/v1/users", json={**body, "name": "Other"},
                                      headers=h.auth("ops", **{"Idempotency-Key": "k1"}))
        assert changed.status_code == 422
        assert changed.json()["detail"][0]["field"] == "Idempotency-Key"
        # keys are per user: another admin's k1 is a new request
        other = await h.client.post("/api/v1/users", json=body, headers=h.auth("ops2", **{"Idempotency-Key": "k1"}))
        assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
        # a refusal is an answer too: replayed, not re-run
        bad = {"name": "X", "role": "mentor", "program_ids": ["prog-a"]}
        r1 = await h.client.post("/api/v1/users", json=bad, headers=h.auth("ops", **{"Idempotency-Key": "k2"}))
        r2 = await h.client.post("/api/v1/users", json=bad, headers=h.auth("ops", **{"Idempotency-Key": "k2"}))
        assert r1.status_code == r2.status_code == 400 and r1.json() == r2.json()


async def test_request_id_is_kept_or_made_and_echoed(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        r = await h.client.get("/health", headers={"X-Request-ID": "abc-123"})
        assert r.headers["X-Request-ID"] == "abc-123"
        r = await h.client.get("/health")
        assert len(r.headers["X-Request-ID"]) == 32
        r = await h.client.get("/health", headers={b"X-Request-ID": "café".encode()})
        assert len(r.headers["X-Request-ID"]) == 32  # not ASCII: replaced, never passed on


async def test_oversized_bodies_are_refused(tmp_path) -> None:
    async with running_gateway(tmp_path, max_body_bytes=1000) as h:
        h.user("ops", Role.ADMIN)
        r = await h.client.post("/api/v1/users", content=b"x" * 1001, headers=h.auth("ops"))
        assert r.status_code == 413
        assert r.json()["detail"][0] == {"field": "body", "reason": "request body larger than 1000 bytes",
                                         "code": "too_large"}


async def test_metrics_count_requests_per_route(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        h.user("ops", Role.ADMIN)
        await h.client.get("/api/v1/me", headers=h.auth("ops"))
        await h.client.get("/api/v1/me")
        text = (await h.client.get("/metrics")).text
        assert 'http_requests_total{method="GET",route="/api/v1/me",status="200"} 1.0' in text
        assert 'http_requests_total{method="GET",route="/api/v1/me",status="401"} 1.0' in text
        assert 'http_request_seconds_count{method="GET",route="/api/v1/me"} 2.0' in text


async def test_readiness_names_each_service(tmp_path) -> None:
    from fastapi import FastAPI

    up = FastAPI()

    @up.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    down = FastAPI()

    @down.get("/ready")
    async def not_ready() -> object:
        from fastapi.responses import JSONResponse
        return JSONResponse({"ready": False}, status_code=503)

    async with running_gateway(tmp_path, services={"matching": up, "activity": up, "payments": down}) as h:
        r = await h.client.get("/ready")
        assert r.status_code == 503
        assert r.json() == {"store": "ok", "ready": False, "services": {
            "matching": "ok", "activity": "ok", "payments": "not ready", "notify": "unavailable"}}
    async with running_gateway(tmp_path, services={s: up for s in ("matching", "activity", "payments", "notify")}) as h:
        r = await h.client.get("/ready")
        assert r.status_code == 200 and r.json()["ready"] is True
        assert (await h.client.get("/health")).json() == {"status": "alive", "service": "gateway"}


async def test_an_admin_rescopes_a_coordinator(tmp_path) -> None:
    async with running_gateway(tmp_path) as h:
        h.user("ops", Role.ADMIN)
        h.user("coord", Role.COORDINATOR, ["prog-a"])
        me = (await h.client.get("/api/v1/me", headers=h.auth("coord"))).json()
        change = {"program_ids": ["prog-a", "prog-b"]}
        r = await h.client.patch(f"/api/v1/users/{me['user_id']}", json=change, headers=h.auth("coord"))
        assert r.status_code == 403
        r = await h.client.patch(f"/api/v1/users/{me['user_id']}", json=change, headers=h.auth("ops"))
        assert r.status_code == 200 and r.json()["program_ids"] == ["prog-a", "prog-b"]
        assert (await h.client.get("/api/v1/me", headers=h.auth("coord"))).json()["program_ids"] == ["prog-a", "prog-b"]
        r = await h.client.patch(f"/api/v1/users/{me['user_id']}", json={"program_ids": []}, headers=h.auth("ops"))
        assert r.status_code == 400 and r.json()["detail"][0]["field"] == "program_ids"
