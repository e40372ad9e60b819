"""compose.yaml cannot run here (no Docker engine); this checks it names every service, the
topic-creation step and only settings the code reads, with the settings each service needs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.gateway.settings import GatewaySettings
from services.notify.settings import NotifySettings
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "matching": ServiceSettings,
    "activity": ServiceSettings,
    "payments": ServiceSettings,
    "notify": NotifySettings,
    "gateway": GatewaySettings,
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def env_names(settings_cls: type[ServiceSettings]) -> set[str]:
    """Every environment variable a settings class reads (prefix MENTORING_ or its aliases)."""
    names = set()
    for name, field in settings_cls.model_fields.items():
        names.add(f"MENTORING_{name.upper()}")
        alias = field.validation_alias
        for choice in getattr(alias, "choices", []) or []:
            if isinstance(choice, str):
                names.add(choice.upper())
    return names


def test_compose_names_every_component() -> None:
    services = compose()["services"]
    assert {"kafka", "postgres", "mail", "topics", *SERVICES} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["topics"]["command"] == ["mentoring", "topics", "create"]
    for name in SERVICES:
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_runs_its_real_app_with_settings_the_code_reads(name: str) -> None:
    svc = compose()["services"][name]
    command = svc["command"]
    target = command[command.index("--factory") + 1]
    module, attr = target.split(":")
    assert callable(getattr(importlib.import_module(module), attr)), target
    env = svc["environment"]
    known = env_names(SERVICES[name])
    unknown = {k for k in env if k.startswith("MENTORING_") and k not in known}
    assert not unknown, f"{name}: settings no code reads: {unknown}"
    assert env["MENTORING_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["MENTORING_DATABASE_URL"].endswith(f"@postgres/{name}")
    init = (ROOT / "deploy" / "docker" / "postgres-init.sql").read_text()
    assert f"CREATE DATABASE {name};" in init


def test_notify_and_gateway_point_at_their_peers() -> None:
    services = compose()["services"]
    assert services["notify"]["environment"]["MENTORING_SMTP_HOST"] == "mail"
    gw = services["gateway"]["environment"]
    for peer in ("matching", "activity", "payments", "notify"):
        command = services[peer]["command"]
        port = command[command.index("--port") + 1]
        assert gw[f"MENTORING_GATEWAY_{peer.upper()}_URL"] == f"http://{peer}:{port}"


def test_dockerfile_copies_what_the_services_import() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    for folder in ("shared", "services", "deploy"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_keep_idle_connections_longer_than_the_gateway_reuses_them(name: str) -> None:
    """Else a service may close a connection just as the gateway sends a request on it."""
    from deploy.runner import uvicorn
    from services.gateway.adapters.http11 import Http11Transport

    reused_for = Http11Transport().idle_s
    for command in (compose()["services"][name]["command"], uvicorn("any:app", 8000)):
        kept_for = float(command[command.index("--timeout-keep-alive") + 1])
        assert kept_for >= reused_for + 10
