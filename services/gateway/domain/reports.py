"""The program health report, composed from the services' own read APIs. Pure: no I/O.

Inputs are what the services answer: activity's program health figures, matching's mentees (for
each partnership's site: the mentee's profile site), open incidents and awaiting transitions, and
payments' payout batches. Money stays Decimal; a month of pay is the batch's pay date's month.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

STATUSES = ("on_track", "behind", "at_risk")


def status_by_site(partnerships: list[dict[str, Any]], mentees: list[dict[str, Any]]) -> list[dict[str, Any]]:
    site_of = {m["person_id"]: (m.get("profile") or {}).get("site") for m in mentees}
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for p in partnerships:
        status = p.get("status")
        groups[site_of.get(p.get("mentee_id")) or "(none)"][status if status in STATUSES else "unknown"] += 1
    return [{"group": g, **{s: c[s] for s in (*STATUSES, "unknown")}, "total": sum(c.values())}
            for g, c in sorted(groups.items())]


def stipends_per_month(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    items: Counter[tuple[str, str]] = Counter()
    for b in batches:
        key = (str(b["pay_date"])[:7], str(b.get("currency", "USD")))
        totals[key] += Decimal(str(b["total"]))
        items[key] += int(b.get("items", 0))
    return [{"month": month, "currency": cur, "paid": str(totals[(month, cur)]), "payouts": items[(month, cur)]}
            for month, cur in sorted(totals)]


def health_report(program_id: str, activity: dict[str, Any], mentees: list[dict[str, Any]],
                  incidents: list[dict[str, Any]], transitions: list[dict[str, Any]],
                  batches: list[dict[str, Any]]) -> dict[str, Any]:
    surveys = [{k: s[k] for k in ("survey_id", "title", "schedule", "rounds", "invited", "answered",
                                  "response_rate", "average_rating")} for s in activity.get("surveys", [])]
    return {
        "program_id": program_id,
        "partnerships_by_status": {
            "by_metamentor": activity.get("status_by_metamentor", []),
            "by_site": status_by_site(activity.get("partnerships", []), mentees),
        },
        "meetings_per_month": activity.get("meetings_per_month", []),
        "pips_completed_per_semester": activity.get("pips_completed_per_semester", []),
        "surveys": surveys,
        "time_to_first_meeting": activity.get("time_to_first_meeting", {}),
        "stipends_paid_per_month": stipends_per_month([b for b in batches if b.get("program_id") == program_id]),
        "open_incidents": len(incidents),
        "pending_transitions": len(transitions),
    }


def health_csv(report: dict[str, Any]) -> str:
    """One row per figure: section, group, metric, value (spreadsheet-friendly)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "group", "metric", "value"])
    for by in ("by_metamentor", "by_site"):
        for row in report["partnerships_by_status"][by]:
            for metric in (*STATUSES, "unknown", "total"):
                w.writerow([f"partnerships_{by}", row["group"], metric, row[metric]])
    for row in report["meetings_per_month"]:
        for metric in ("meetings", "intentional_meetings", "hours"):
            w.writerow(["meetings_per_month", row["month"], metric, row[metric]])
    for row in report["pips_completed_per_semester"]:
        w.writerow(["pips_completed_per_semester", row["semester"], "pips_completed", row["pips_completed"]])
    for row in report["surveys"]:
        for metric in ("rounds", "invited", "answered", "response_rate", "average_rating"):
            w.writerow(["surveys", row["survey_id"], metric, "" if row[metric] is None else row[metric]])
    for metric, value in report["time_to_first_meeting"].items():
        w.writerow(["time_to_first_meeting", "", metric, "" if value is None else value])
    for row in report["stipends_paid_per_month"]:
        w.writerow(["stipends_paid_per_month", row["month"], f"paid_{row['currency']}", row["paid"]])
        w.writerow(["stipends_paid_per_month", row["month"], "payouts", row["payouts"]])
    w.writerow(["open_incidents", "", "count", report["open_incidents"]])
    w.writerow(["pending_transitions", "", "count", report["pending_transitions"]])
    return out.getvalue()
