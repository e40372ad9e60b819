"""Gateway settings: the shared service settings plus where each service listens and how long
the gateway waits for it. Environment: MENTORING_GATEWAY_MATCHING_URL etc."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from shared.settings import ServiceSettings

SERVICES = ("matching", "activity", "payments", "notify")


def _url(service: str, port: int) -> object:
    return Field(
        default=f"http://127.0.0.1:{port}",
        validation_alias=AliasChoices(f"MENTORING_GATEWAY_{service.upper()}_URL", f"{service}_url"),
    )


class GatewaySettings(ServiceSettings):
    matching_url: str = _url("matching", 8101)  # type: ignore[assignment]
    activity_url: str = _url("activity", 8102)  # type: ignore[assignment]
    payments_url: str = _url("payments", 8103)  # type: ignore[assignment]
    notify_url: str = _url("notify", 8104)  # type: ignore[assignment]
    # A service that does not accept the connection quickly is down: answer 503, never hang.
    upstream_connect_timeout_seconds: float = Field(
        default=2.0, validation_alias=AliasChoices("MENTORING_GATEWAY_CONNECT_TIMEOUT_SECONDS",
                                                   "upstream_connect_timeout_seconds"))
    # Bounded wait for an answer (a whole-pool matching proposal can take seconds).
    upstream_read_timeout_seconds: float = Field(
        default=30.0, validation_alias=AliasChoices("MENTORING_GATEWAY_READ_TIMEOUT_SECONDS",
                                                    "upstream_read_timeout_seconds"))
    # Largest request body the gateway accepts (JSON or CSV upload).
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, validation_alias=AliasChoices("MENTORING_GATEWAY_MAX_BODY_BYTES", "max_body_bytes"))
    # How long the user a bearer token names is remembered instead of read from the store again. A
    # token revoked or a user changed through this process counts at once; through another gateway
    # instance (or the CLI) within this many seconds. 0: read the store on every request.
    auth_cache_seconds: float = Field(
        default=10.0, ge=0, validation_alias=AliasChoices("MENTORING_GATEWAY_AUTH_CACHE_SECONDS", "auth_cache_seconds"))
    # How long who a partnership belongs to (program, mentor, mentee, metamentor) is remembered for
    # role checks instead of asked of matching on every request. Program, mentor and mentee never
    # change; a metamentor assigned or replaced counts within this many seconds. 0: ask every time.
    partnership_cache_seconds: float = Field(
        default=10.0, ge=0, validation_alias=AliasChoices("MENTORING_GATEWAY_PARTNERSHIP_CACHE_SECONDS",
                                                          "partnership_cache_seconds"))
    # How long a stored Idempotency-Key answer is replayed.
    idempotency_ttl_hours: int = Field(
        default=24, validation_alias=AliasChoices("MENTORING_GATEWAY_IDEMPOTENCY_TTL_HOURS", "idempotency_ttl_hours"))

    def service_url(self, service: str) -> str:
        return str(getattr(self, f"{service}_url"))
