"""Gateway overhead, measured (not a test; not collected by pytest):

    uv run python -m services.gateway.tests.bench_gateway [--seconds 10] [--concurrency 32]
    uv run python -m services.gateway.tests.bench_gateway --cpu [--requests 300]

Starts fake matching and activity services and the gateway as separate uvicorn processes on
127.0.0.1, then drives the gateway with concurrent clients and prints requests per second and
latency percentiles for: GET /health (no auth), GET /api/v1/me (token check in the store),
GET /api/v1/partnerships/pa-1/meetings (token + role check asked of matching + forward) and
POST /api/v1/meetings (the same, a write).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.gateway.tests.fakes import activity, matching
from services.gateway.tests.support import free_port


def fake_matching() -> FastAPI:
    return matching().app()


def fake_activity() -> FastAPI:
    return activity().app()


def _spawn(target: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )


def _wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


async def _drive(client: httpx.AsyncClient, method: str, path: str, body: object, seconds: float,
                 concurrency: int) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = await client.request(method, path, json=body)
            latencies.append(time.perf_counter() - started)
            if r.status_code >= 400:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies, errors


async def _cases(gateway_url: str, token: str, seconds: float, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        print(f"{concurrency} concurrent clients, {seconds:.0f}s per case, gateway = 1 uvicorn worker")
        for method, path, body in [
            ("GET", "/health", None),
            ("GET", "/api/v1/me", None),
            ("GET", "/api/v1/partnerships/pa-1/meetings", None),
            ("POST", "/api/v1/meetings", {"partnership_id": "pa-1", "duration_minutes": 45}),
        ]:
            n, lat, errors = await _drive(client, method, path, body, seconds, concurrency)
            q = statistics.quantiles(lat, n=100)
            print(f"{method:4} {path:40} {n / seconds:8.0f} req/s  p50 {q[49] * 1000:6.1f} ms  "
                  f"p99 {q[98] * 1000:6.1f} ms  errors {errors}")


def main(seconds: float, concurrency: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    ports = {"matching": free_port(), "activity": free_port(), "gateway": free_port()}
    env = {**os.environ, "MENTORING_DATA_DIR": str(tmp), "PYTHONUNBUFFERED": "1",
           "MENTORING_GATEWAY_MATCHING_URL": f"http://127.0.0.1:{ports['matching']}",
           "MENTORING_GATEWAY_ACTIVITY_URL": f"http://127.0.0.1:{ports['activity']}"}
    procs = [
        _spawn("services.gateway.tests.bench_gateway:fake_matching", ports["matching"], env, tmp / "m.log"),
        _spawn("services.gateway.tests.bench_gateway:fake_activity", ports["activity"], env, tmp / "a.log"),
        _spawn("services.gateway.app:create_app", ports["gateway"], env, tmp / "g.log"),
    ]
    try:
        for name, port in ports.items():
            _wait(f"http://127.0.0.1:{port}/health" if name == "gateway" else f"http://127.0.0.1:{port}/programs")
        made = subprocess.run(
            [sys.executable, "-m", "services.gateway.cli", "create-user", "--name", "bench", "--role", "mentor",
             "--program", "prog-a", "--person", "mentor-1"], env=env, capture_output=True, text=True, check=True)
        token = made.stdout.strip().splitlines()[-1]
        asyncio.run(_cases(f"http://127.0.0.1:{ports['gateway']}", token, seconds, concurrency))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


async def _cpu_per_request(requests: int) -> None:
    """CPU time per request of gateway + in-process fakes (ASGI, no sockets): a figure that a busy
    machine distorts far less than wall-clock throughput."""
    from services.gateway.domain.access import Role
    from services.gateway.tests.fakes import world
    from services.gateway.tests.support import running_gateway

    fakes = world()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-cpu-"))
    async with running_gateway(tmp, {n: f.app() for n, f in fakes.items()}) as h:
        h.user("mentor", Role.MENTOR, ["prog-a"], "mentor-1")
        print(f"CPU per request, gateway and fake services in one process, {requests} sequential requests")
        for method, path, body in [
            ("GET", "/health", None),
            ("GET", "/api/v1/me", None),
            ("GET", "/api/v1/partnerships/pa-1/meetings", None),
            ("POST", "/api/v1/meetings", {"partnership_id": "pa-1", "duration_minutes": 45}),
            ("GET", "/api/v1/partnerships/pa-1/overview", None),
        ]:
            started_cpu, started = time.process_time(), time.perf_counter()
            for _ in range(requests):
                r = await h.client.request(method, path, json=body, headers=h.auth("mentor"))
                assert r.status_code < 400, r.text
            cpu = (time.process_time() - started_cpu) / requests
            wall = (time.perf_counter() - started) / requests
            print(f"{method:4} {path:40} cpu {cpu * 1000:6.2f} ms/request  wall {wall * 1000:6.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--cpu", action="store_true", help="CPU time per request, in one process")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    if args.cpu:
        asyncio.run(_cpu_per_request(args.requests))
    else:
        main(args.seconds, args.concurrency)
