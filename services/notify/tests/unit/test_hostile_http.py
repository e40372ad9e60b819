"""Hostile values on notify's HTTP API, answered as refusals before the store is touched (the app
runs without its lifespan: no broker, no store). Found by tests/faults/test_hostile_http.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.notify.entrypoints.app import create_app
from services.notify.settings import NotifySettings

pytestmark = pytest.mark.unit


def _client(tmp_path: Path) -> httpx.AsyncClient:
    app = create_app(NotifySettings(data_dir=tmp_path, mail_dir=tmp_path / "mail"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify")


@pytest.mark.parametrize("token", ["é" * 32, "\u2603", "0" * 31 + "\u00ff"])
async def test_an_unsubscribe_token_that_is_not_ascii_is_just_not_valid(tmp_path: Path, token: str) -> None:
    """hmac.compare_digest raises TypeError on non-ASCII text: that was a 500 (502 at the gateway)."""
    async with _client(tmp_path) as client:
        for method in ("GET", "POST"):
            r = await client.request(method, "/unsubscribe/mentee-1", params={"token": token})
            assert r.status_code == 403, (method, r.text)
            assert r.json()["detail"][0] == {"field": "token", "reason": "this unsubscribe link is not valid",
                                             "code": "bad_token"}


async def test_a_paging_offset_past_a_64_bit_integer_is_refused(tmp_path: Path) -> None:
    """SQLite raised OverflowError on it: a 500."""
    async with _client(tmp_path) as client:
        for path in ("/messages", "/messages/failed"):
            r = await client.get(path, params={"offset": str(10**26)})
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == "offset", (path, r.text)
