"""Program health report benchmark: a program of P partnerships (default 5,000) with M meetings
each, PIPs and a first-meeting survey, read through the gateway's real route
(GET /api/v1/programs/{p}/reports/health, JSON and CSV) with the REAL activity app (its store
filled directly, SQLite by default) behind it; matching and payments are in-process fakes
answering P mentees, open incidents, awaiting transitions and a year of payout batches.

    uv run python -m bench.reports_bench [--partnerships 5000] [--meetings 8] [--runs 5] [--store-url URL]

Prints the timings as JSON last. Target: a report answers in under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.activity.adapters.survey_tables import (
    SurveyAnswerRow,
    SurveyInvitationRow,
    SurveyRoundRow,
    SurveyRow,
)
from services.activity.adapters.tables import ActivityRow, MeetingViewRow, PartnershipRow, ProgramRow
from services.activity.entrypoints.app import create_app as create_activity
from services.gateway.domain.access import Role
from services.gateway.tests.fakes import FakeService
from services.gateway.tests.support import running_gateway
from shared.contracts.program import ProgramPolicy
from shared.settings import ServiceSettings

PROGRAM = "prog-bench"
STATUSES = ("on_track", "behind", "at_risk")


def fill(service: Any, partnerships: int, meetings: int) -> None:
    start = datetime(2026, 8, 20, 15, tzinfo=UTC)
    with service.db.session() as s:
        s.add(ProgramRow(program_id=PROGRAM, name="Bench", revision=1, policy=ProgramPolicy().model_dump_json()))
        s.add(SurveyRow(survey_id="sv-1", program_id=PROGRAM, title="Fit", schedule="first_meeting",
                        questions=json.dumps([{"question_id": "r", "kind": "rating", "prompt": "How?"}]),
                        created_at=start))
        for i in range(partnerships):
            pa = f"pa-{i:05d}"
            matched_at = start + timedelta(hours=i % 500)
            s.add(PartnershipRow(partnership_id=pa, program_id=PROGRAM, mentor_id=f"mentor-{i // 2}",
                                 mentee_id=f"mentee-{i}", matched=True, started_at=matched_at,
                                 metamentor_id=f"meta-{i % 40}", status=STATUSES[i % 3]))
            for k in range(meetings if i % 10 else 0):  # every tenth has not met yet
                s.add(MeetingViewRow(meeting_id=f"m-{i}-{k}", partnership_id=pa, program_id=PROGRAM,
                                     started_at=matched_at + timedelta(days=3 + 14 * k), minutes=30 + 15 * (k % 4),
                                     intentional=k % 3 != 0))
            for k, stage in enumerate(("exploration", "collaboration", "application")):
                s.add(ActivityRow(activity_id=f"a-{i}-{k}", partnership_id=pa, program_id=PROGRAM, kind="pip_stage",
                                  stage=stage, pip_id=f"pip-{i}", occurred_on=date(2026, 9, 1) + timedelta(days=i % 200 + k),
                                  recorded_at=start))
            if i % 10:
                s.add(SurveyRoundRow(round_id=f"sr-{i}", survey_id="sv-1", program_id=PROGRAM, round_key=f"pa:{pa}",
                                     partnership_id=pa, opened_at=start))
                s.add(SurveyInvitationRow(round_id=f"sr-{i}", survey_id="sv-1", program_id=PROGRAM,
                                          person_id=f"mentor-{i // 2}", invited_at=start))
                if i % 3:
                    s.add(SurveyAnswerRow(answer_id=f"sa-{i}", round_id=f"sr-{i}", survey_id="sv-1", program_id=PROGRAM,
                                          person_id=f"mentor-{i // 2}", partnership_id=pa, answers='{"r": 4}',
                                          average_rating=float(1 + i % 5), answered_at=start))
            if i % 1000 == 999:
                s.commit()
        s.commit()


def fakes(partnerships: int) -> dict[str, FakeService]:
    matching, payments = FakeService("matching"), FakeService("payments")
    mentees = [{"person_id": f"mentee-{i}", "program_id": PROGRAM, "kind": "mentee",
                "profile": {"site": f"School {i % 60}"}} for i in range(partnerships)]
    matching.routes[("GET", f"/programs/{PROGRAM}/mentees")] = (200, mentees)
    matching.routes[("GET", f"/programs/{PROGRAM}/incidents")] = (200, [{"incident_id": f"i-{k}"} for k in range(12)])
    matching.routes[("GET", f"/programs/{PROGRAM}/transitions")] = (200, [{"transition_id": f"t-{k}"} for k in range(7)])
    payments.routes[("GET", "/batches")] = (200, [
        {"batch_id": f"b-{m}-{d}", "program_id": PROGRAM, "pay_date": f"2026-{m:02d}-{d:02d}", "total": "12345.67",
         "currency": "USD", "items": partnerships // 2} for m in range(1, 13) for d in (2, 16)])
    return {"matching": matching, "payments": payments}


async def measure(partnerships: int, meetings: int, runs: int, store_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServiceSettings(data_dir=Path(tmp) / "activity", database_url=store_url or "")
        activity = create_activity(settings)
        service = activity.state.service
        service.migrate()
        t0 = time.monotonic()
        fill(service, partnerships, meetings)
        fill_s = time.monotonic() - t0
        async with running_gateway(Path(tmp) / "gw", {"activity": activity, **{n: f.app() for n, f in fakes(partnerships).items()}}) as h:
            h.user("coord", Role.COORDINATOR, [PROGRAM])
            timings: dict[str, list[float]] = {"json": [], "csv": []}
            sizes: dict[str, int] = {}
            for _ in range(runs):
                for fmt in ("json", "csv"):
                    t = time.monotonic()
                    r = await h.client.get(f"/api/v1/programs/{PROGRAM}/reports/health", params={"format": fmt},
                                           headers=h.auth("coord"))
                    timings[fmt].append(time.monotonic() - t)
                    assert r.status_code == 200, r.text
                    sizes[fmt] = len(r.content)
            body = (await h.client.get(f"/api/v1/programs/{PROGRAM}/reports/health", headers=h.auth("coord"))).json()
    return {
        "benchmark": "reports", "partnerships": partnerships, "meetings_per_partnership": meetings,
        "store": store_url.split(":")[0] if store_url else "sqlite", "fill_seconds": round(fill_s, 2),
        "json_seconds_median": round(statistics.median(timings["json"]), 3),
        "json_seconds_max": round(max(timings["json"]), 3),
        "csv_seconds_median": round(statistics.median(timings["csv"]), 3),
        "csv_seconds_max": round(max(timings["csv"]), 3),
        "json_bytes": sizes["json"], "csv_bytes": sizes["csv"],
        "months": len(body["meetings_per_month"]), "sites": len(body["partnerships_by_status"]["by_site"]),
        "under_1s": max(timings["json"] + timings["csv"]) < 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1,000 partnerships, 3 runs")
    size.add_argument("--full", action="store_true", help="5,000 partnerships, 5 runs (the default)")
    parser.add_argument("--partnerships", type=int, default=None)
    parser.add_argument("--meetings", type=int, default=8)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    args.partnerships = args.partnerships or (1000 if args.quick else 5000)
    args.runs = args.runs or (3 if args.quick else 5)
    result = asyncio.run(measure(args.partnerships, args.meetings, args.runs, args.store_url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
