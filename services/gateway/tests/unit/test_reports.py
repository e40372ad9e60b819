"""The program health report as the gateway composes it, on a small fixed program whose numbers
are worked out by hand: site grouping from matching's mentees, stipends per month from payments'
batches, open incidents and pending transitions from matching, activity's figures passed through."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from services.gateway.domain.reports import health_csv, health_report

pytestmark = pytest.mark.unit

ACTIVITY: dict[str, Any] = {
    "partnerships": [
        {"partnership_id": "pa-1", "mentee_id": "e-1", "metamentor_id": "meta-1", "status": "on_track"},
        {"partnership_id": "pa-2", "mentee_id": "e-2", "metamentor_id": "meta-1", "status": "at_risk"},
        {"partnership_id": "pa-3", "mentee_id": "e-3", "metamentor_id": None, "status": "behind"},
        {"partnership_id": "pa-4", "mentee_id": "e-4", "metamentor_id": None, "status": None},
    ],
    "status_by_metamentor": [{"group": "meta-1", "on_track": 1, "behind": 0, "at_risk": 1, "unknown": 0, "total": 2}],
    "meetings_per_month": [{"month": "2026-09", "meetings": 3, "intentional_meetings": 2, "hours": "3.00"}],
    "pips_completed_per_semester": [{"semester": "Fall", "pips_completed": 1}],
    "time_to_first_meeting": {"partnerships_met": 2, "not_met_yet": 1, "average_days": 6.5, "median_days": 6.5},
    "surveys": [{"survey_id": "sv-1", "title": "Fit", "schedule": "first_meeting", "rounds": 2, "invited": 2,
                 "answered": 1, "response_rate": 0.5, "average_rating": 4.0}],
}
MENTEES = [{"person_id": "e-1", "profile": {"site": "Lincoln Elementary"}},
           {"person_id": "e-2", "profile": {"site": "Lincoln Elementary"}},
           {"person_id": "e-3", "profile": {"site": "Park High"}},
           {"person_id": "e-4", "profile": {}}]
BATCHES = [
    {"batch_id": "b-1", "program_id": "prog-1", "pay_date": "2026-10-02", "total": "1234.50", "currency": "USD", "items": 3},
    {"batch_id": "b-2", "program_id": "prog-1", "pay_date": "2026-10-16", "total": "65.50", "currency": "USD", "items": 1},
    {"batch_id": "b-3", "program_id": "prog-1", "pay_date": "2026-11-02", "total": "0.10", "currency": "USD", "items": 1},
    {"batch_id": "b-x", "program_id": "prog-2", "pay_date": "2026-11-02", "total": "999.00", "currency": "USD", "items": 9},
]


def report() -> dict[str, Any]:
    return health_report("prog-1", ACTIVITY, MENTEES, [{"incident_id": "i-1"}, {"incident_id": "i-2"}],
                         [{"transition_id": "t-1"}], BATCHES)


def test_every_figure_of_the_composed_report() -> None:
    r = report()
    assert r["partnerships_by_status"]["by_site"] == [
        {"group": "(none)", "on_track": 0, "behind": 0, "at_risk": 0, "unknown": 1, "total": 1},
        {"group": "Lincoln Elementary", "on_track": 1, "behind": 0, "at_risk": 1, "unknown": 0, "total": 2},
        {"group": "Park High", "on_track": 0, "behind": 1, "at_risk": 0, "unknown": 0, "total": 1},
    ]
    assert r["partnerships_by_status"]["by_metamentor"] == ACTIVITY["status_by_metamentor"]
    # October: 1234.50 + 65.50 = 1300.00 in 4 payouts; November 0.10; prog-2's batch is not ours.
    assert r["stipends_paid_per_month"] == [
        {"month": "2026-10", "currency": "USD", "paid": "1300.00", "payouts": 4},
        {"month": "2026-11", "currency": "USD", "paid": "0.10", "payouts": 1},
    ]
    assert (r["open_incidents"], r["pending_transitions"]) == (2, 1)
    assert r["meetings_per_month"] == ACTIVITY["meetings_per_month"]
    assert r["pips_completed_per_semester"] == [{"semester": "Fall", "pips_completed": 1}]
    assert r["time_to_first_meeting"]["average_days"] == 6.5
    assert r["surveys"][0]["response_rate"] == 0.5 and r["surveys"][0]["average_rating"] == 4.0


def test_the_csv_has_one_row_per_figure() -> None:
    rows = list(csv.DictReader(io.StringIO(health_csv(report()))))
    cell = {(r["section"], r["group"], r["metric"]): r["value"] for r in rows}
    assert cell[("partnerships_by_site", "Lincoln Elementary", "at_risk")] == "1"
    assert cell[("partnerships_by_metamentor", "meta-1", "total")] == "2"
    assert cell[("meetings_per_month", "2026-09", "hours")] == "3.00"
    assert cell[("pips_completed_per_semester", "Fall", "pips_completed")] == "1"
    assert cell[("surveys", "sv-1", "response_rate")] == "0.5"
    assert cell[("time_to_first_meeting", "", "median_days")] == "6.5"
    assert cell[("stipends_paid_per_month", "2026-10", "paid_USD")] == "1300.00"
    assert cell[("open_incidents", "", "count")] == "2" and cell[("pending_transitions", "", "count")] == "1"
