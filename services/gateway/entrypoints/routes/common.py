"""Small pieces the route modules share: free-form JSON bodies with examples (the owning service
validates them and its 422 comes back unchanged), and reading the one field a role check needs."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Path, Query

from services.gateway.errors import Unprocessable


def json_body(*examples: dict[str, Any], description: str = "") -> Any:
    return Body(
        default=...,
        description=description or "Validated by the service that owns the resource.",
        openapi_examples={f"example {i + 1}": {"value": e} for i, e in enumerate(examples)},
    )


def optional_json_body(*examples: dict[str, Any], description: str = "") -> Any:
    return Body(
        default=None,
        description=description or "Validated by the service that owns the resource.",
        openapi_examples={f"example {i + 1}": {"value": e} for i, e in enumerate(examples)},
    )


def text_field(body: dict[str, Any], name: str) -> str:
    """A string field the gateway needs for its role check; refused (422) when absent or not text."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise Unprocessable(name, "required: a non-empty string", "missing")
    return value


# Past this, an offset only overflows the services' SQL integers (SQLite's are 64-bit).
MAX_OFFSET = 2**31 - 1


def offset_query() -> Any:
    return Query(0, ge=0, le=MAX_OFFSET, description="How many to skip (paging)")


def id_path(example: str, description: str = "") -> Any:
    return Path(max_length=200, examples=[example], description=description or None)


ProgramId = id_path("prog-mentormt", "A program id")
PartnershipId = id_path("pa-0f3c9e21", "A partnership id")
MentorId = id_path("mentor-7f3a", "A mentor's person id")
