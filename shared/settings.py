"""Settings for every service process, from the environment (prefix MENTORING_) or a .env file."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    consumer_max_records: int = 500
    # Prepended to every topic name: lets tests (or several environments) share one broker.
    topic_prefix: str = ""
    log_level: str = "INFO"
    # Fault injection for the fault suite only: the process kills itself (SIGKILL) right after
    # its Nth committed consumer batch, before the offset commit. 0 = never.
    fault_crash_after_commits: int = 0
    # ... or right after the broker acknowledged the relay's Nth batch, before the rows are marked
    # sent (the next relay publishes them again). 0 = never.
    fault_crash_after_published: int = 0

    def store_url(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"
