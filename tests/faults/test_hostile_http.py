"""Hostile HTTP input against the real platform: the gateway fuzzed from its own OpenAPI document
(schemathesis), oversized bodies, and absurd CSV rosters through the whole stack.

Every service runs as a uvicorn process on its own SQLite store, on the session's real broker; the
gateway is in front. What a user of the API would check: no request is answered 5xx, none hangs
(a request over TIMEOUT_S counts as a hang), every refusal is the one error body
{"detail": [{"field", "reason", "code"}]}, and every service still answers /ready afterwards.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from tests.e2e.harness import Gateway, Platform, running_platform, wait_for
from tests.faults.conftest import record
from tests.mail import RecordingSMTP, smtp_server

pytestmark = [pytest.mark.faults, pytest.mark.kafka]

TIMEOUT_S = 10.0  # a request that takes longer is a hang
BODY_LIMIT = 5 * 1024 * 1024  # the gateway's default MENTORING_GATEWAY_MAX_BODY_BYTES, as shipped
# Generated cases per operation and mode (admin: valid + invalid data, mentor: valid data), besides
# the document's own examples: ~2,000 requests over the 108 operations, about a minute.
EXAMPLES = 5

PROGRAM_ID = "prog-hostile"
POLICY = {
    "timezone": "America/Denver",
    "cadence": {"intentional_meetings_per_month": 2},
    "matching": {"metamentor_caseload_min": 0, "metamentor_caseload_max": 40},
    "pay": {"currency": "USD", "hourly_rates": {"meeting": "40.00", "planning": "30.00", "workshop": "50.00"}},
}
MENTORS_CSV = (
    "name,email,grade_band,subjects,role,site,years_in_position,training_completed,capacity\n"
    "Maria Lopez,maria.lopez@hostile.example.org,6-8,math,teacher,Lincoln MS,4,yes,2\n"
    "Tom Baker,tom.baker@hostile.example.org,K-5,reading,teacher,Adams ES,6,yes,1\n"
)
MENTEES_CSV = (
    "name,email,grade_band,subjects,role,site\n"
    "Ana Ruiz,ana.ruiz@hostile.example.org,6-8,math,teacher,Lincoln MS\n"
    "Ben Cole,ben.cole@hostile.example.org,K-5,reading,teacher,Adams ES\n"
)
METAMENTORS_CSV = "name,email\nGrace Hill,grace.hill@hostile.example.org\n"
MATCH_DAY = "2026-12-01T16:00:00+00:00"
MID_MONTH = "2026-12-10T18:00:00+00:00"
CSV = {"Content-Type": "text/csv"}


# -- the platform, with a little real data -------------------------------------------------------
@dataclass
class World:
    platform: Platform
    mentor_token: str
    # Real values for path parameters, by parameter name (the fuzzer uses them half of the time).
    known: dict[str, str] = field(default_factory=dict)

    def admin(self) -> Gateway:
        return self.platform.client(self.platform.admin_token)


@pytest.fixture(scope="module")
def smtp() -> Iterator[RecordingSMTP]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def world(bootstrap: str, smtp: RecordingSMTP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("hostile")
    with running_platform(bootstrap, data, smtp, tag="hostile") as platform:
        try:
            yield seed(platform)
        except BaseException:
            print(platform.log_tails())
            raise


def seed(platform: Platform) -> World:
    """A program, its people from CSV, a published matching, a mentor user with a meeting and time."""
    admin = platform.client(platform.admin_token)
    admin.post("/ops/clock", {"now": MATCH_DAY})
    admin.post("/programs", {"program_id": PROGRAM_ID, "name": "Hostile input", "policy": POLICY}, expect=201)
    ids = {kind: admin.call("POST", f"/programs/{PROGRAM_ID}/{kind}/import", 201, content=text,
                            headers=CSV).json()["person_ids"]
           for kind, text in (("mentors", MENTORS_CSV), ("mentees", MENTEES_CSV), ("metamentors", METAMENTORS_CSV))}
    proposal = admin.post(f"/programs/{PROGRAM_ID}/proposals", {}, expect=201)
    partnerships = admin.post(f"/proposals/{proposal['proposal_id']}/publish", {})["partnerships"]
    pair = next(p for p in partnerships if p["mentor_id"] == ids["mentors"][0])
    user = admin.post("/users", {"name": "Maria Lopez", "role": "mentor", "program_ids": [PROGRAM_ID],
                                 "person_id": pair["mentor_id"], "email": "maria.lopez@hostile.example.org"},
                      expect=201)
    mentor_token = admin.post(f"/users/{user['id']}/tokens", {"label": "fuzz"}, expect=201)["token"]
    spare = admin.post(f"/users/{user['id']}/tokens", {"label": "spare"}, expect=201)
    admin.post("/ops/clock", {"now": MID_MONTH})
    mentor = platform.client(mentor_token)
    wait_for(lambda: mentor.http.get(f"/partnerships/{pair['partnership_id']}/compliance").status_code == 200,
             "activity knows the partnership", 60)
    meeting = mentor.post("/meetings", {"partnership_id": pair["partnership_id"],
                                        "started_at": "2026-12-03T16:30:00-07:00", "duration_minutes": 45,
                                        "mode": "video", "intentional": True}, expect=201)
    entry = mentor.post("/time-entries", {"program_id": PROGRAM_ID, "kind": "workshop", "work_date": "2026-12-08",
                                          "minutes": 60}, expect=201)
    known = {
        "program_id": PROGRAM_ID, "mentor_id": pair["mentor_id"], "person_id": pair["mentee_id"],
        "partnership_id": pair["partnership_id"], "proposal_id": proposal["proposal_id"],
        "meeting_id": meeting["meeting_id"], "entry_id": entry["entry_id"], "user_id": user["id"],
        "token_id": spare["id"], "service": "activity",
    }
    return World(platform, mentor_token, known)


def assert_all_ready(platform: Platform) -> None:
    for name, proc in platform.system.services.items():
        assert proc.proc is not None and proc.proc.poll() is None, f"{name} exited:\n{proc.log_tail()}"
        r = httpx.get(proc.url + "/ready", timeout=TIMEOUT_S)
        assert r.status_code == 200, f"{name} not ready after hostile input: {r.status_code} {r.text}"


# -- the one error body ----------------------------------------------------------------------------
def error_shape_problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why a 4xx answer is not the one error body, or None when it is."""
    if not content_type.startswith("application/json"):
        return f"{status} with content type {content_type!r}, not JSON"
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:200]!r}"
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    if not isinstance(detail, list) or not detail:
        return f"{status} without a list of problems: {body[:300]!r}"
    for problem in detail:
        if not isinstance(problem, dict) or not all(isinstance(problem.get(k), str) and problem.get(k)
                                                    for k in ("field", "reason", "code")):
            return f"{status} with a problem that lacks field, reason or code: {problem!r}"
    return None


