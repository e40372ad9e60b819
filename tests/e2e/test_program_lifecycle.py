"""A program's month, end to end, through the gateway alone.

Staff create a program, import its people from CSV and publish a matching; a mentor logs meetings
and time; the month closes on the services' clocks; staff question one entry, the mentor amends
it, staff approve the recomputed statement and the pay-day job puts it in a payout batch. What a
user would check: the statement's amounts, the batch file, and the emails in the mail server.
"""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.harness import Gateway, Platform, wait_for
from tests.mail import Mail, RecordingSMTP

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

PROGRAM_ID = "prog-e2e-mentormt"
TZ = "America/Denver"  # UTC-7 in December and January
# Odd rates on purpose: each line rounds half-up to the cent on its own.
MEETING_RATE, PLANNING_RATE, WORKSHOP_RATE = Decimal("41.50"), Decimal("30.00"), Decimal("55.00")
POLICY = {
    "timezone": TZ,
    "cadence": {"intentional_meetings_per_month": 2},
    "matching": {"metamentor_caseload_min": 0, "metamentor_caseload_max": 40},
    "pay": {
        "currency": "USD",
        "hourly_rates": {"meeting": str(MEETING_RATE), "planning": str(PLANNING_RATE),
                         "workshop": str(WORKSHOP_RATE)},
        "planning_multiple_of_workshop": "2",
        "month_close_grace_days": 2,
        "pay_day": 5,
    },
}

MENTORS_CSV = (
    "name,email,grade_band,subjects,role,site,years_in_position,training_completed,capacity\n"
    "Maria Lopez,maria.lopez@e2e.example.org,6-8,math,teacher,Lincoln MS,4,yes,1\n"
    "Tom Baker,tom.baker@e2e.example.org,K-5,reading,teacher,Adams ES,6,yes,1\n"
)
MENTEES_CSV = (
    "name,email,grade_band,subjects,role,site\n"
    "Ana Ruiz,ana.ruiz@e2e.example.org,6-8,math,teacher,Lincoln MS\n"
    "Ben Cole,ben.cole@e2e.example.org,K-5,reading,teacher,Adams ES\n"
)
METAMENTORS_CSV = "name,email\nGrace Hill,grace.hill@e2e.example.org\n"
MARIA = "maria.lopez@e2e.example.org"

# The services' clocks, moved by the admin through the gateway.
MATCH_DAY = "2026-12-01T16:00:00+00:00"  # Tuesday 09:00 in Denver
MID_MONTH = "2026-12-20T18:00:00+00:00"
AFTER_GRACE = "2027-01-03T12:00:00+00:00"  # December ends Jan 1 00:00 Denver; + 2 days grace = 07:00Z
PAY_DAY = "2027-01-05T16:00:00+00:00"  # pay_day 5, 09:00 in Denver

# What Maria logs (Denver times) and what each line must pay, by hand: minutes / 60 x rate, half-up.
MEETINGS = [
    ("2026-12-03T16:30:00-07:00", 45, "video", Decimal("31.13")),  # 31.125
    ("2026-12-10T16:00:00-07:00", 50, "in_person", Decimal("34.58")),  # 34.5833...
    ("2026-12-17T17:00:00-07:00", 25, "phone", Decimal("17.29")),  # 17.2916...
]
WORKSHOP = ("2026-12-08", 60, Decimal("55.00"))
PLANNING = ("2026-12-09", 100, Decimal("50.00"))  # within 2 x 60 min of workshop
PLANNING_AMENDED = (75, Decimal("37.50"))
FIRST_TOTAL = Decimal("188.00")  # 31.13 + 34.58 + 17.29 + 55.00 + 50.00
FINAL_TOTAL = Decimal("175.50")  # 31.13 + 34.58 + 17.29 + 55.00 + 37.50


def set_clock(admin: Gateway, now: str) -> None:
    answers = admin.post("/ops/clock", {"now": now})
    for service in ("matching", "activity", "payments", "notify"):
        assert answers[service].get("now", "").startswith(now[:16]), answers


def mails_with(smtp: RecordingSMTP, address: str, subject_part: str) -> list[Mail]:
    return [m for m in smtp.to(address) if subject_part in m.subject]


def mail_arrives(smtp: RecordingSMTP, address: str, subject_part: str, what: str) -> Mail:
    try:
        return wait_for(lambda: mails_with(smtp, address, subject_part), f"{what} to {address}")[0]
    except AssertionError as exc:
        raise AssertionError(f"{exc}; mail so far: {smtp.subjects()}") from None


def statement_of(admin: Gateway, mentor_id: str) -> dict[str, Any] | None:
    found = admin.get("/statements", params={"program_id": PROGRAM_ID, "mentor_id": mentor_id, "month": "2026-12"})
    return found[0] if found else None


