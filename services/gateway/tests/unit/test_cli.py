"""The CLI creates the first admin (and more users and tokens) in the gateway's store; the printed
token works against the API."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.gateway.cli import app as cli
from services.gateway.tests.support import running_gateway

pytestmark = pytest.mark.unit


async def test_cli_tokens_work_against_the_api(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORING_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MENTORING_DATABASE_URL", raising=False)
    runner = CliRunner()
    made = runner.invoke(cli, ["create-admin", "--name", "Ops", "--json"])
    assert made.exit_code == 0, made.output
    admin = json.loads(made.output)
    plain = runner.invoke(cli, ["create-user", "--name", "Maria", "--role", "mentor", "--program", "prog-a",
                                "--person", "mentor-1"])
    assert plain.exit_code == 0, plain.output
    mentor_token = plain.output.strip().splitlines()[-1]
    again = runner.invoke(cli, ["create-token", admin["user_id"], "--json"])
    assert again.exit_code == 0
    second = json.loads(again.output)["token"]
    bad = runner.invoke(cli, ["create-user", "--name", "X", "--role", "mentee", "--program", "prog-a"])
    assert bad.exit_code == 2 and "person_id" in bad.output
    reused = runner.invoke(cli, ["create-admin", "--name", "Ops", "--reuse", "--json"])
    assert json.loads(reused.output)["user_id"] == admin["user_id"] and json.loads(reused.output)["created"] is False
    listed = runner.invoke(cli, ["list-users"])
    assert "Ops" in listed.output and "mentor-1" in listed.output

    async with running_gateway(tmp_path) as h:
        third = json.loads(reused.output)["token"]
        for token, role in ((admin["token"], "admin"), (second, "admin"), (third, "admin"), (mentor_token, "mentor")):
            me = await h.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["role"] == role
        users = await h.client.get("/api/v1/users", headers={"Authorization": f"Bearer {admin['token']}"})
        assert {u["name"] for u in users.json()} == {"Ops", "Maria"}