# -- the fuzzer ------------------------------------------------------------------------------------
@dataclass
class Fuzzed:
    requests: int = 0
    operations: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    slowest_s: float = 0.0
    failures: list[str] = field(default_factory=list)

    def fail(self, case: Any, role: str, what: str) -> None:
        if len(self.failures) < 200:
            sent = f"path {case.path_parameters!r} query {case.query!r} body {str(case.body)[:300]!r}"
            self.failures.append(f"{case.method} {case.formatted_path} as {role}: {what}\n    {sent}\n"
                                 f"    {_curl(case)}")


def _curl(case: Any) -> str:
    try:
        return str(case.as_curl_command())
    except Exception:  # the reproduction is a courtesy
        return ""


def fuzz(schema_url: str, base_url: str, tokens: dict[str, str], known: dict[str, str],
         examples: int = EXAMPLES) -> Fuzzed:
    """Every operation of the document: its documented examples and `examples` generated cases per
    mode as the admin (valid and invalid data), `examples` valid cases as the mentor; half of the
    generated cases use real resource ids for the path parameters `known` names."""
    schema = schemathesis.openapi.from_url(schema_url, timeout=TIMEOUT_S)
    out = Fuzzed()
    sessions = {role: requests.Session() for role in tokens}
    plan = [("admin", GenerationMode.POSITIVE), ("admin", GenerationMode.NEGATIVE), ("mentor", GenerationMode.POSITIVE)]

    def call(case: Any, role: str, real_ids: bool) -> None:
        if real_ids:
            for name in list(case.path_parameters or {}):
                if name in known:
                    case.path_parameters[name] = known[name]
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        started = time.monotonic()
        try:
            response = case.call(base_url=base_url, session=sessions[role], headers=headers, timeout=TIMEOUT_S)
        except requests.Timeout:
            out.requests += 1
            out.fail(case, role, f"no answer within {TIMEOUT_S}s (a hang)")
            return
        except requests.RequestException as exc:
            out.requests += 1
            out.fail(case, role, f"the connection failed: {exc!r}")
            return
        elapsed = time.monotonic() - started
        out.requests += 1
        out.slowest_s = max(out.slowest_s, elapsed)
        status = response.status_code
        out.statuses[status] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance],
                                   headers=headers)
        except (AssertionError, FailureGroup) as exc:
            out.fail(case, role, f"{status}: {str(exc)[:1500]}")
            return
        if 400 <= status < 500:
            content_type = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type"), "")
            why = error_shape_problem(status, content_type, response.content)
            if why:
                out.fail(case, role, why)

    settings = hypothesis.settings(
        max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )

    def run_as(role: str) -> Any:
        def run(case: Any, real_ids: bool) -> None:
            call(case, role, real_ids)
        return run

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an operation schemathesis cannot read: {result!r}"
        operation = result.ok()
        out.operations += 1
        for strategy in operation.get_strategies_from_examples():
            settings(hypothesis.given(case=strategy, real_ids=st.just(False))(run_as("admin")))()
        for role, mode in plan:
            strategy = operation.as_strategy(generation_mode=mode)
            try:
                settings(hypothesis.given(case=strategy, real_ids=st.booleans())(run_as(role)))()
            except Unsatisfiable:  # no invalid request to make (an operation without parameters or body)
                assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request generated"
    for session in sessions.values():
        session.close()
    return out


