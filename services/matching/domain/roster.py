"""CSV enrolment: parse a roster, report every bad row (line, field, reason), never guess.

Columns (header row required; order free): name, email, grade_band, subjects, role, site,
region, languages, availability, years_in_position, years_in_program, training_completed,
capacity (mentors only). Lists are separated by ";". Line numbers count the header as line 1.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass, field

from services.matching.domain.profiles import Profile

KNOWN_COLUMNS = {
    "name", "email", "grade_band", "subjects", "role", "site", "region", "languages", "availability",
    "years_in_position", "years_in_program", "training_completed", "capacity",
}
TRUE = {"yes", "y", "true", "1"}
FALSE = {"no", "n", "false", "0", ""}
MAX_CAPACITY = 50


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str


@dataclass(frozen=True)
class RosterRow:
    line: int
    name: str
    email: str
    profile: Profile
    capacity: int | None


@dataclass
class Roster:
    rows: list[RosterRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_lines(self) -> set[int]:
        return {e.line for e in self.errors}


def valid_email(email: str) -> bool:
    local, _, domain = email.partition("@")
    return bool(local) and "." in domain and " " not in email


def _int(raw: str, line: int, column: str, errors: list[RowError], *, low: int = 0, high: int | None = None) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        errors.append(RowError(line, column, f"{raw!r} is not a whole number"))
        return None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        errors.append(RowError(line, column, f"must be {bound}, got {value}"))
        return None
    return value


def _list(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(";") if v.strip()]


def parse_roster(text: str, *, kind: str, existing_emails: Collection[str] = ()) -> Roster:
    """Parse a CSV roster of `kind` (mentor, mentee, metamentor)."""
    roster = Roster()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        roster.errors.append(RowError(1, "header", "the file is empty; a header row is required"))
        return roster
    reader.fieldnames = header
    for column in ("name", "email"):
        if column not in header:
            roster.errors.append(RowError(1, column, "required column is missing"))
    for column in header:
        if column not in KNOWN_COLUMNS:
            roster.errors.append(RowError(1, column, "unknown column"))
    if kind != "mentor" and "capacity" in header:
        roster.errors.append(RowError(1, "capacity", f"only mentors have a capacity, not {kind}s"))
    if roster.errors:
        return roster
    seen: dict[str, int] = {}
    existing = {e.casefold() for e in existing_emails}
    for record in reader:
        line = reader.line_num
        errors: list[RowError] = []
        if None in record:
            errors.append(RowError(line, "row", "more values than columns"))
        get = {k: (v or "").strip() for k, v in record.items() if k is not None}
        name, email = get.get("name", ""), get.get("email", "")
        if not name:
            errors.append(RowError(line, "name", "required"))
        if not email:
            errors.append(RowError(line, "email", "required"))
        elif not valid_email(email):
            errors.append(RowError(line, "email", f"{email!r} is not an email address"))
        elif email.casefold() in seen:
            errors.append(RowError(line, "email", f"duplicate of line {seen[email.casefold()]}"))
        elif email.casefold() in existing:
            errors.append(RowError(line, "email", f"already enrolled as a {kind} in this program"))
        if email:
            seen.setdefault(email.casefold(), line)
        years_position = _int(get.get("years_in_position", ""), line, "years_in_position", errors, high=80)
        years_program = _int(get.get("years_in_program", ""), line, "years_in_program", errors, high=80)
        capacity = _int(get.get("capacity", ""), line, "capacity", errors, high=MAX_CAPACITY)
        training_raw = get.get("training_completed", "").casefold()
        if training_raw not in TRUE | FALSE:
            errors.append(RowError(line, "training_completed", f"{training_raw!r} is not yes or no"))
        if errors:
            roster.errors.extend(errors)
            continue
        roster.rows.append(RosterRow(
            line=line, name=name, email=email, capacity=capacity,
            profile=Profile.of(
                grade_band=get.get("grade_band") or None, subjects=_list(get.get("subjects", "")),
                role=get.get("role") or None, site=get.get("site") or None, region=get.get("region") or None,
                languages=_list(get.get("languages", "")), availability=_list(get.get("availability", "")),
                years_in_position=years_position, years_in_program=years_program,
                training_completed=training_raw in TRUE,
            ),
        ))
    return roster
