"""Settings for every service process, from the environment (prefix MENTORING_) or a .env file."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# How long a service (and the gateway) keeps an idle HTTP connection open (uvicorn
# --timeout-keep-alive, in deploy/runner.py and compose.yaml). The gateway reuses a connection to a
# service only while it has been idle for less (Http11Transport), so the service never closes one
# the gateway is about to send on. uvicorn's own 5 s made every connection that sat out a pause of
# a few seconds be opened again, all at once when traffic resumed.
HTTP_KEEP_ALIVE_SECONDS = 75


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MENTORING_", env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Empty: a SQLite file per service under data_dir. Or a PostgreSQL URL.
    database_url: str = ""
    data_dir: Path = Path(".data")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Start the service's clock shifted by this many seconds (demos, end-to-end tests).
    clock_offset_seconds: float = 0.0
    # Allow POST /admin/clock to move the clock (end-to-end tests only; never in production).
    allow_clock_control: bool = False
    # How often schedulers (month close, pay day, digests) look at the clock.
    scheduler_interval_seconds: float = 30.0
    # Records per consumer batch (one transaction, one offset commit). It only matters when a
    # backlog waits (a restart, a replay): a trickle arrives a few records at a time anyway.
    # Larger batches judge a partnership once for several of its meetings: activity's consumer
    # on a backlog of 20,000 meetings, 500 -> 2000: 3,057 -> 4,042 meetings/s
    # (bench.pipeline_bench --quick). The cost: a SQLite writer holds the store that much longer.
    consumer_max_records: int = 2000
    # The broker answers a consumer's fetch once this many bytes are waiting, or after the wait:
    # under a steady trickle, records are applied a few at a time (one transaction, one offset
    # commit) instead of one by one, for at most the wait's delay per hop. 32 KiB: CPU per logged
    # meeting, all services, 5.1 -> 4.7 ms closed loop and 6.5 -> 6.0 ms at 200/s
    # (bench.gateway_bench). 1 = answer at once.
    consumer_fetch_min_bytes: int = 32768
    # With nothing to read, every consumer fetches again after the wait: at 25 ms the idle
    # embedded default (five services, one broker) used 0.4-0.7 of a core, half of it or more in
    # the broker; at 100 ms, 0.14-0.18 (per-process CPU of `mentoring run`, idle). The cost: up to the
    # wait per hop when records trickle; a meeting's compliance is visible through the gateway
    # after p50 88 / p99 113-257 ms against 47 / 101-145 ms (bench.latency_bench --quick).
    consumer_fetch_max_wait_ms: int = 100
    # Prepended to every topic name: lets tests (or several environments) share one broker.
    topic_prefix: str = ""
    log_level: str = "INFO"
    # How long a thread holding the GIL runs before one waiting for it may take it
    # (sys.setswitchinterval). A service's HTTP threads, consumer and event loop share one GIL;
    # with Python's 5 ms, every handoff (a request to its thread and back, a commit waking the
    # relay) could wait 5 ms behind a busy thread. 1 ms: p99 of logging a meeting at 200/s
    # 411-657 -> 168-517 ms, throughput and CPU unchanged (bench.gateway_bench, 2 runs each).
    gil_switch_interval_ms: float = 1.0
    # Fault injection for the fault suite only: the process kills itself (SIGKILL) right after
    # its Nth committed consumer batch, before the offset commit. 0 = never.
    fault_crash_after_commits: int = 0
    # ... or right after the broker acknowledged the relay's Nth batch, before the rows are marked
    # sent (the next relay publishes them again). 0 = never.
    fault_crash_after_published: int = 0

    def apply_to_process(self) -> None:
        """Process-wide settings, applied when a service (or the gateway) starts."""
        sys.setswitchinterval(self.gil_switch_interval_ms / 1000)
        # What exists by now (modules, the app, its models and tables) lives as long as the
        # process: moved out of the collector's generations, a full collection no longer walks
        # it. It did, every few seconds under load: 70-160 ms with the GIL held, every request of
        # the process stalled; now 5-25 ms (gc.callbacks in each service under
        # bench.gateway_bench). Once per process: a second service in it (tests) adds nothing.
        if not gc.get_freeze_count():
            gc.collect()
            gc.freeze()

    def store_url(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"
