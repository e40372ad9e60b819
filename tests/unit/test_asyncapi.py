"""The checked-in AsyncAPI documents are the ones the services' brokers produce now."""

from __future__ import annotations

import pytest

from deploy.asyncapi import OUT, generate, present, render

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("service", present())
def test_asyncapi_document_is_current(service: str) -> None:
    path = OUT / f"{service}.json"
    assert path.exists(), f"{path} is missing: run `uv run mentoring asyncapi`"
    assert path.read_text() == render(generate(service)), f"{path} is stale: run `uv run mentoring asyncapi`"
    doc = generate(service)
    assert doc["asyncapi"].startswith("3.")
    assert doc["channels"], "the service documents its channels"
