"""End-to-end latency on the real system: from a meeting accepted by the gateway (201) to its
effect visible through the gateway.

The effect: the partnership's compliance (GET /api/v1/partnerships/{id}/compliance, read with the
mentor's own token) counts the meeting's hour in its `hours_per_school_year` finding. Activity
builds that view from its own MeetingLogged events read back from Kafka, so the path is: the
request's transaction with its outbox rows -> the relay -> the broker -> activity's consumer
(inbox, meeting view, compliance re-evaluation) -> the next read through the gateway.

Each sample logs one 60-minute meeting and polls the compliance every few milliseconds until the
hours have grown by one. Samples run one after another on an otherwise idle system, and then
(unless --no-load) again while a background of meetings is logged at a fixed rate by other
mentors. Printed: a table and, last, the figures as one JSON object. Goal: p99 < 1 s.

    uv run python -m bench.latency_bench --quick|--full [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from bench.gateway_bench import (
    Kind,
    Pair,
    Program,
    client_for,
    meeting_requests,
    open_loop,
    prepare_program,
    real_system,
)

POLL_S = 0.005
TIMEOUT_S = 15.0


@dataclass
class Samples:
    name: str
    accepted_to_visible: list[float] = field(default_factory=list)
    sent_to_visible: list[float] = field(default_factory=list)
    accept: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            s = sorted(values)
            return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1) if s else None

        v = self.accepted_to_visible
        return {
            "phase": self.name, "samples": len(v),
            "p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95), "p99_ms": pct(v, 0.99), "max_ms": pct(v, 1.0),
            "sent_to_visible_p50_ms": pct(self.sent_to_visible, 0.5),
            "sent_to_visible_p99_ms": pct(self.sent_to_visible, 0.99),
            "post_p50_ms": pct(self.accept, 0.5), "post_p99_ms": pct(self.accept, 0.99),
            "polls_p50": sorted(self.polls)[len(self.polls) // 2] if self.polls else None,
            "failures": sum(self.failures.values()), "failures_by_reason": self.failures,
        }


def hours_counted(compliance: dict[str, Any]) -> Decimal | None:
    for finding in compliance.get("findings", []):
        if finding.get("rule") == "hours_per_school_year":
            return Decimal(str(finding["actual"]))
    return None


async def current_hours(client: httpx.AsyncClient, pair: Pair, headers: dict[str, str]) -> Decimal:
    r = await client.get(f"/partnerships/{pair.partnership_id}/compliance", headers=headers)
    r.raise_for_status()
    hours = hours_counted(r.json())
    if hours is None:
        raise RuntimeError(f"no hours_per_school_year finding: {r.text[:500]}")
    return hours


async def sample(client: httpx.AsyncClient, pair: Pair, into: Samples) -> None:
    headers = {"Authorization": f"Bearer {pair.mentor_token}"}
    before = await current_hours(client, pair, headers)
    sent = time.perf_counter()
    r = await client.post("/meetings", json=pair.next_meeting(minutes=60), headers=headers)
    accepted = time.perf_counter()
    if r.status_code != 201:
        into.fail(f"POST {r.status_code}")
        return
    into.accept.append(accepted - sent)
    polls = 0
    while time.perf_counter() - accepted < TIMEOUT_S:
        polls += 1
        got = await client.get(f"/partnerships/{pair.partnership_id}/compliance", headers=headers)
        if got.status_code == 200 and (hours_counted(got.json()) or 0) >= before + 1:
            seen = time.perf_counter()
            into.accepted_to_visible.append(seen - accepted)
            into.sent_to_visible.append(seen - sent)
            into.polls.append(polls)
            return
        await asyncio.sleep(POLL_S)
    into.fail(f"not visible within {TIMEOUT_S:g}s")


async def run(program: Program, url: str, samples: int, background_rate: float, probes: int) -> list[Samples]:
    # The first `probes` partnerships are probed; the others carry the background load.
    probed, others = program.pairs[:probes], program.pairs[probes:]
    results = []
    async with client_for(url, connections=64) as client:
        idle = Samples("idle")
        for i in range(samples):
            await sample(client, probed[i % len(probed)], idle)
        results.append(idle)
        if background_rate > 0 and others:
            loaded = Samples(f"background {background_rate:g} meetings/s")
            background = Kind("background", 201)
            stream = meeting_requests(Program(program.program_id, others, program.coordinator_token, 0))
            stop = asyncio.Event()
            # Long enough for the samples (stopped when they are done).
            task = asyncio.create_task(open_loop(client, [(background, stream, background_rate)], 3600, stop))
            await asyncio.sleep(2.0)  # let the background reach its pace
            for i in range(samples):
                await sample(client, probed[i % len(probed)], loaded)
            stop.set()
            await task
            loaded.failures.update({f"background {k}": v for k, v in background.errors.items()})
            results.append(loaded)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--full", action="store_true")
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: a fresh local one)")
    parser.add_argument("--samples", type=int, default=None, help="meetings followed per phase")
    parser.add_argument("--background-rate", type=float, default=20.0, help="meetings/s beside the samples")
    parser.add_argument("--no-load", action="store_true", help="only the idle phase")
    args = parser.parse_args(argv)
    samples = args.samples or (300 if args.full else 60)
    probes, n = 10, 60 if args.full else 30
    started = time.monotonic()
    with real_system(args.bootstrap, tag="lat") as platform:
        up_s = time.monotonic() - started
        program = prepare_program(platform, n, program_id="bench-latency")
        print(f"system up in {up_s:.1f}s; {n} partnerships set up in {program.setup_s:.1f}s", flush=True)
        results = asyncio.run(run(program, platform.gateway_url, samples,
                                  0.0 if args.no_load else args.background_rate, probes))
    rows = [r.summary() for r in results]
    head = (f"{'phase':<26} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
            f"{'POST p50':>8} {'fail':>4}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['phase']:<26} {r['samples']:>4} {r['p50_ms']!s:>7} {r['p95_ms']!s:>7} {r['p99_ms']!s:>7} "
              f"{r['max_ms']!s:>7} {r['post_p50_ms']!s:>8} {r['failures']:>4}")
    idle = rows[0]
    result = {
        "samples_per_phase": samples, "poll_interval_ms": POLL_S * 1000,
        "measured_from": "the 201 of POST /api/v1/meetings",
        "visible_as": "GET /api/v1/partnerships/{id}/compliance counts the meeting's hour",
        "goal": "p99 < 1 s",
        "idle_p50_ms": idle["p50_ms"], "idle_p99_ms": idle["p99_ms"],
        "goal_met": all(r["p99_ms"] is not None and r["p99_ms"] < 1000 and r["failures"] == 0 for r in rows),
        "phases": rows,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "system_up_s": round(up_s, 1), "setup_s": round(program.setup_s, 1),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