def test_the_gateway_fuzzed_from_its_own_openapi_document(world: World) -> None:
    platform = world.platform
    started = time.monotonic()
    found = fuzz(platform.gateway_url + "/openapi.json", platform.gateway_url,
                 {"admin": platform.admin_token, "mentor": world.mentor_token}, world.known)
    took = time.monotonic() - started
    print(f"\nschemathesis: {found.requests} requests over {found.operations} operations in {took:.0f}s; "
          f"statuses {dict(sorted(found.statuses.items()))}; slowest {found.slowest_s:.2f}s")
    classes: Counter[str] = Counter()
    for status, n in found.statuses.items():
        classes[f"{status // 100}xx"] += n
    answered = ", ".join(f"{n} {c}" for c, n in sorted(classes.items()))
    record(f"gateway fuzzed from its OpenAPI document (schemathesis): {found.operations} operations, admin and "
           f"mentor; answered {answered}; a 5xx, hang or other error body counts as lost",
           sent=found.requests, received=found.requests - len(found.failures), lost=len(found.failures),
           duplicated=0)
    assert found.operations >= 100
    assert not found.failures, f"{len(found.failures)} failures:\n" + "\n".join(found.failures[:40])
    assert_all_ready(platform)


# -- oversized bodies ------------------------------------------------------------------------------
def _chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body without Content-Length (Transfer-Encoding: chunked)."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _post(world: World, path: str, content: bytes | Iterator[bytes], content_type: str,
          **params: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    try:
        r = httpx.post(world.platform.gateway_url + "/api/v1" + path, content=content, params=params or None,
                       headers={"Authorization": f"Bearer {world.platform.admin_token}",
                                "Content-Type": content_type}, timeout=TIMEOUT_S)
    except httpx.TimeoutException:
        raise AssertionError(f"POST {path}: no answer within {TIMEOUT_S}s (a hang)") from None
    return r, time.monotonic() - started


