"""The gateway under load, on the real system (embedded default).

Every service and the gateway run as uvicorn processes with their SQLite stores on a real local
Kafka broker (tests.e2e.harness.running_platform, the end-to-end suite's way to start them); a
program with P partnerships is set up through the gateway like staff would (program, mentors and
mentees from CSV, a published matching, a user and a token per mentor, a coordinator). Then, from
this process, on 127.0.0.1:

1. open loop, meetings: mentors log meetings (POST /api/v1/meetings, each with their own token) at
   a fixed rate (200/s by default); each request's latency counts from the moment it was due, so a
   slow answer cannot hide the requests queued behind it.
2. open loop, mixed: the same meetings plus staff reading partnership overviews
   (GET /api/v1/partnerships/{id}/overview, 8 calls to matching, activity and payments each).
3. closed loop: C clients sending back to back, for the most each kind sustains.

Before each open-loop phase every mentor's token and partnership is used once at 100/s, not
measured, so that the phase starts as warm as continuous traffic keeps the system.

Printed: a table (requests/s achieved, p50/p95/p99/max latency, errors per request kind); the
CPU each process spent per answered request (the broker too when this bench started it), less
what it spends idle; the cores each process uses idle, measured after the load; and last, the
figures as one JSON object. Goal: p99 < 50 ms for logging a meeting at 200 requests/s.

    uv run python -m bench.gateway_bench --quick|--full [--bootstrap HOST:PORT] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.pipeline_bench import BROKER_PIDS, broker_for
from services.gateway.adapters.http11 import Http11Transport
from tests.e2e.harness import Gateway, Platform, running_platform, wait_for
from tests.mail import smtp_server

SERVICES = ("matching", "activity", "payments", "notify")
PROGRAM_ID = "bench-gateway"
# The services' clocks: the matching is published on MATCH_AT; the load runs on NOW, so meetings
# can be logged at any minute in between (distinct start times: no duplicate refusals).
MATCH_AT = datetime(2026, 10, 5, 15, 0, tzinfo=UTC)
NOW = datetime(2026, 10, 26, 15, 0, tzinfo=UTC)
FIRST_MEETING = datetime(2026, 10, 6, 0, 0, tzinfo=UTC)
POLICY = {
    "timezone": "America/Denver",
    "cadence": {"intentional_meetings_per_month": 2, "hours_per_school_year": "10"},
    "matching": {"metamentor_caseload_min": 0, "metamentor_caseload_max": 40, "default_capacity": 1},
}
# The embedded default's scheduler, not the end-to-end suite's fast one.
EMBEDDED = {name: {"MENTORING_SCHEDULER_INTERVAL_SECONDS": "30"} for name in (*SERVICES, "gateway")}


# -- the system and its program ---------------------------------------------------------------------
@contextlib.contextmanager
def real_system(bootstrap: str | None, tag: str = "bench") -> Iterator[Platform]:
    """The whole platform as processes on a real broker (a fresh local one unless `bootstrap`)."""
    with (broker_for(bootstrap) as servers, smtp_server() as smtp,
          tempfile.TemporaryDirectory(prefix="bench-platform-") as tmp,
          running_platform(servers, Path(tmp), smtp, tag=tag, env=EMBEDDED) as platform):
        yield platform


@dataclass
class Pair:
    partnership_id: str
    mentor_token: str
    logged: int = 0  # meetings logged so far (each at its own minute)

    def next_meeting(self, minutes: int = 60) -> dict[str, Any]:
        started = FIRST_MEETING + timedelta(minutes=self.logged)
        self.logged += 1
        return {"partnership_id": self.partnership_id, "started_at": started.isoformat(),
                "duration_minutes": minutes, "mode": "video", "intentional": True,
                "topics": ["classroom management"]}


@dataclass
class Program:
    program_id: str
    pairs: list[Pair]
    coordinator_token: str
    setup_s: float


def set_clock(admin: Gateway, now: datetime) -> None:
    answers = admin.post("/ops/clock", {"now": now.isoformat()})
    for service in SERVICES:
        assert str(answers[service].get("now", "")).startswith(now.isoformat()[:16]), answers


def people_csv(kind: str, n: int) -> str:
    if kind == "mentors":
        head = "name,email,grade_band,subjects,role,site,years_in_position,training_completed,capacity\n"
        rows = [f"Mentor {i},mentor{i}@bench.example.org,6-8,math,teacher,Site {i % 7},5,yes,1" for i in range(n)]
    elif kind == "mentees":
        head = "name,email,grade_band,subjects,role,site\n"
        rows = [f"Mentee {i},mentee{i}@bench.example.org,6-8,math,teacher,Site {i % 7}" for i in range(n)]
    else:
        head = "name,email\n"
        rows = [f"Meta {i},meta{i}@bench.example.org" for i in range(n)]
    return head + "\n".join(rows) + "\n"


def prepare_program(platform: Platform, n: int, program_id: str = PROGRAM_ID) -> Program:
    """A program with n partnerships, a mentor user and token for each, a coordinator; the
    services' clocks on NOW; activity knowing every partnership."""
    started = time.monotonic()
    admin = platform.client(platform.admin_token)
    set_clock(admin, MATCH_AT)
    admin.post("/programs", {"program_id": program_id, "name": "Gateway bench", "policy": POLICY}, expect=201)
    ids: dict[str, list[str]] = {}
    for kind, count in (("mentors", n), ("mentees", n), ("metamentors", max(1, -(-n // 40)))):
        done = admin.call("POST", f"/programs/{program_id}/{kind}/import", 201, content=people_csv(kind, count),
                          headers={"Content-Type": "text/csv"}).json()
        assert done["imported"] == count, done
        ids[kind] = done["person_ids"]
    proposal = admin.post(f"/programs/{program_id}/proposals", {}, expect=201)
    published = admin.post(f"/proposals/{proposal['proposal_id']}/publish", {})
    partnerships = published["partnerships"]
    assert len(partnerships) == n, f"{len(partnerships)} of {n} matched"
    coordinator = admin.post("/users", {"name": "Bench Coordinator", "role": "coordinator",
                                        "program_ids": [program_id]}, expect=201)
    coordinator_token = admin.post(f"/users/{coordinator['id']}/tokens", {"label": "bench"}, expect=201)["token"]
    pairs = []
    for i, p in enumerate(partnerships):
        user = admin.post("/users", {"name": f"Mentor {i}", "role": "mentor", "program_ids": [program_id],
                                     "person_id": p["mentor_id"]}, expect=201)
        token = admin.post(f"/users/{user['id']}/tokens", {"label": "bench"}, expect=201)["token"]
        pairs.append(Pair(p["partnership_id"], token))
    set_clock(admin, NOW)

    def all_known() -> bool:
        found = admin.get(f"/programs/{program_id}/compliance")
        return len(found["partnerships"]) == n

    wait_for(all_known, f"activity knows the {n} partnerships", timeout_s=120, every_s=0.5)
    admin.close()
    return Program(program_id, pairs, coordinator_token, time.monotonic() - started)


# -- load ----------------------------------------------------------------------------------------
@dataclass
class Kind:
    """The outcome of one kind of request in one phase."""

    name: str
    expect: int
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    first_error: dict[str, str] = field(default_factory=dict)
    shed: int = 0  # open loop: due while MAX_IN_FLIGHT were unanswered, so not sent

    def record(self, latency: float, status: int | None, body: str = "") -> None:
        self.latencies.append(latency)
        if status != self.expect:
            key = str(status) if status is not None else "no answer"
            self.errors[key] = self.errors.get(key, 0) + 1
            self.first_error.setdefault(key, body[:300])

    def summary(self, seconds: float) -> dict[str, Any]:
        lat = sorted(self.latencies)
        n = len(lat)
        ok = n - sum(self.errors.values())

        def pct(q: float) -> float | None:
            return round(lat[min(n - 1, int(q * n))] * 1000, 1) if n else None

        return {
            "requests": n, "ok_per_s": round(ok / seconds, 1) if seconds else None,
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 1) if n else None,
            "mean_ms": round(statistics.fmean(lat) * 1000, 1) if n else None,
            "errors": sum(self.errors.values()), "errors_by_status": self.errors, "shed": self.shed,
            **({"first_error": self.first_error} if self.errors else {}),
        }


Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
MAX_IN_FLIGHT = 256
TIMEOUT_S = 10.0


def meeting_requests(program: Program) -> Iterator[Request]:
    """Each mentor in turn logs a meeting of their partnership, with their own token."""
    i = 0
    while True:
        pair = program.pairs[i % len(program.pairs)]
        i += 1
        body = pair.next_meeting()
        headers = {"Authorization": f"Bearer {pair.mentor_token}"}

        def send(client: httpx.AsyncClient, body: dict[str, Any] = body,
                 headers: dict[str, str] = headers) -> Awaitable[httpx.Response]:
            return client.post("/meetings", json=body, headers=headers)

        yield send


def overview_requests(program: Program) -> Iterator[Request]:
    """The coordinator reads the overview of one partnership after another."""
    i = 0
    headers = {"Authorization": f"Bearer {program.coordinator_token}"}
    while True:
        pid = program.pairs[(i * 7) % len(program.pairs)].partnership_id
        i += 1

        def send(client: httpx.AsyncClient, pid: str = pid) -> Awaitable[httpx.Response]:
            return client.get(f"/partnerships/{pid}/overview", headers=headers)

        yield send


async def _one(client: httpx.AsyncClient, request: Request, kind: Kind, due: float) -> None:
    try:
        response = await request(client)
        kind.record(time.perf_counter() - due, response.status_code,
                    response.text if response.status_code != kind.expect else "")
    except httpx.HTTPError as exc:
        kind.record(time.perf_counter() - due, None, repr(exc))


async def open_loop(client: httpx.AsyncClient, streams: list[tuple[Kind, Iterator[Request], float]],
                    seconds: float, stop: asyncio.Event | None = None) -> float:
    """Send each stream's requests at its rate (evenly spaced) for `seconds`; latency counts from
    the moment each was due, so a slow answer cannot hide the requests queued behind it. A request
    due while MAX_IN_FLIGHT are unanswered is not sent (counted as shed): an overloaded system
    shows as shed requests and long latencies, not as a run that never ends. `stop` ends it
    early. Returns the wall time until the last answer."""
    start = time.perf_counter() + 0.05
    tasks: set[asyncio.Task[None]] = set()

    async def pace(kind: Kind, requests: Iterator[Request], rate: float) -> None:
        for k in range(int(seconds * rate)):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if stop is not None and stop.is_set():
                return
            request = next(requests)
            if len(tasks) >= MAX_IN_FLIGHT:
                kind.shed += 1
                continue
            task = asyncio.create_task(_one(client, request, kind, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    await asyncio.gather(*(pace(kind, requests, rate) for kind, requests, rate in streams))
    while tasks:
        await asyncio.gather(*list(tasks))
    return time.perf_counter() - start


async def closed_loop(client: httpx.AsyncClient, kind: Kind, requests: Iterator[Request], clients: int,
                      seconds: float) -> float:
    """`clients` users each sending their next request as soon as the last is answered."""
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await _one(client, next(requests), kind, time.perf_counter())

    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started


def client_for(url: str, connections: int = MAX_IN_FLIGHT) -> httpx.AsyncClient:
    """The load generator's client. It shares the machine with what it measures, so it must be
    cheap: httpx's default pool (httpcore 1.0) scans every connection on each request (quadratic
    in the connections, encode/httpx#3215); at 256 in flight it took 0.55-0.78 of a core for ~100
    requests/s, more than the gateway and activity together. The gateway's lean transport costs a
    fraction of that."""
    return httpx.AsyncClient(
        base_url=url + "/api/v1", timeout=httpx.Timeout(TIMEOUT_S),
        transport=Http11Transport(max_connections=connections),
    )


def backlog(platform: Platform) -> int:
    """Events not yet through: outbox rows waiting plus consumer lag, over every service."""
    total = 0
    for name in SERVICES:
        text = httpx.get(platform.system.url(name) + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(("outbox_pending ", "consumer_lag{")):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


async def drained(platform: Platform, timeout_s: float = 120.0) -> float:
    """Wait until the events of the last phase are through (lag is read from the broker at most
    every 5 s, so this takes at least that); returns the seconds waited."""
    started = time.monotonic()
    await asyncio.sleep(1.0)
    zero_since: float | None = None
    while time.monotonic() - started < timeout_s:
        left = await asyncio.to_thread(backlog, platform)
        if left == 0:
            zero_since = zero_since or time.monotonic()
            if time.monotonic() - zero_since >= 5.5:
                break
        else:
            zero_since = None
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def process_cpu(platform: Platform) -> dict[str, float]:
    """CPU seconds (user + system) each service process, and the broker when this bench started
    it, has used so far (Linux /proc)."""
    pids = {name: proc.proc.pid for name, proc in platform.system.services.items() if proc.proc is not None}
    if (broker := BROKER_PIDS.get(platform.system.bootstrap)) is not None:
        pids[KAFKA] = broker
    found: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


@dataclass
class Phase:
    name: str
    kinds: list[Kind]
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU (the load generator), for its share of the machine
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    drain_s: float = 0.0  # afterwards, until the pipeline had no backlog
    # CPU ms each service used per answered request, the pipeline's work after the phase included
    # (when drained), less what it uses idle.
    cpu_ms: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [{"phase": self.name, "kind": k.name, **k.summary(self.wall_s),
                 "generator_cpu": round(self.cpu_s / self.wall_s, 2) if self.wall_s else None,
                 "load_avg_1m": round(self.load_avg[0], 2), "drain_s": round(self.drain_s, 1),
                 "service_cpu_ms_per_request": self.cpu_ms}
                for k in self.kinds]


async def measured(phase: Phase, run: Awaitable[float]) -> Phase:
    cpu = time.process_time()
    phase.wall_s = await run
    phase.cpu_s = time.process_time() - cpu
    phase.load_avg = os.getloadavg()
    return phase


KAFKA = "kafka"


async def idle_cpu(platform: Platform, seconds: float = 5.0) -> dict[str, float]:
    """CPU seconds per second each service (and the broker) uses with nothing to do: polling,
    consumers' fetches, timers."""
    before = process_cpu(platform)
    await asyncio.sleep(seconds)
    after = process_cpu(platform)
    return {name: (after[name] - before[name]) / seconds for name in before if name in after}


@dataclass
class Plan:
    seconds: float  # each open-loop phase
    closed_seconds: float
    clients: int
    rate: float  # the goal's rate of meetings
    ladder: tuple[float, ...]  # open-loop rates as fractions of the closed-loop maximum
    overview_share: float  # overviews per meeting in the mixed phase


async def load(platform: Platform, program: Program, plan: Plan) -> tuple[list[Phase], dict[str, float]]:
    meetings, overviews = meeting_requests(program), overview_requests(program)
    phases: list[Phase] = []
    used: list[tuple[dict[str, float], float, int]] = []  # per phase: CPU seconds by process, seconds, answered

    async def phase(name: str, kinds: list[Kind], run: Awaitable[float], drain: bool = True) -> Phase:
        cpu, started = process_cpu(platform), time.monotonic()
        done = await measured(Phase(name, kinds), run)
        if drain:  # the next phase starts without the last one's backlog
            done.drain_s = await drained(platform)
        after, seconds = process_cpu(platform), time.monotonic() - started
        answered = sum(len(k.latencies) - sum(k.errors.values()) for k in kinds) or 1
        used.append(({name: after[name] - cpu[name] for name in after if name in cpu}, seconds, answered))
        phases.append(done)
        print(table(done.rows(), head=not phases[:-1]), flush=True)
        return done

    async def warm(streams: list[tuple[Iterator[Request], int]]) -> None:
        """Each mentor's token and partnership used once more, at a modest rate, not measured: the
        gateway's caches (10 s) and the connections are as warm as under continuous traffic, not
        all cold at once after the pause between phases (that burst was most of the 99th
        percentile of every open-loop phase: p50 over 100 ms in the first second, then ~20 ms)."""
        n = len(program.pairs)
        await open_loop(client, [(Kind("warmup", expect), requests, 100.0) for requests, expect in streams], n / 100.0)

    async with client_for(platform.gateway_url) as client:
        await open_loop(client, [(Kind("warmup", 201), meetings, 20.0)], 3.0)  # connections, caches
        k = Kind("log meeting", 201)
        closed = await phase(f"closed x{plan.clients}", [k],
                             closed_loop(client, k, meetings, plan.clients, plan.closed_seconds))
        most = max(1.0, (len(k.latencies) - sum(k.errors.values())) / closed.wall_s)
        for share in plan.ladder:
            k = Kind("log meeting", 201)
            await warm([(meetings, 201)])
            await phase(f"open {most * share:.0f}/s", [k], open_loop(client, [(k, meetings, most * share)],
                                                                      plan.seconds))
        k = Kind("log meeting", 201)
        await warm([(meetings, 201)])
        await phase(f"open {plan.rate:g}/s (goal)", [k], open_loop(client, [(k, meetings, plan.rate)], plan.seconds))
        km, ko = Kind("log meeting", 201), Kind("overview", 200)
        rate = most / 2
        await warm([(meetings, 201), (overviews, 200)])
        await phase(f"open {rate:.0f}+{rate * plan.overview_share:.0f}/s", [km, ko], open_loop(
            client, [(km, meetings, rate), (ko, overviews, rate * plan.overview_share)], plan.seconds))
        k = Kind("overview", 200)
        await phase(f"closed x{plan.clients}", [k], closed_loop(client, k, overviews, plan.clients,
                                                                  plan.closed_seconds), drain=False)
    # Idle at the end, once every process is warm: right after it starts, the broker's JIT
    # compiler alone takes a third of a core.
    await drained(platform)
    idle = await idle_cpu(platform)
    for done, (cpu, seconds, answered) in zip(phases, used, strict=True):
        done.cpu_ms = {name: round(max(0.0, spent - idle.get(name, 0.0) * seconds) / answered * 1000, 2)
                       for name, spent in cpu.items()}
        services = round(sum(v for name, v in done.cpu_ms.items() if name != KAFKA), 2)
        if KAFKA in done.cpu_ms:
            done.cpu_ms["with_kafka"] = round(services + done.cpu_ms[KAFKA], 2)
        done.cpu_ms["total"] = services
    return phases, idle


def table(rows: list[dict[str, Any]], head: bool = True) -> str:
    title = (f"{'phase':<20} {'kind':<12} {'ok/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>8} {'max ms':>8} "
             f"{'errors':>6} {'shed':>5} {'gen cpu':>7} {'load':>5} {'drain s':>7}")
    lines = [title, "-" * len(title)] if head else []
    for r in rows:
        lines.append(f"{r['phase']:<20} {r['kind']:<12} {r['ok_per_s']!s:>6} {r['p50_ms']!s:>7} {r['p95_ms']!s:>7} "
                     f"{r['p99_ms']!s:>8} {r['max_ms']!s:>8} {r['errors']:>6} {r['shed']:>5} "
                     f"{r['generator_cpu']!s:>7} {r['load_avg_1m']!s:>5} {r['drain_s']!s:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--full", action="store_true")
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: a fresh local one)")
    parser.add_argument("--rate", type=float, default=200.0, help="meetings per second of the goal")
    parser.add_argument("--seconds", type=float, default=None, help="length of each open-loop phase")
    parser.add_argument("--clients", type=int, default=16, help="closed-loop concurrency")
    parser.add_argument("--partnerships", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.partnerships or (400 if args.full else 150)
    plan = Plan(seconds=args.seconds or (20.0 if args.full else 10.0), closed_seconds=15.0 if args.full else 8.0,
                clients=args.clients, rate=args.rate, ladder=(0.25, 0.5, 0.75, 1.0) if args.full else (0.5,),
                overview_share=0.2)
    started = time.monotonic()
    with real_system(args.bootstrap) as platform:
        up_s = time.monotonic() - started
        program = prepare_program(platform, n)
        print(f"system up in {up_s:.1f}s; {n} partnerships set up through the gateway in {program.setup_s:.1f}s",
              flush=True)
        phases, idle = asyncio.run(load(platform, program, plan))
    rows = [row for phase in phases for row in phase.rows()]
    print()
    print(table(rows))
    print("\nCPU ms per answered request, by process (work caused after the phase included when drained):")
    names = list(rows[0]["service_cpu_ms_per_request"])
    print(f"{'phase':<20} {'kind':<12} " + " ".join(f"{n:>9}" for n in names))
    for r in rows:
        print(f"{r['phase']:<20} {r['kind']:<12} " + " ".join(
            f"{r['service_cpu_ms_per_request'].get(n, '')!s:>9}" for n in names))
    idle_cores = {name: round(cores, 3) for name, cores in idle.items()}
    idle_cores["all"] = round(sum(idle.values()), 3)
    print("\nCPU used idle, after the load (cores): " + ", ".join(f"{n} {c}" for n, c in idle_cores.items()))
    meetings = [r for r in rows if r["kind"] == "log meeting"]
    goal = next(r for r in meetings if r["phase"].endswith("(goal)"))
    within = [r["ok_per_s"] for r in meetings if r["phase"].startswith("open") and r["errors"] == 0
              and r["shed"] == 0 and r["p99_ms"] is not None and r["p99_ms"] < 50]
    result = {
        "partnerships": n, "open_loop_seconds": plan.seconds, "closed_loop_clients": plan.clients,
        "goal": f"p99 < 50 ms logging a meeting at {args.rate:g}/s",
        "meeting_p99_ms_at_goal_rate": goal["p99_ms"],
        "meetings_ok_per_s_at_goal_rate": goal["ok_per_s"],
        "goal_met": goal["p99_ms"] is not None and goal["p99_ms"] < 50 and goal["errors"] == 0
        and goal["shed"] == 0 and args.rate >= 200,
        "max_closed_loop_meetings_per_s": meetings[0]["ok_per_s"],
        "max_closed_loop_overviews_per_s": rows[-1]["ok_per_s"],
        "highest_open_rate_with_p99_under_50ms": max(within) if within else None,
        "idle_cores": idle_cores,
        "phases": rows,
        "system_up_s": round(up_s, 1), "setup_s": round(program.setup_s, 1),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
