"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) from Maven jars.

The embedded default and the test harness run Kafka this way on machines without Docker:
Java 17+ and Maven are the only prerequisites. Maven copies the broker's jars into a cache
folder once; the storage is formatted once per data folder; the broker listens on 127.0.0.1
only, with a bounded heap, and is ready only when a real client request succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"
KAFKA_VERSION = "4.1.1"
DEFAULT_HOME = Path(os.environ.get("MENTORING_KAFKA_HOME", REPO_ROOT / ".cache" / "kafka"))


class BrokerError(RuntimeError):
    """The local broker could not be prepared, started or reached."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


async def _answers(bootstrap: str, timeout_s: float) -> bool:
    """True when the broker serves a metadata request (a TCP connect is not enough)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # "connect failed" is the expected answer while it starts
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)


def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    return asyncio.run(_answers(bootstrap, timeout_s))


@dataclass
class LocalKafka:
    """One broker: its jars, its data folder, its process. Idempotent start and stop."""

    port: int = 9092
    controller_port: int = 9093
    home: Path = DEFAULT_HOME
    data_dir: Path | None = None
    heap: str = "768m"
    log: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs(self) -> Path:
        return self.home / f"libs-{KAFKA_VERSION}"

    @property
    def data(self) -> Path:
        return self.data_dir or (self.home / f"broker-{self.port}")

    @property
    def pid_file(self) -> Path:
        return self.data / "broker.pid"

    @property
    def logs_dir(self) -> Path:
        return self.data / "logs"

    def _say(self, message: str) -> None:
        self.log.append(message)

    # -- jars ---------------------------------------------------------------------------------
    def ensure_jars(self) -> Path:
        """Copy Kafka's runtime jars into the cache folder once (Maven does the resolving)."""
        marker = self.libs / ".complete"
        if marker.exists():
            return self.libs
        if shutil.which("mvn") is None:
            raise BrokerError("Maven (mvn) is not on PATH; install Maven and Java 17+.")
        if shutil.which("java") is None:
            raise BrokerError("Java is not on PATH; install Java 17+.")
        staging = self.libs.with_name(self.libs.name + f".tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        self._say("fetching Kafka jars with Maven (once)")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise BrokerError(f"Maven could not fetch the Kafka jars:\n{done.stdout}\n{done.stderr}")
        (staging / ".complete").write_text(KAFKA_VERSION)
        try:
            staging.rename(self.libs)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            shutil.rmtree(staging, ignore_errors=True)
        return self.libs

    # -- storage ------------------------------------------------------------------------------
    def _properties(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self.data / 'kraft'}",
                "num.partitions=3",
                "default.replication.factor=1",
                "min.insync.replicas=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=4",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Topics come from the catalog (shared.topics); a typo must not create one.
                "auto.create.topics.enable=false",
                "log.retention.hours=168",
                "",
            ]
        )

    def format_storage(self) -> None:
        """Write server.properties and format KRaft storage, once per data folder."""
        self.data.mkdir(parents=True, exist_ok=True)
        props = self.data / "server.properties"
        props.write_text(self._properties())
        if (self.data / "kraft" / "meta.properties").exists():
            return
        cluster_id = self._java("kafka.tools.StorageTool", "random-uuid").strip().splitlines()[-1]
        self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))

    def _java_base(self) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            f"{self.libs}/*",
        ]

    def _java(self, *args: str) -> str:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([*self._java_base(), *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"{' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    # -- process ------------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout_s: float = 90.0) -> str:
        """Start the broker unless it runs; return once a metadata request succeeds."""
        if self.is_running():
            self._say(f"Kafka already running on {self.bootstrap} (pid {self.pid()})")
            self.wait_ready(timeout_s)
            return self.bootstrap
        self.ensure_jars()
        self.format_storage()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        out = (self.logs_dir / "stdout.log").open("ab")
        proc = subprocess.Popen(
            [*self._java_base(), "kafka.Kafka", str(self.data / "server.properties")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.pid_file.write_text(str(proc.pid))
        self._say(f"Kafka starting on {self.bootstrap} (pid {proc.pid})")
        self.wait_ready(timeout_s)
        self._say(f"Kafka ready on {self.bootstrap}")
        return self.bootstrap

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                raise BrokerError(f"Kafka exited while starting; see {self.logs_dir}:\n{self._tail()}")
            if broker_answers(self.bootstrap, timeout_s=2.0):
                return
            time.sleep(0.3)
        raise BrokerError(f"Kafka did not answer within {timeout_s:.0f}s:\n{self._tail()}")

    def _tail(self, lines: int = 30) -> str:
        out = ""
        for name in ("stdout.log", "server.log"):
            path = self.logs_dir / name
            if path.exists():
                out += f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return out

    def stop(self, timeout_s: float = 30.0, kill: bool = False) -> None:
        """Stop the broker (SIGTERM, or SIGKILL when asked or when it does not stop in time)."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self._say("Kafka is not running")
            return
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        self._say(f"Kafka stopped (pid {pid})")

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
