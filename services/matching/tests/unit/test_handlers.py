"""Command handlers against a real (SQLite) store, with the emitted events collected."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from services.matching.adapters.tables import PartnershipRow
from services.matching.service_layer import commands as cmd
from services.matching.service_layer import handlers as h
from services.matching.service_layer import views
from services.matching.tests.conftest import NOW, FakeUnitOfWork
from shared.contracts.program import Eligibility, MatchingPolicy, ProgramPolicy
from shared.db import Database
from shared.errors import Conflict, DomainError, NotFound

pytestmark = pytest.mark.unit
STAFF = h.Actor("staff-1", "staff")


class Harness:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.events: list[Any] = []

    @contextmanager
    def uow(self) -> Iterator[FakeUnitOfWork]:
        with self.db.session() as s:
            u = FakeUnitOfWork(s)
            yield u
        self.events.extend(u.events)

    def do(self, fn: Any, *args: Any, **kw: Any) -> tuple[Any, list[str]]:
        with self.uow() as u:
            out = fn(u, *args, **kw)
        return out, u.types()

    def program(self, **matching: Any) -> str:
        policy = ProgramPolicy(matching=MatchingPolicy(**matching))
        row, _ = self.do(h.configure_program, cmd.ConfigureProgram(program_id="p1", name="P", policy=policy),
                         STAFF, NOW)
        return str(row.program_id)

    def person(self, kind: str, pid: str, **profile: Any) -> str:
        body = cmd.EnrolPerson(person_id=pid, name=pid, email=f"{pid}@x.org", **profile)
        row, _ = self.do(h.enrol, "p1", kind, body, STAFF, NOW)
        return str(row.person_id)


@pytest.fixture
def hx(db: Database) -> Harness:
    return Harness(db)


def test_program_configured_on_create_and_on_change_and_eligibility_follows(hx: Harness) -> None:
    hx.program()
    hx.person("mentor", "m1", years_in_position=1)
    _, types = hx.do(h.change_program, "p1", cmd.ChangeProgram(policy=ProgramPolicy(
        matching=MatchingPolicy(eligibility=Eligibility(min_years_in_position=2)))), STAFF, NOW)
    assert types == ["ProgramConfigured", "MentorProfileUpdated"]
    with hx.db.session() as s:
        [mentor] = views.people(s, "p1", "mentor")
    assert mentor["eligible"] is False
    assert mentor["ineligible_reasons"] == ["years_in_position is 1; the program requires at least 2"]


def test_unknown_criterion_in_policy_names_the_field(hx: Harness) -> None:
    bad = ProgramPolicy(matching=MatchingPolicy(criteria_weights={"shoe_size": 1}))
    with pytest.raises(DomainError) as err:
        hx.do(h.configure_program, cmd.ConfigureProgram(name="P", policy=bad), STAFF, NOW)
    assert err.value.problems[0].field == "policy.matching.criteria_weights"


def test_duplicate_email_is_refused_with_the_field(hx: Harness) -> None:
    hx.program()
    hx.person("mentee", "e1")
    with pytest.raises(Conflict) as err:
        hx.do(h.enrol, "p1", "mentee", cmd.EnrolPerson(name="x", email="E1@x.org"), STAFF, NOW)
    assert err.value.problems[0].field == "email"


def test_import_is_all_or_nothing_unless_good_rows_are_asked_for(hx: Harness) -> None:
    hx.program()
    text = "name,email,capacity\nA,a@x.org,2\nB,not-an-email,1\nC,c@x.org,x\n"
    with pytest.raises(h.RosterRejected) as err:
        hx.do(h.import_roster, "p1", "mentor", text, import_good_rows=False, actor=STAFF, now=NOW)
    assert err.value.body()["detail"] == [
        {"line": 3, "field": "email", "reason": "'not-an-email' is not an email address", "code": "invalid_row"},
        {"line": 4, "field": "capacity", "reason": "'x' is not a whole number", "code": "invalid_row"},
    ]
    with hx.db.session() as s:
        assert views.people(s, "p1", "mentor") == []
    (people, roster), types = hx.do(h.import_roster, "p1", "mentor", text, import_good_rows=True, actor=STAFF,
                                    now=NOW)
    assert [p.name for p in people] == ["A"] and types == ["MentorEnrolled"]
    assert len(roster.errors) == 2


def test_proposal_then_partial_publish_then_the_rest(hx: Harness) -> None:
    hx.program(objective="best_total")
    hx.person("metamentor", "mm1")
    hx.person("mentor", "m1", grade_band="6-8", subjects=["math"], capacity=2)
    hx.person("mentor", "m2", grade_band="k-2", capacity=1, years_in_position=5)
    hx.person("mentee", "e1", grade_band="6-8", subjects=["math"])
    hx.person("mentee", "e2", grade_band="k-2")
    hx.person("mentee", "e3", grade_band="6-8")
    proposal, types = hx.do(h.propose, "p1", cmd.ProposeMatches(), STAFF, NOW)
    assert types == []
    with hx.db.session() as s:
        view = views.proposal_view(s, proposal.proposal_id)
    pairs = {(p["mentee_id"], p["mentor_id"]): (p["score"], p["reasons"]) for p in view["pairs"]}
    assert pairs == {("e1", "m1"): (6, ["grade_band: 6-8 (+3)", "subjects: math (+3)"]),
                     ("e2", "m2"): (3, ["grade_band: k-2 (+3)"]), ("e3", "m1"): (3, ["grade_band: 6-8 (+3)"])}
    (created, warnings), types = hx.do(h.publish, proposal.proposal_id, cmd.PublishProposal(mentee_ids=["e2"]),
                                       STAFF, NOW)
    assert types == ["MenteeMatched", "MetamentorAssigned"]
    assert warnings == ["metamentor mm1 has 1 partnership(s), below the minimum of 30"]
    (created, _), types = hx.do(h.publish, proposal.proposal_id, cmd.PublishProposal(), STAFF, NOW)
    assert sorted(p.mentee_id for p in created) == ["e1", "e3"]
    assert types.count("MenteeMatched") == 2 and types.count("MetamentorAssigned") == 2
    with pytest.raises(Conflict) as err:
        hx.do(h.publish, proposal.proposal_id, cmd.PublishProposal(mentee_ids=["e1"]), STAFF, NOW)
    assert err.value.problems[0].reason == "'e1' is already published"


def test_publish_refuses_a_stale_pair_naming_the_mentee(hx: Harness) -> None:
    hx.program()
    hx.person("mentor", "m1", capacity=1)
    hx.person("mentee", "e1")
    proposal, _ = hx.do(h.propose, "p1", cmd.ProposeMatches(), STAFF, NOW)
    hx.do(h.change_capacity, "m1", cmd.ChangeCapacity(capacity=0), NOW)
    with pytest.raises(Conflict) as err:
        hx.do(h.publish, proposal.proposal_id, cmd.PublishProposal(), STAFF, NOW)
    assert err.value.problems[0].reason == "mentor 'm1' of 'e1' has no place left"


def test_manual_match_warnings_must_be_confirmed_and_are_recorded(hx: Harness) -> None:
    hx.program(eligibility=Eligibility(training_required=True))
    hx.person("mentor", "m1", capacity=0)
    hx.person("mentee", "e1")
    hx.do(h.ban_pair, "p1", cmd.BanPair(mentee_id="e1", mentor_id="m1", reason="same classroom"), NOW)
    with pytest.raises(Conflict) as err:
        hx.do(h.manual_match, "p1", cmd.ManualMatch(mentee_id="e1", mentor_id="m1"), STAFF, NOW)
    expected = [
        "mentor is not eligible: training not completed; the program requires it",
        "mentor is at capacity (0 of 0)",
        "the pair is banned: same classroom",
    ]
    assert [(p.field, p.reason) for p in err.value.problems] == [("confirm_warnings", w) for w in expected]
    (row, warnings, _), types = hx.do(
        h.manual_match, "p1", cmd.ManualMatch(mentee_id="e1", mentor_id="m1", confirm_warnings=True), STAFF, NOW)
    assert types == ["MenteeMatched"]  # no metamentor in this program: none assigned
    assert warnings == expected and row.manual and row.created_by == "staff-1"
    event = hx.events[-1]
    assert event.event_type == "MenteeMatched" and event.manual and event.warnings == expected


def test_rematch_ends_the_partnership_and_never_proposes_the_previous_mentor(hx: Harness) -> None:
    hx.program()
    hx.person("mentor", "best", grade_band="6-8", subjects=["math"], capacity=3)
    hx.person("mentor", "other", capacity=3)
    hx.person("mentee", "e1", grade_band="6-8", subjects=["math"])
    (row, _, _), _ = hx.do(h.manual_match, "p1", cmd.ManualMatch(mentee_id="e1", mentor_id="best"), STAFF, NOW)
    proposal, types = hx.do(h.request_rematch, row.partnership_id,
                            cmd.RequestRematch(requested_by="mentee", reason="schedules clash"), h.Actor("e1"), NOW)
    assert types == ["PartnershipEnded", "RematchRequested"]
    assert hx.events[-2].reason == "rematch requested by the mentee: schedules clash"
    with hx.db.session() as s:
        view = views.proposal_view(s, proposal.proposal_id)
    assert [(p["mentee_id"], p["mentor_id"]) for p in view["pairs"]] == [("e1", "other")]
    (created, _), _ = hx.do(h.publish, proposal.proposal_id, cmd.PublishProposal(), STAFF, NOW)
    assert created[0].previous_partnership_id == row.partnership_id


def test_pause_lists_mentees_awaiting_transition_until_each_is_decided(hx: Harness) -> None:
    hx.program()
    hx.person("mentor", "m1", capacity=3)
    hx.person("mentor", "m2", capacity=3)
    ps = {}
    for e in ("e1", "e2", "e3"):
        hx.person("mentee", e)
        (row, _, _), _ = hx.do(h.manual_match, "p1", cmd.ManualMatch(mentee_id=e, mentor_id="m1"), STAFF, NOW)
        ps[e] = row.partnership_id
    transitions, types = hx.do(h.pause_mentor, "m1", cmd.PauseMentor(reason="leave"), STAFF, NOW)
    assert types == ["MentorPaused"] and sorted(hx.events[-1].partnership_ids) == sorted(ps.values())
    with hx.db.session() as s:
        assert {m["person_id"]: m["matching_state"] for m in views.people(s, "p1", "mentee")} == dict.fromkeys(
            ("e1", "e2", "e3"), "awaiting_transition")
    by_mentee = {t.mentee_id: t.transition_id for t in transitions}
    (_, proposal), types = hx.do(h.decide_transition, by_mentee["e1"], cmd.DecideTransition(decision="reassign"),
                                 STAFF, NOW)
    assert types == ["PartnershipEnded"] and proposal is not None
    with hx.db.session() as s:
        assert [p["mentor_id"] for p in views.proposal_view(s, proposal.proposal_id)["pairs"]] == ["m2"]
    _, types = hx.do(h.decide_transition, by_mentee["e2"], cmd.DecideTransition(decision="hold"), STAFF, NOW)
    assert types == []
    _, types = hx.do(h.decide_transition, by_mentee["e3"], cmd.DecideTransition(decision="end"), STAFF, NOW)
    assert types == ["PartnershipEnded"]
    with hx.db.session() as s:
        assert views.transitions(s, "p1", "awaiting") == []
        states = {m["person_id"]: m["matching_state"] for m in views.people(s, "p1", "mentee")}
    assert states == {"e1": "unmatched", "e2": "matched", "e3": "unmatched"}
    _, types = hx.do(h.resume_mentor, "m1", cmd.ResumeMentor(capacity=2), NOW)
    assert types == ["MentorResumed"]


def test_a_mentor_who_leaves_cannot_hold_mentees(hx: Harness) -> None:
    hx.program()
    hx.person("mentor", "m1", capacity=1)
    hx.person("mentee", "e1")
    hx.do(h.manual_match, "p1", cmd.ManualMatch(mentee_id="e1", mentor_id="m1"), STAFF, NOW)
    [t], _ = hx.do(h.pause_mentor, "m1", cmd.PauseMentor(leaving=True), STAFF, NOW)
    assert hx.events[-1].leaving is True
    with pytest.raises(Conflict) as err:
        hx.do(h.decide_transition, t.transition_id, cmd.DecideTransition(decision="hold"), STAFF, NOW)
    assert err.value.problems[0].field == "decision"


def test_incident_is_listed_open_and_staff_can_end_and_rematch(hx: Harness) -> None:
    hx.program()
    hx.person("mentor", "m1", capacity=1)
    hx.person("mentor", "m2", capacity=1)
    hx.person("mentee", "e1")
    (row, _, _), _ = hx.do(h.manual_match, "p1", cmd.ManualMatch(mentee_id="e1", mentor_id="m1"), STAFF, NOW)
    with pytest.raises(DomainError) as err:
        hx.do(h.report_incident, row.partnership_id, cmd.ReportIncident(reported_by="m2", description="x"), NOW)
    assert err.value.problems[0].field == "reported_by"
    incident, types = hx.do(h.report_incident, row.partnership_id,
                            cmd.ReportIncident(reported_by="e1", description="rude remarks"), NOW)
    assert types == ["IncidentReported"]
    with hx.db.session() as s:
        assert [i["incident_id"] for i in views.incidents(s, "p1", "open")] == [incident.incident_id]
    (_, proposal), types = hx.do(h.resolve_incident, incident.incident_id,
                                 cmd.ResolveIncident(action="end_and_rematch", note="staff stepped in"), STAFF, NOW)
    assert types == ["PartnershipEnded", "RematchRequested"]
    with hx.db.session() as s:
        assert views.incidents(s, "p1", "open") == []
        assert [p["mentor_id"] for p in views.proposal_view(s, proposal.proposal_id)["pairs"]] == ["m2"]


def test_metamentor_assignment_balances_and_reports_when_range_cannot_be_met(hx: Harness) -> None:
    hx.program(metamentor_caseload_min=1, metamentor_caseload_max=2)
    hx.person("metamentor", "mm1")
    hx.person("metamentor", "mm2")
    hx.person("mentor", "m1", capacity=10)
    warnings: list[str] = []
    for i in range(5):
        hx.person("mentee", f"e{i}")
        (_, _, meta), _ = hx.do(h.manual_match, "p1", cmd.ManualMatch(mentee_id=f"e{i}", mentor_id="m1"), STAFF, NOW)
        warnings += meta
    with hx.db.session() as s:
        loads = {m["person_id"]: m["caseload"] for m in views.people(s, "p1", "metamentor")}
    assert loads == {"mm1": 2, "mm2": 2}
    assert warnings == [
        "metamentor mm2 has 0 partnership(s), below the minimum of 1",  # after the first match
        "1 partnership(s) left without a metamentor: every metamentor is at the maximum caseload of 2",
    ]


def test_profile_update_rejudges_eligibility_and_names_what_changed(hx: Harness) -> None:
    hx.program(eligibility=Eligibility(min_years_in_program=1))
    hx.person("mentor", "m1", years_in_program=0, grade_band="k-2")
    row, types = hx.do(h.update_profile, "m1", cmd.UpdateProfile(years_in_program=2, subjects=["Math"]), NOW)
    assert types == ["MentorProfileUpdated"] and row.eligible
    assert hx.events[-1].changed_fields == ["subjects", "years_in_program", "eligible", "ineligible_reasons"]
    _, types = hx.do(h.update_profile, "m1", cmd.UpdateProfile(years_in_program=2), NOW)
    assert types == []  # nothing changed, nothing said
    with pytest.raises(DomainError) as err:
        hx.do(h.update_profile, "m1", cmd.UpdateProfile(email="nope"), NOW)
    assert err.value.problems[0].field == "email"


def test_the_store_refuses_a_second_active_partnership_for_a_mentee(db: Database) -> None:
    start = datetime(2026, 9, 1, tzinfo=UTC)
    with db.session() as s:
        s.add(PartnershipRow(partnership_id="a", program_id="p", mentor_id="m1", mentee_id="e", started_at=start,
                             status="ended"))
        s.add(PartnershipRow(partnership_id="b", program_id="p", mentor_id="m2", mentee_id="e", started_at=start))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(PartnershipRow(partnership_id="c", program_id="p", mentor_id="m3", mentee_id="e", started_at=start))


def _each_as_listed(hx: Harness) -> None:
    """Every person and partnership read by id equals its item in the program's list."""
    with hx.db.session() as s:
        for kind in ("mentor", "mentee", "metamentor"):
            for item in views.people(s, "p1", kind):
                assert views.person(s, item["person_id"]) == item
        for item in views.partnerships(s, "p1", None):
            assert views.partnership(s, item["partnership_id"]) == item


