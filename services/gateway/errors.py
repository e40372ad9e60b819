"""The gateway's own refusals, in the one error body shape (shared.errors)."""

from __future__ import annotations

from shared.errors import DomainError


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
