"""Hostile values on payments' HTTP API, refused before the store is touched (the app runs without
its lifespan: no broker, no store). Found by tests/faults/test_hostile_http.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.payments.entrypoints.app import create_app
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit


async def test_a_paging_offset_past_a_64_bit_integer_is_refused(tmp_path: Path) -> None:
    """SQLite raises OverflowError on an offset of 2**63 or more: that was a 500."""
    app = create_app(ServiceSettings(data_dir=tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payments") as client:
        r = await client.get("/statements", params={"offset": str(2**63)})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "offset", r.text