def test_a_person_or_partnership_read_by_id_is_what_the_program_lists_show(hx: Harness) -> None:
    hx.program()
    hx.person("metamentor", "mm1")
    hx.person("mentor", "m1", capacity=3)
    hx.person("mentor", "m2", capacity=3)
    for e in ("e1", "e2", "e3"):
        hx.person("mentee", e)
    for e, m in (("e1", "m1"), ("e2", "m1"), ("e3", "m2")):
        hx.do(h.manual_match, "p1", cmd.ManualMatch(mentee_id=e, mentor_id=m), STAFF, NOW)
    hx.person("mentee", "e4")
    _each_as_listed(hx)
    with hx.db.session() as s:
        assert views.person(s, "m1")["mentees"] == 2 and views.person(s, "mm1")["caseload"] == 3
        assert views.person(s, "e4")["matching_state"] == "unmatched"
    hx.do(h.pause_mentor, "m1", cmd.PauseMentor(reason="leave"), STAFF, NOW)
    _each_as_listed(hx)
    with hx.db.session() as s:
        assert views.person(s, "e1")["matching_state"] == "awaiting_transition"
        assert views.person(s, "e3")["matching_state"] == "matched"


def test_reading_an_unknown_person_or_partnership_names_the_field(hx: Harness) -> None:
    hx.program()
    with hx.db.session() as s, pytest.raises(NotFound) as err:
        views.person(s, "nobody")
    assert (err.value.problems[0].field, err.value.problems[0].reason) == ("person_id", "no person 'nobody'")
    with hx.db.session() as s, pytest.raises(NotFound) as err:
        views.partnership(s, "nope")
    assert (err.value.problems[0].field, err.value.problems[0].reason) == ("partnership_id", "no partnership 'nope'")
