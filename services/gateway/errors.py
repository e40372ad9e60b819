"""The gateway's own refusals, in the one error body shape (shared.errors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import DomainError


class ProblemOut(BaseModel):
    """One reason a request is refused. A roster import adds the CSV `line`."""

    model_config = ConfigDict(title="Problem", extra="allow")
    field: str = Field(description="The field, header, parameter or part of the request at fault")
    reason: str = Field(description="Why, in words a person can act on")
    code: str = Field(description="A stable code for programs")


class ErrorOut(BaseModel):
    """The body of every refusal (4xx) and of 502/503."""

    model_config = ConfigDict(title="Error", json_schema_extra={"examples": [
        {"detail": [{"field": "duration_minutes", "reason": "must be at most 480", "code": "too_long"}]}]})
    detail: list[ProblemOut] = Field(min_length=1)


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Documented on every /api operation, so a client (and a fuzzer) knows the one error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Refused by a rule (the problems say which)"),
    401: _documented("No valid bearer token"),
    403: _documented("Your role may not do this here"),
    404: _documented("No such resource, or not one you may see"),
    409: _documented("Conflicts with the current state"),
    413: _documented("The request body is larger than the gateway's limit"),
    422: _documented("The request is malformed (a parameter or body field)"),
    502: _documented("A service failed; its details stay in its log"),
    503: _documented("A service is down or too slow (field `service` names it)"),
}


class Unauthenticated(DomainError):
    status = 401

    def __init__(self, reason: str = "a valid bearer token is required") -> None:
        super().__init__("Authorization", reason, "unauthenticated")


class Unprocessable(DomainError):
    status = 422


class PayloadTooLarge(DomainError):
    status = 413


class ServiceUnavailable(DomainError):
    """A service is down, refused the connection, timed out, or says it cannot answer now."""

    status = 503

    def __init__(self, service: str, reason: str | None = None) -> None:
        super().__init__("service", reason or f"{service} is unavailable", "service_unavailable")
        self.service = service


class ServiceFailed(DomainError):
    """A service answered with an internal error; its details stay in its own log."""

    status = 502

    def __init__(self, service: str, status: int) -> None:
        super().__init__("service", f"{service} failed (HTTP {status})", "service_error")
        self.service = service
