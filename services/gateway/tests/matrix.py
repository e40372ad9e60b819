"""The authorization table: every gateway route, the principals that may call it, and the ids of
the world it is played against. Resources belong to prog-a's partnership pa-1 (mentor-1, mentee-1,
meta-1); mentor-2 is another mentor of prog-a; prog-b has its own coordinator and mentor-b.

Played twice: against fake services (services/gateway/tests/unit/test_authorization.py, fast, with
every write the gateway makes recorded) and against the real platform as processes
(tests/faults/test_authorization.py, with the ids of real seeded resources put in place of these).
"""

from __future__ import annotations

from typing import Any

from services.gateway.domain.access import Role

WHO: dict[str, tuple[Role, list[str], str | None]] = {
    "admin": (Role.ADMIN, [], None),
    "coord_a": (Role.COORDINATOR, ["prog-a"], None),
    "coord_b": (Role.COORDINATOR, ["prog-b"], None),
    "meta_1": (Role.METAMENTOR, ["prog-a"], "meta-1"),
    "mentor_1": (Role.MENTOR, ["prog-a"], "mentor-1"),
    "mentee_1": (Role.MENTEE, ["prog-a"], "mentee-1"),
    "mentor_2": (Role.MENTOR, ["prog-a"], "mentor-2"),
    "mentor_b": (Role.MENTOR, ["prog-b"], "mentor-b"),
}
STAFF_A = {"admin", "coord_a"}
VIEW_PA1 = STAFF_A | {"meta_1", "mentor_1", "mentee_1"}
IN_A = STAFF_A | {"meta_1", "mentor_1", "mentee_1", "mentor_2"}
MENTOR_1 = STAFF_A | {"mentor_1"}

CSV = "name,email\nMaria,maria@example.org\n"
MEETING = {"partnership_id": "pa-1", "started_at": "2026-10-06T16:30:00-06:00", "duration_minutes": 45,
           "mode": "video", "intentional": True}

