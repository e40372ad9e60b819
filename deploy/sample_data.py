"""The sample program the run command loads into empty stores, through the gateway like staff would:
a program with its policy, mentors, mentees and metamentors from CSV, an optimal matching proposal,
published (which assigns metamentors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from deploy.kafka.local import REPO_ROOT

SAMPLE = REPO_ROOT / "deploy" / "sample"
PROGRAM_ID = "lakeside-induction"


def admin_token(env: dict[str, str]) -> str:
    """A fresh bearer token for the embedded default's admin (created on first run)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.gateway.cli",
            "create-admin",
            "--name",
            "Embedded admin",
            "--label",
            "run",
            "--reuse",
            "--json",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not create the admin token: {done.stderr or done.stdout}")
    return str(json.loads(done.stdout.strip().splitlines()[-1])["token"])


def load_sample(gateway_url: str, token: str) -> str:
    api = httpx.Client(
        base_url=f"{gateway_url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    with api:
        if api.get("/programs").raise_for_status().json():
            return "sample program: the stores already hold programs; nothing loaded"
        program = json.loads((SAMPLE / "program.json").read_text())
        api.post("/programs", json={"program_id": PROGRAM_ID, **program}).raise_for_status()
        counts = {}
        for kinds in ("mentors", "mentees", "metamentors"):
            r = api.post(
                f"/programs/{PROGRAM_ID}/{kinds}/import",
                content=(SAMPLE / f"{kinds}.csv").read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
            r.raise_for_status()
            counts[kinds] = r.json().get("imported")
        proposal = api.post(f"/programs/{PROGRAM_ID}/proposals", json={}).raise_for_status().json()
        published = (
            api.post(f"/proposals/{proposal['proposal_id']}/publish", json={}).raise_for_status().json()
        )
    return (
        f"sample program {PROGRAM_ID!r}: {counts['mentors']} mentors, {counts['mentees']} mentees, "
        f"{counts['metamentors']} metamentors imported; {len(published['partnerships'])} partnerships published"
    )
