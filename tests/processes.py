"""Services as real processes (uvicorn), for end-to-end and fault tests.

Each process gets its own port on 127.0.0.1, its own SQLite store under the test's data folder,
the test broker, and a topic prefix unique to the test, so tests never see each other's events.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.kafka.local import REPO_ROOT, free_port
from deploy.runner import uvicorn

TARGETS = {
    "matching": "services.matching.entrypoints.app:create_app",
    "activity": "services.activity.entrypoints.app:create_app",
    "payments": "services.payments.entrypoints.app:create_app",
    "notify": "services.notify.entrypoints.app:create_app",
    "gateway": "services.gateway.app:create_app",
}


@dataclass
class ServiceProcess:
    name: str
    target: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            uvicorn(self.target, self.port),
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout_s: float = 60.0, path: str = "/ready") -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                r = httpx.get(self.url + path, timeout=2.0)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {timeout_s}s: {last}\n{self.log_tail()}")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commits — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class System:
    """A set of service processes sharing a broker, a topic prefix and a data folder."""

    bootstrap: str
    data_dir: Path
    prefix: str
    extra_env: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def env_for(self, name: str) -> dict[str, str]:
        env = {
            **os.environ,
            "MENTORING_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "MENTORING_TOPIC_PREFIX": self.prefix,
            "MENTORING_DATA_DIR": str(self.data_dir / name),
            "MENTORING_ALLOW_CLOCK_CONTROL": "true",
            "MENTORING_SCHEDULER_INTERVAL_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.extra_env)
        return env

    def add(self, name: str, *, instance: str = "", env: dict[str, str] | None = None) -> ServiceProcess:
        key = name + (f"#{instance}" if instance else "")
        proc = ServiceProcess(
            name=key,
            target=TARGETS[name],
            env={**self.env_for(name), **(env or {})},
            log_path=self.data_dir / f"{key}.log",
        )
        self.services[key] = proc
        return proc

    def start(self, *names: str, timeout_s: float = 90.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for n in names:
            self.services[n].start()
        for n in names:
            self.services[n].wait_ready(timeout_s)

    def stop(self) -> None:
        for proc in reversed(list(self.services.values())):
            proc.stop()

    def url(self, name: str) -> str:
        return self.services[name].url


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0