def test_a_program_month_from_matching_to_payout(platform: Platform, smtp: RecordingSMTP) -> None:
    started = time.monotonic()
    admin = platform.client(platform.admin_token)
    assert admin.get("/me")["role"] == "admin"
    set_clock(admin, MATCH_DAY)

    # -- a program, its people from CSV, a published matching ------------------------------------
    program = admin.post("/programs", {"program_id": PROGRAM_ID, "name": "MentorMT E2E", "policy": POLICY},
                         expect=201)
    assert program["program_id"] == PROGRAM_ID
    csv_headers = {"Content-Type": "text/csv"}
    mentors = admin.call("POST", f"/programs/{PROGRAM_ID}/mentors/import", 201, content=MENTORS_CSV,
                         headers=csv_headers).json()
    mentees = admin.call("POST", f"/programs/{PROGRAM_ID}/mentees/import", 201, content=MENTEES_CSV,
                         headers=csv_headers).json()
    metamentors = admin.call("POST", f"/programs/{PROGRAM_ID}/metamentors/import", 201, content=METAMENTORS_CSV,
                             headers=csv_headers).json()
    assert (mentors["imported"], mentees["imported"], metamentors["imported"]) == (2, 2, 1)
    maria_id = mentors["person_ids"][0]
    emails = {p["person_id"]: p["email"] for kind in ("mentors", "mentees")
              for p in admin.get(f"/programs/{PROGRAM_ID}/{kind}")}
    assert emails[maria_id] == MARIA

    proposal = admin.post(f"/programs/{PROGRAM_ID}/proposals", {}, expect=201)
    assert len(proposal["pairs"]) == 2, proposal
    published = admin.post(f"/proposals/{proposal['proposal_id']}/publish", {})
    partnerships = published["partnerships"]
    assert len(partnerships) == 2, published
    maria_pair = next(p for p in partnerships if p["mentor_id"] == maria_id)
    partnership_id = maria_pair["partnership_id"]
    listed = admin.get(f"/programs/{PROGRAM_ID}/partnerships")
    assert {p["metamentor_id"] for p in listed} == {metamentors["person_ids"][0]}, listed

    # Both partners of every new partnership get an introduction (before the clocks move on).
    for pair in partnerships:
        mail_arrives(smtp, emails[pair["mentor_id"]], "Meet your mentee", "the match introduction")
        mail_arrives(smtp, emails[pair["mentee_id"]], "Meet your mentor", "the match introduction")
    mentee_mail = emails[maria_pair["mentee_id"]]
    to_maria = mails_with(smtp, MARIA, "Meet your mentee")
    to_mentee = mails_with(smtp, mentee_mail, "Meet your mentor")
    assert len(to_maria) == len(to_mentee) == 1, smtp.subjects()
    assert to_maria[0].subject.endswith(": Ana Ruiz") and mentee_mail in to_maria[0].body()
    assert to_mentee[0].subject.endswith(": Maria Lopez") and MARIA in to_mentee[0].body()

    # -- Maria's user, her meetings and her time ---------------------------------------------------
    user = admin.post("/users", {"name": "Maria Lopez", "role": "mentor", "program_ids": [PROGRAM_ID],
                                 "person_id": maria_id, "email": MARIA}, expect=201)
    maria = platform.client(admin.post(f"/users/{user['id']}/tokens", {"label": "e2e"}, expect=201)["token"])
    set_clock(admin, MID_MONTH)
    # Activity learns of the partnership from matching's events.
    wait_for(lambda: maria.http.get(f"/partnerships/{partnership_id}/compliance").status_code == 200,
             "activity knows Maria's partnership")
    for started_at, minutes, mode, _ in MEETINGS:
        maria.post("/meetings", {"partnership_id": partnership_id, "started_at": started_at,
                                 "duration_minutes": minutes, "mode": mode, "intentional": True,
                                 "topics": ["formative assessment"]}, expect=201)
    assert len(maria.get(f"/partnerships/{partnership_id}/meetings")["meetings"]) == 3
    workshop = maria.post("/time-entries", {"program_id": PROGRAM_ID, "kind": "workshop", "work_date": WORKSHOP[0],
                                            "minutes": WORKSHOP[1]}, expect=201)
    planning = maria.post("/time-entries", {"program_id": PROGRAM_ID, "kind": "planning", "work_date": PLANNING[0],
                                            "minutes": PLANNING[1], "workshop_entry_id": workshop["entry_id"]},
                          expect=201)
    assert planning["mentor_id"] == maria_id
    december = maria.get(f"/mentors/{maria_id}/time-entries", params={"month": "2026-12"})["entries"]
    assert sorted((e["kind"], e["minutes"]) for e in december) == [
        ("meeting", 25), ("meeting", 45), ("meeting", 50), ("planning", 100), ("workshop", 60)]

    # -- the month closes; its statement waits for review ----------------------------------------
    set_clock(admin, AFTER_GRACE)
    admin.post(f"/programs/{PROGRAM_ID}/month-closes", {"month": "2026-12"})  # or the scheduler, first
    closes = admin.get(f"/programs/{PROGRAM_ID}/month-closes")
    assert [c["month"] for c in closes["closed"]] == ["2026-12"], closes

    statement = wait_for(lambda: statement_of(admin, maria_id), "December's statement in payments", 45)
    statement_id = statement["statement_id"]
    assert statement["status"] == "in_review", statement
    assert Decimal(statement["total"]) == FIRST_TOTAL, statement
    detail = admin.get(f"/statements/{statement_id}")
    by_entry = {line["entry_id"]: line for line in detail["lines"]}
    assert Decimal(by_entry[planning["entry_id"]]["amount"]) == PLANNING[2]
    assert Decimal(by_entry[workshop["entry_id"]]["amount"]) == WORKSHOP[2]
    assert sorted(Decimal(line["amount"]) for line in detail["lines"] if line["kind"] == "meeting") == sorted(
        m[3] for m in MEETINGS)
    assert maria.get(f"/statements/{statement_id}")["total"] == statement["total"]  # her own, visible to her

    # -- a question about the planning entry, answered by an amendment ---------------------------
    asked = admin.post(f"/statements/{statement_id}/clarifications",
                       {"entry_ids": [planning["entry_id"]], "question": "Was this 100 minutes of planning?"},
                       expect=201)
    assert asked["status"] == "clarification", asked
    clarification = mail_arrives(smtp, MARIA, "Question about your 2026-12 time entries",
                                 "the clarification request")
    assert "Was this 100 minutes of planning?" in clarification.body()
    assert planning["entry_id"] in clarification.body()

    amended = maria.post(f"/time-entries/{planning['entry_id']}/amendments",
                         {"minutes": PLANNING_AMENDED[0], "reason": "75 minutes, not 100"})
    assert (amended["minutes"], amended["closed_month"]) == (PLANNING_AMENDED[0], "2026-12"), amended

    def recomputed() -> dict[str, Any] | None:
        s = statement_of(admin, maria_id)
        return s if s and s["status"] == "in_review" and s["revision"] > statement["revision"] else None

    revised = wait_for(recomputed, "the statement recomputed and back in review", 45)
    assert Decimal(revised["total"]) == FINAL_TOTAL, revised
    lines = admin.get(f"/statements/{statement_id}")["lines"]
    assert [Decimal(line["amount"]) for line in lines if line["entry_id"] == planning["entry_id"]] == [
        PLANNING_AMENDED[1]], lines

    # -- approval, then pay day --------------------------------------------------------------------
    refused = maria.call("POST", f"/statements/{statement_id}/approve", 403, json={}).json()
    assert refused["detail"][0]["field"] == "program_id", refused  # a mentor never approves her own pay
    approved = admin.post(f"/statements/{statement_id}/approve", {"revision": revised["revision"]})
    assert approved["status"] == "approved", approved
    approval_mail = mail_arrives(smtp, MARIA, "Your 2026-12 stipend is approved", "the payment-approved email")
    assert f"USD {FINAL_TOTAL}" in approval_mail.subject, approval_mail.subject

    set_clock(admin, PAY_DAY)
    admin.post("/ops/jobs/payments/payout")  # the scheduler may have issued the batch already
    batches = wait_for(lambda: admin.get("/batches", params={"program_id": PROGRAM_ID}), "the payout batch")
    assert len(batches) == 1, batches
    assert batches[0]["pay_date"] == "2027-01-05", batches
    file = admin.call("GET", f"/batches/{batches[0]['batch_id']}/csv", 200)
    assert file.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(file.text)))
    assert [(r["payee"], r["payee_email"], Decimal(r["amount"]), r["currency"], r["reference"]) for r in rows] == [
        ("Maria Lopez", MARIA, FINAL_TOTAL, "USD", statement_id)], file.text
    paid = statement_of(admin, maria_id)
    assert paid is not None and (paid["status"], paid["batch_id"]) == ("issued", batches[0]["batch_id"]), paid

    admin.close()
    maria.close()
    assert time.monotonic() - started < 90, "the lifecycle took too long"


def test_a_service_that_is_down_gives_503_naming_it(platform: Platform) -> None:
    admin = platform.client(platform.admin_token)
    payments = platform.system.services["payments"]
    payments.stop()
    try:
        started = time.monotonic()
        refused = admin.call("GET", "/statements", 503)
        assert time.monotonic() - started < 5, "the gateway must answer at once, not hang"
        assert refused.json() == {"detail": [
            {"field": "service", "reason": "payments is unavailable", "code": "service_unavailable"}]}
        admin.get("/programs")  # the others still answer
        ready = platform.system.services["gateway"]
        answer = admin.http.get(ready.url + "/ready")
        assert answer.status_code == 503
        assert answer.json()["services"]["payments"] == "unavailable", answer.json()
    finally:
        payments.start()
        payments.wait_ready(60.0)
    assert admin.get("/statements") is not None
    admin.close()
