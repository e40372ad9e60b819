"""AsyncAPI documents of every service, generated from their FastStream brokers and checked in
under deploy/asyncapi/ (a test fails when they are not current: `mentoring asyncapi` rewrites them)."""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

from deploy.kafka.local import REPO_ROOT
from shared.asyncapi import service_asyncapi
from shared.settings import ServiceSettings

OUT = REPO_ROOT / "deploy" / "asyncapi"
SERVICES = ("matching", "activity", "payments", "notify")


def present() -> list[str]:
    return [s for s in SERVICES if (REPO_ROOT / "services" / s / "entrypoints" / "app.py").exists()]


def generate(name: str) -> dict[str, Any]:
    module = importlib.import_module(f"services.{name}.entrypoints.app")
    with tempfile.TemporaryDirectory() as tmp:
        # Fixed settings so the document does not depend on the environment it is made in.
        settings_cls = getattr(module, "SETTINGS_CLASS", ServiceSettings)
        settings = settings_cls(data_dir=Path(tmp), kafka_bootstrap_servers="127.0.0.1:9092", topic_prefix="")
        app = module.create_app(settings)
        return service_asyncapi(app.state.service)


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write_all() -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for name in present():
        path = OUT / f"{name}.json"
        path.write_text(render(generate(name)))
        written.append(path)
    return written
