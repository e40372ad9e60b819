"""Roster files that are no roster: refused before (or while) their rows are judged, with the line
and the limit named; bad-row reports stay small. Found by the hostile-input fault test
(tests/faults/test_hostile_http.py): a 1 MB value was a 500, a million bad rows a 92 MB answer,
400,000 good rows a 2-minute request."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.matching.entrypoints import http
from services.matching.entrypoints.app import create_app
from services.matching.service_layer import commands as cmd
from services.matching.service_layer import handlers as h
from services.matching.service_layer import roster_file
from services.matching.service_layer.roster_file import MAX_REPORTED, MAX_ROWS
from services.matching.tests.conftest import NOW, FakeUnitOfWork
from shared.db import Database
from shared.errors import DomainError
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit
STAFF = h.Actor("staff-1", "staff")


def _import(db: Database, text: str, *, good_rows: bool = False, kind: cmd.PersonKind = "mentee") -> tuple[int, int]:
    """(people imported, problems reported) — a refusal raises."""
    with db.session() as s:
        uow = FakeUnitOfWork(s)
        if s.get(h.ProgramRow, "p1") is None:
            h.configure_program(uow, cmd.ConfigureProgram(program_id="p1", name="P"), STAFF, NOW)
        people, roster = h.import_roster(uow, "p1", kind, text, import_good_rows=good_rows, actor=STAFF, now=NOW)
        return len(people), len(roster.errors)


def _refusal(db: Database, text: str) -> tuple[int, dict[str, str]]:
    with pytest.raises(DomainError) as err:
        _import(db, text)
    return err.value.status, err.value.body()["detail"][0]


def test_a_million_rows_are_refused_at_once_naming_the_limit(db: Database) -> None:
    started = time.monotonic()
    status, problem = _refusal(db, "name,email\n" + "a,b\n" * 1_000_000)
    assert time.monotonic() - started < 5
    assert status == 413
    assert problem == {"field": "file", "code": "too_many_rows", "reason": f"more than {MAX_ROWS} people in one "
                       f"file; split it into files of at most {MAX_ROWS} rows"}


def test_the_row_limit_counts_people_not_the_header_or_blank_lines() -> None:
    rows = "".join(f"P{i},p{i}@x.org\n" for i in range(MAX_ROWS))
    roster_file.check_file("name,email\n\n" + rows + "\n\n")  # at the limit: judged row by row
    with pytest.raises(DomainError) as err:
        roster_file.check_file("name,email\n" + rows + "one,more@x.org\n")
    assert err.value.problems[0].code == "too_many_rows"


def test_a_value_beyond_what_csv_reads_is_refused_with_its_line(db: Database) -> None:
    status, problem = _refusal(db, "name,email\nok,ok@x.org\nx," + "a" * 1_000_000 + "\n")
    assert status == 400 and problem["code"] == "value_too_long"
    assert problem["reason"].startswith("line 3: a value longer than 131072 characters")


def test_a_row_of_more_values_than_any_roster_has_columns_is_refused_at_once(db: Database) -> None:
    status, problem = _refusal(db, ",".join(f"c{i}" for i in range(500_000)) + "\nx\n")
    assert (status, problem["code"]) == (400, "too_many_columns")
    assert problem["reason"] == "line 1: 500000 values; a roster has at most 100 columns"
    status, problem = _refusal(db, "name,email\nA,a@x.org\n" + "v," * 200 + "\n")
    assert problem["reason"] == "line 3: 201 values; a roster has at most 100 columns"


def test_nul_characters_mean_binary_data(db: Database) -> None:
    status, problem = _refusal(db, "name,email\nok,ok@x.org\nx\x00y,a@b.org\n")
    assert (status, problem["code"]) == (400, "binary") and problem["reason"].startswith("line 3: a NUL character")


def test_an_unreadable_csv_names_its_line() -> None:
    with pytest.raises(DomainError) as err:
        roster_file.check_file("name,email\nok,ok@x.org\na\rb,c@x.org\n")
    assert err.value.problems[0].code == "unreadable" and err.value.problems[0].reason.startswith("line 3: ")


def test_carriage_returns_alone_are_line_breaks(db: Database) -> None:
    """A file from an old Mac spreadsheet: each CR ends a row (the csv module raised on them)."""
    assert _import(db, "name,email\rAna,ana@x.org\rBen,ben@x.org\r") == (2, 0)
    assert _import(db, "name,email\r\nCleo,cleo@x.org\r\n") == (1, 0)


def test_values_longer_than_the_store_keeps_are_bad_rows_not_a_500(db: Database) -> None:
    text = "name,email,site\n" + "N" * 301 + ",long@x.org,s\nok,ok@x.org," + "s" * 1001 + "\ngood,good@x.org,s\n"
    with pytest.raises(h.RosterRejected) as err:
        _import(db, text)
    assert err.value.body()["detail"] == [
        {"line": 2, "field": "name", "reason": "301 characters; at most 300", "code": "invalid_row"},
        {"line": 3, "field": "site", "reason": "1001 characters; at most 1000", "code": "invalid_row"},
    ]
    assert _import(db, text, good_rows=True) == (1, 2)


def test_a_file_of_bad_rows_reports_the_first_ones_and_how_many_more(db: Database) -> None:
    with pytest.raises(h.RosterRejected) as err:
        _import(db, "name,email\n" + "".join(f"n{i},bad{i}\n" for i in range(5000)))
    detail = err.value.body()["detail"]
    assert len(detail) == MAX_REPORTED + 1 and len(err.value.problems) == MAX_REPORTED + 1
    assert detail[0] == {"line": 2, "field": "email", "reason": "'bad0' is not an email address", "code": "invalid_row"}
    assert detail[-1] == {"field": "file", "code": "more_invalid_rows",
                          "reason": "4900 more problems not shown (5000 in all, on 5000 lines); fix these and "
                          "import again"}


async def test_the_http_api_refuses_a_file_over_its_size_without_reading_it_all(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the store or the broker are touched (no lifespan here): the size, declared or
    streamed, and the encoding, naming the line of the first bad byte."""
    monkeypatch.setattr(http, "MAX_CSV_BYTES", 100)
    app = create_app(ServiceSettings(data_dir=tmp_path))
    csv_type = {"Content-Type": "text/csv"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(10):
            yield b"x" * 20

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://matching") as client:
        for content in (b"x" * 101, chunks()):
            r = await client.post("/programs/p1/mentors/import", content=content, headers=csv_type)
            assert r.status_code == 413, r.text
            assert r.json()["detail"] == [{"field": "file", "code": "too_large", "reason": "larger than 100 bytes "
                                           "(9.53674e-05 MiB); split it into smaller files"}]
        r = await client.post("/programs/p1/mentors/import", content=b"name,email\nJos\xe9,j@x.org\n", headers=csv_type)
        assert r.status_code == 400
        assert r.json()["detail"][0]["reason"] == "not UTF-8 text (line 2: byte 0xe9); save the file as CSV UTF-8"