def _refused(r: httpx.Response, status: int, field: str | None, code: str) -> str:
    """Assert the one error body (its first problem's field, unless None, and code); return its reason."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    why = error_shape_problem(r.status_code, r.headers.get("content-type", ""), r.content)
    assert why is None, why
    first = r.json()["detail"][0]
    assert first["code"] == code and field in (None, first["field"]), r.text[:500]
    return str(first["reason"])


def _count(world: World, path: str) -> int:
    return len(world.admin().get(path))


def test_an_oversized_json_body_is_refused_with_and_without_content_length(world: World) -> None:
    programs = _count(world, "/programs")
    body = b'{"program_id": "too-big", "name": "' + b"x" * BODY_LIMIT + b'"}'
    for content in (body, _chunked(body)):
        r, took = _post(world, "/programs", content, "application/json")
        assert _refused(r, 413, "body", "too_large") == f"request body larger than {BODY_LIMIT} bytes"
        assert took < TIMEOUT_S
    # One byte under the limit is read and judged by the service (a name that long is refused there).
    under = b'{"program_id": "just-under", "name": "' + b"x" * (BODY_LIMIT - 40) + b'"}'
    assert len(under) <= BODY_LIMIT
    r, _ = _post(world, "/programs", _chunked(under), "application/json")
    assert _refused(r, 422, "name", "string_too_long")
    assert _count(world, "/programs") == programs
    record("JSON body over the gateway's limit, with and without Content-Length", sent=3, received=3, lost=0,
           duplicated=0)
    assert_all_ready(world.platform)


@pytest.mark.parametrize("kinds", ["mentors", "mentees"])
def test_an_oversized_csv_import_is_refused_naming_the_limit(world: World, kinds: str) -> None:
    before = _count(world, f"/programs/{PROGRAM_ID}/{kinds}")
    row = b"Over Size,over.size%d@hostile.example.org\n"
    roster = b"name,email\n" + b"".join(row % i for i in range(BODY_LIMIT // len(row) + 10))
    assert len(roster) > BODY_LIMIT
    for content in (roster, _chunked(roster)):
        r, took = _post(world, f"/programs/{PROGRAM_ID}/{kinds}/import", content, "text/csv")
        assert str(BODY_LIMIT) in _refused(r, 413, "body", "too_large") and took < TIMEOUT_S
    assert _count(world, f"/programs/{PROGRAM_ID}/{kinds}") == before
    record(f"{kinds} CSV over the gateway's limit, with and without Content-Length", sent=2, received=2, lost=0,
           duplicated=0)


# -- absurd rosters just under the limit -------------------------------------------------------------
ABSURD_PROGRAM = "prog-absurd"
ROW_LIMIT = 5_000  # matching's MAX_ROWS: people per file


def _roster(n: int, start: int = 0) -> bytes:
    return b"name,email\n" + b"".join(b"Person %d,person%d@absurd.example.org\n" % (i, i)
                                      for i in range(start, start + n))


ABSURD: list[tuple[str, bytes, int, str]] = [
    # (what, the file, the status, the code of the first problem; 201 = imported)
    ("a million tiny rows", b"name,email\n" + b"a,b\n" * 1_000_000, 413, "too_many_rows"),
    ("one row over the row limit", _roster(ROW_LIMIT + 1), 413, "too_many_rows"),
    ("a 1 MB single value", b"name,email\nBig,big@absurd.example.org\nx," + b"y" * 1_000_000 + b"\n", 400,
     "value_too_long"),
    ("a 4 MB value in quotes, never closed", b'name,email\n"' + b"q" * 4_000_000, 400, "value_too_long"),
    ("a name longer than the store keeps", b"name,email\n" + b"N" * 301 + b",n@absurd.example.org\n", 422,
     "invalid_row"),
    ("a Latin-1 file (not UTF-8)", "name,email\nJosé Núñez,jose@absurd.example.org\n".encode("latin-1"), 400,
     "encoding"),
    ("a binary file", random.Random(8).randbytes(BODY_LIMIT - 1024), 400, "encoding"),
    ("NUL bytes in UTF-8 text", b"name,email\nNul\x00Person,nul@absurd.example.org\n", 400, "binary"),
    ("5,000 bad rows (a short report)", b"name,email\n" + b"".join(b"n%d,not-an-email-%d\n" % (i, i)
                                                                        for i in range(ROW_LIMIT)), 422,
     "invalid_row"),
    ("a header of 500,000 columns", b",".join(b"c%d" % i for i in range(500_000)) + b"\nx\n", 400,
     "too_many_columns"),
    ("old Mac line breaks (CR alone)", b"name,email\rCr One,cr1@absurd.example.org\rCr Two,cr2@absurd.example.org\r",
     201, ""),
    ("5,000 people, the most one file may hold", _roster(ROW_LIMIT), 201, ""),
]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def absurd_program(world: World) -> str:
    world.admin().post("/programs", {"program_id": ABSURD_PROGRAM, "name": "Absurd rosters", "policy": POLICY},
                       expect=201)
    return ABSURD_PROGRAM


@pytest.mark.parametrize("what, content, status, code", ABSURD, ids=[a[0] for a in ABSURD])
def test_an_absurd_roster_under_the_limit_is_refused_clearly_or_imported(
    world: World, absurd_program: str, what: str, content: bytes, status: int, code: str
) -> None:
    assert len(content) <= BODY_LIMIT, what
    matching = world.platform.system.services["matching"]
    assert matching.proc is not None
    peak_before = _peak_rss_mb(matching.proc.pid)
    people = f"/programs/{absurd_program}/mentees"
    before = _count(world, people)
    r, took = _post(world, f"/programs/{absurd_program}/mentees/import", _chunked(content), "text/csv",
                    import_good_rows="false")
    assert took < TIMEOUT_S, f"{what}: {took:.1f}s"
    if status == 201:
        assert r.status_code == 201, f"{what}: {r.status_code} {r.text[:500]}"
        imported = r.json()["imported"]
        assert imported == content.count(b"@") and _count(world, people) == before + imported
    else:
        assert _refused(r, status, None, code), what
        assert len(r.content) < 64 * 1024, f"{what}: a {len(r.content)}-byte refusal"
        assert _count(world, people) == before
    # Memory: the process's peak grows by what one bounded request needs, not by the file's rows.
    grown = _peak_rss_mb(matching.proc.pid) - peak_before
    assert grown < 200, f"{what}: matching's peak memory grew by {grown:.0f} MB"
    assert_all_ready(world.platform)


def test_matching_a_pool_from_the_largest_roster_stays_bounded(world: World) -> None:
    """The largest roster one file may hold, then a proposal over the whole pool: both in time."""
    admin = world.admin()
    program = "prog-largest"
    admin.post("/programs", {"program_id": program, "name": "Largest roster", "policy": POLICY}, expect=201)
    r, took = _post(world, f"/programs/{program}/mentees/import", _roster(ROW_LIMIT), "text/csv")
    assert r.status_code == 201 and r.json()["imported"] == ROW_LIMIT and took < TIMEOUT_S, (took, r.text[:300])
    admin.call("POST", f"/programs/{program}/mentors/import", 201, headers=CSV,
               content=MENTORS_CSV.replace("hostile.example.org", "largest.example.org"))
    r, took = _post(world, f"/programs/{program}/proposals", b"{}", "application/json")
    assert r.status_code == 201, r.text[:500]
    assert r.json()["stats"]["matched"] == 3 and took < TIMEOUT_S, (took, r.json()["stats"])  # 3 places
    record(f"absurd rosters under the body limit ({len(ABSURD)} files); a proposal over {ROW_LIMIT} mentees",
           sent=len(ABSURD) + 2, received=len(ABSURD) + 2, lost=0, duplicated=0)
    assert_all_ready(world.platform)