# (method, gateway path, JSON body or CSV text, who may)
CASES: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/programs", {"program_id": "prog-c", "name": "C"}, {"admin"}),
    ("GET", "/programs/prog-a", None, IN_A),
    ("PUT", "/programs/prog-a", {"name": "A2"}, STAFF_A),
    ("POST", "/programs/prog-a/mentors", {"name": "M", "email": "m@example.org"}, STAFF_A),
    ("POST", "/programs/prog-a/mentees", {"name": "E", "email": "e@example.org"}, STAFF_A),
    ("POST", "/programs/prog-a/metamentors", {"name": "X", "email": "x@example.org"}, STAFF_A),
    ("POST", "/programs/prog-a/mentees/import", CSV, STAFF_A),
    ("PATCH", "/people/mentor-1", {"email": "new@example.org"}, MENTOR_1),
    ("PATCH", "/people/mentee-1", {"availability": ["mornings"]}, STAFF_A | {"mentee_1"}),
    ("PATCH", "/people/mentee-1", {"years_in_position": 9}, STAFF_A),
    ("PUT", "/mentors/mentor-1/capacity", {"capacity": 3}, MENTOR_1),
    ("POST", "/mentors/mentor-1/pause", {"reason": "leave"}, MENTOR_1),
    ("POST", "/mentors/mentor-1/resume", {"capacity": 3}, MENTOR_1),
    ("POST", "/programs/prog-a/banned-pairs", {"mentee_id": "mentee-1", "mentor_id": "mentor-2"}, STAFF_A),
    ("POST", "/programs/prog-a/proposals", {}, STAFF_A),
    ("GET", "/proposals/prop-a", None, STAFF_A),
    ("POST", "/proposals/prop-a/publish", {}, STAFF_A),
    ("POST", "/programs/prog-a/partnerships", {"mentee_id": "mentee-4", "mentor_id": "mentor-2"}, STAFF_A),
    ("GET", "/me/partnerships", None, set(WHO)),  # each sees only their own (test_forwarding)
    ("GET", "/partnerships/pa-1", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/overview", None, VIEW_PA1),
    ("POST", "/partnerships/pa-1/rematch", {"reason": "schedules"}, STAFF_A | {"mentee_1"}),
    ("GET", "/programs/prog-a/transitions", None, STAFF_A),
    ("POST", "/transitions/tr-a/decision", {"decision": "hold"}, STAFF_A),
    ("POST", "/programs/prog-a/metamentors/assign", None, STAFF_A),
    ("POST", "/partnerships/pa-1/incidents", {"description": "rude", "reported_by": "mentee-1"}, STAFF_A | {"mentor_1", "mentee_1"}),
    ("GET", "/programs/prog-a/incidents", None, STAFF_A),
    ("POST", "/incidents/inc-a/resolve", {"action": "close"}, STAFF_A),
    ("POST", "/meetings", MEETING, MENTOR_1),
    ("POST", "/meetings/mtg-1/corrections", {"duration_minutes": 30}, MENTOR_1),
    ("GET", "/meetings/mtg-1", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/meetings", None, VIEW_PA1),
    ("POST", "/time-entries", {"program_id": "prog-a", "mentor_id": "mentor-1", "kind": "planning",
                               "work_date": "2026-10-06", "minutes": 30, "partnership_id": "pa-1"}, MENTOR_1),
    ("POST", "/time-entries/te-1/amendments", {"minutes": 20, "reason": "it was 20"}, MENTOR_1),
    ("GET", "/time-entries/te-1", None, MENTOR_1),
    ("POST", "/activities", {"partnership_id": "pa-1", "kind": "pip_stage", "occurred_on": "2026-10-06",
                               "stage": "exploration", "details": {"pip_id": "pip-1"}}, MENTOR_1),
    ("GET", "/partnerships/pa-1/activities", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/compliance", None, VIEW_PA1),
    ("GET", "/programs/prog-a/compliance", None, IN_A),
    ("GET", "/programs/prog-a/month-closes", None, STAFF_A),
    ("GET", "/programs/prog-a/mentors/mentor-1/month-closes", None, MENTOR_1),
    ("POST", "/programs/prog-a/month-closes", {}, STAFF_A),
    ("POST", "/programs/prog-a/surveys", {"title": "Fit", "schedule": "first_meeting", "questions": [
        {"question_id": "fit", "kind": "rating", "prompt": "How good a fit?"}]}, STAFF_A),
    ("GET", "/programs/prog-a/surveys", None, STAFF_A),
    ("GET", "/programs/prog-a/survey-results", None, STAFF_A),
    ("GET", "/programs/prog-a/partnership-flags", None, STAFF_A),
    ("GET", "/programs/prog-a/people/mentor-1/survey-invitations", None, MENTOR_1),
    ("POST", "/programs/prog-a/survey-rounds/sr-1/answers", {"answers": {"overall": 4}}, IN_A),
    ("POST", "/programs/prog-a/feedback-entries", {"given_on": "2026-10-06", "text": "t", "mentor_id": "mentor-1"},
     STAFF_A | {"mentor_1", "mentor_2"}),
    ("GET", "/programs/prog-a/mentors/mentor-1/feedback-entries", None, MENTOR_1),
    ("PUT", "/programs/prog-a/review-rubric", {"criteria": [{"criterion_id": "c"}]}, STAFF_A),
    ("GET", "/programs/prog-a/review-rubric", None, IN_A),
    ("POST", "/programs/prog-a/mentors/mentor-1/review-samples", {"month": "2026-10"}, STAFF_A),
    ("POST", "/programs/prog-a/mentors/mentor-1/reviews", {"entry_id": "fb-1", "scores": {"c": 3}}, STAFF_A),
    ("GET", "/programs/prog-a/mentors/mentor-1/reviews", None, MENTOR_1),
    ("GET", "/programs/prog-a/reports/health", None, STAFF_A),
    ("GET", "/programs/prog-a/reports/health?format=csv", None, STAFF_A),
    ("GET", "/statements/st-1", None, MENTOR_1),
    ("GET", "/statements/st-1/audit", None, MENTOR_1),
    ("POST", "/statements/st-1/approve", {}, STAFF_A),
    ("POST", "/statements/approvals", {"statement_ids": ["st-1"]}, STAFF_A),
    ("POST", "/statements/st-1/clarifications", {"entry_ids": ["te-1"], "question": "90?"}, STAFF_A),
    ("POST", "/programs/prog-a/payouts", {"pay_date": "2026-10-05"}, STAFF_A),
    ("GET", "/batches/b-1", None, STAFF_A),
    ("GET", "/batches/b-1/csv", None, STAFF_A),
    ("POST", "/reimbursements", {"partnership_id": "pa-1", "kind": "book", "amount": "24.99",
                                 "spent_on": "2026-10-03"}, MENTOR_1),
    ("GET", "/reimbursements?partnership_id=pa-1", None, VIEW_PA1),
    ("GET", "/partnerships/pa-1/budgets?on=2026-10-06", None, VIEW_PA1),
    ("GET", "/messages/m-1", None, STAFF_A | {"mentee_1"}),
    ("POST", "/messages/m-1/resend", None, STAFF_A),
    ("GET", "/people/mentee-1/preferences", None, STAFF_A | {"mentee_1"}),
    ("PUT", "/people/mentee-1/preferences", {"newsletter": False}, STAFF_A | {"mentee_1"}),
    ("POST", "/newsletters", {"program_id": "prog-a", "month": "2026-10"}, STAFF_A),
    ("GET", "/newsletters/nl-a", None, STAFF_A),
    ("POST", "/newsletters/nl-a/items", {"title": "T", "body": "B"}, STAFF_A),
    ("GET", "/newsletters/nl-a/preview", None, STAFF_A),
    ("POST", "/newsletters/nl-a/publish", None, STAFF_A),
    ("POST", "/announcements", {"program_id": "prog-a", "audience": "mentors", "title": "T", "body": "B"}, STAFF_A),
    ("GET", "/announcements/ann-a", None, STAFF_A),
    ("GET", "/announcements/ann-a/preview", None, STAFF_A),
    ("POST", "/announcements/ann-a/send", None, STAFF_A),
    ("GET", "/messages/m-1/content", None, STAFF_A | {"mentee_1"}),
    ("GET", "/newsletters?program_id=prog-a", None, STAFF_A),
]


# Lists (each role gets its own narrowed view: test_forwarding) and the signed unsubscribe link.
LISTS = [("GET", "/programs"), ("GET", "/programs/prog-a/mentors"), ("GET", "/statements"),
         ("GET", "/payouts/pending"), ("GET", "/batches"), ("GET", "/reimbursements"),
         ("GET", "/messages?program_id=prog-a"), ("GET", "/messages/failed?program_id=prog-a"),
         ("GET", "/mentors/mentor-1/time-entries"), ("GET", "/unsubscribe/mentee-1?token=t"),
         ("POST", "/unsubscribe/mentee-1?token=t")]
