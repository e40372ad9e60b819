"""One shape for every refused request: which field, why, and a stable code.

    {"detail": [{"field": "duration_minutes", "reason": "must be at most 480", "code": "too_long"}]}

Domain code raises DomainError (or a subclass); the HTTP layer turns it into a 4xx with that body.
FastAPI's own validation errors are reshaped into the same body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason, "code": self.code}


class DomainError(Exception):
    """A request the domain refuses. status: 400 invalid, 404 unknown, 409 conflicts with state."""

    status = 400

    def __init__(
        self, field: str, reason: str, code: str = "invalid", *, problems: list[Problem] | None = None
    ):
        self.problems = problems or [Problem(field, reason, code)]
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in self.problems))

    def body(self) -> dict[str, Any]:
        return {"detail": [p.as_dict() for p in self.problems]}


class NotFound(DomainError):
    status = 404

    def __init__(self, field: str, reason: str = "not found", code: str = "not_found"):
        super().__init__(field, reason, code)


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403

    def __init__(self, field: str = "authorization", reason: str = "not allowed", code: str = "forbidden"):
        super().__init__(field, reason, code)
