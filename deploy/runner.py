"""The main job: the whole system on one machine, on the embedded default.

Starts the local Kafka broker (or uses MENTORING_KAFKA_BOOTSTRAP_SERVERS), creates the topics,
starts the SMTP sink, every service and the gateway as processes (SQLite stores and logs under the
data folder), loads the sample program when the stores are empty, prints where to go and an admin
token, shows readiness, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from deploy.kafka.local import REPO_ROOT, LocalKafka
from shared.messaging.admin import ensure_topics
from shared.settings import HTTP_KEEP_ALIVE_SECONDS


@dataclass
class Component:
    name: str
    module: str  # file that must exist for the component to be started
    argv: list[str]
    port: int
    ready_path: str | None = "/ready"
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def present(self) -> bool:
        return (REPO_ROOT / self.module).exists()


def uvicorn(target: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--timeout-keep-alive",
        str(HTTP_KEEP_ALIVE_SECONDS),
    ]


def components(data_dir: Path) -> list[Component]:
    # notify starts the local SMTP sink itself (MENTORING_DATA_DIR/mail keeps the .eml files).
    return [
        Component(
            "matching",
            "services/matching/entrypoints/app.py",
            uvicorn("services.matching.entrypoints.app:create_app", 8101),
            8101,
        ),
        Component(
            "activity",
            "services/activity/entrypoints/app.py",
            uvicorn("services.activity.entrypoints.app:create_app", 8102),
            8102,
        ),
        Component(
            "payments",
            "services/payments/entrypoints/app.py",
            uvicorn("services.payments.entrypoints.app:create_app", 8103),
            8103,
        ),
        Component(
            "notify",
            "services/notify/entrypoints/app.py",
            uvicorn("services.notify.entrypoints.app:create_app", 8104),
            8104,
            env={"MENTORING_MAIL_DIR": str(data_dir / "mail")},
        ),
        Component(
            "gateway", "services/gateway/app.py", uvicorn("services.gateway.app:create_app", 8000), 8000
        ),
    ]


def _ready(c: Component) -> str:
    if c.process is not None and c.process.poll() is not None:
        return f"exited ({c.process.returncode})"
    if c.ready_path is None:
        import socket

        with socket.socket() as s:
            s.settimeout(0.5)
            return "ready" if s.connect_ex(("127.0.0.1", c.port)) == 0 else "starting"
    try:
        r = httpx.get(c.url + c.ready_path, timeout=2.0)
        return "ready" if r.status_code == 200 else f"not ready: {r.text[:120]}"
    except httpx.HTTPError:
        return "starting"


def run_system(*, data_dir: Path, kafka_port: int, sample: bool, console: Console) -> int:
    started = time.monotonic()
    data_dir = data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    broker: LocalKafka | None = None
    bootstrap = os.environ.get("MENTORING_KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalKafka(port=kafka_port, controller_port=kafka_port + 1)
        console.print(f"starting Kafka on 127.0.0.1:{kafka_port} (logs in {broker.logs_dir})...")
        bootstrap = broker.start()
    created = asyncio.run(ensure_topics(bootstrap))
    console.print(f"Kafka ready at {bootstrap}; topics created now: {len(created)}")

    env = {
        **os.environ,
        "MENTORING_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MENTORING_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    parts = [c for c in components(data_dir) if c.present()]
    for c in parts:
        log = (logs / f"{c.name}.log").open("ab")
        c.process = subprocess.Popen(
            c.argv,
            cwd=REPO_ROOT,
            env={**env, **c.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + 120
        states: dict[str, str] = {}
        while not stop and time.monotonic() < deadline:
            states = {c.name: _ready(c) for c in parts}
            if all(s == "ready" for s in states.values()) or any(
                s.startswith("exited") for s in states.values()
            ):
                break
            time.sleep(0.5)
        table = Table("component", "address", "state", "log")
        for c in parts:
            table.add_row(c.name, c.url, states.get(c.name, "?"), str(logs / f"{c.name}.log"))
        console.print(table)
        if any(s != "ready" for s in states.values()):
            console.print("[red]not every component became ready; see the logs above[/red]")
            return 1
        console.print(f"ready in {time.monotonic() - started:.1f}s")
        gateway = next((c for c in parts if c.name == "gateway"), None)
        if gateway is not None:
            from deploy.sample_data import admin_token, load_sample

            token = admin_token(env)
            console.print(
                f"gateway:  {gateway.url}/api/v1\ndocs:     {gateway.url}/docs\nadmin token: {token}"
            )
            if sample:
                console.print(load_sample(gateway.url, token))
        console.print(f"mail sink: {data_dir / 'mail'}   (Ctrl-C stops everything)")
        while not stop:
            for c in parts:
                if c.process is not None and c.process.poll() is not None:
                    console.print(
                        f"[red]{c.name} exited with {c.process.returncode}; see {logs / (c.name + '.log')}[/red]"
                    )
                    stop = True
            time.sleep(0.5)
        return 0
    finally:
        console.print("stopping...")
        for c in reversed(parts):
            if c.process is not None and c.process.poll() is None:
                c.process.send_signal(signal.SIGTERM)
        for c in reversed(parts):
            if c.process is not None:
                try:
                    c.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    c.process.kill()
        if broker is not None:
            with contextlib.suppress(Exception):
                broker.stop()
        console.print("stopped")
