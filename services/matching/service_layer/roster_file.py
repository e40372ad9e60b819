"""What a roster file may be before its rows are judged: bounds that keep one upload from holding
the service (and its answer) for minutes, and values the store can keep.

File-level refusals (the whole file; each names the line and the limit):
- a NUL character: a roster is text (PostgreSQL cannot store NUL in text either);
- not readable as CSV, e.g. a value over the csv module's own limit of 131,072 characters;
- a row of more than MAX_COLUMNS values (a roster has 13 known columns);
- more than MAX_ROWS rows: split the file. An import is one transaction of ~0.3-1 ms a row (an
  idle or a loaded 2-core machine): 10,000 rows took over 10 s under load, 5,000 stay well under.

Row-level problems (reported like any bad row, so `import_good_rows` still imports the rest): a
name or email longer than the JSON API allows (300 characters, the store's column), any other value
longer than MAX_VALUE_CHARS.

A refusal lists at most MAX_REPORTED row problems, then how many more there are.
"""

from __future__ import annotations

import csv
import io

from services.matching.domain.roster import Roster, RowError
from shared.errors import DomainError

MAX_ROWS = 5_000
MAX_VALUE_CHARS = 1_000
MAX_COLUMNS = 100
COLUMN_LIMITS = {"name": 300, "email": 300}
MAX_REPORTED = 100


class RosterTooLarge(DomainError):
    status = 413


def normalise_newlines(text: str) -> str:
    """Line breaks as csv reads them: a file saved with CR alone (old Mac spreadsheets) or a stray
    CR in a value made the csv module raise instead of reading rows."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def check_file(text: str) -> None:
    """Refuse a file no roster can be; rows are judged afterwards by parse_roster."""
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DomainError("file", f"line {line}: a NUL character; a roster is a text file, not binary data",
                          "binary")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = 0
    try:
        for record in reader:
            if not record:  # blank lines are not rows
                continue
            rows += 1
            if len(record) > MAX_COLUMNS:
                raise DomainError("file", f"line {reader.line_num}: {len(record)} values; a roster has at most "
                                  f"{MAX_COLUMNS} columns", "too_many_columns")
            if rows > MAX_ROWS + 1:  # the header is not a person
                raise RosterTooLarge("file", f"more than {MAX_ROWS} people in one file; split it into files of "
                                     f"at most {MAX_ROWS} rows", "too_many_rows")
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            reason = (f"line {reader.line_num}: a value longer than {csv.field_size_limit()} characters "
                      f"(a roster's values are at most {MAX_VALUE_CHARS})")
            raise DomainError("file", reason, "value_too_long") from None
        raise DomainError("file", f"line {reader.line_num}: not readable as CSV ({exc})", "unreadable") from None


def long_values(text: str, roster: Roster) -> None:
    """Add a problem for every over-long value to `roster` and drop those rows from what imports."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    found: list[RowError] = []
    for record in reader:
        for column, value in zip(header, record, strict=False):
            limit = COLUMN_LIMITS.get(column, MAX_VALUE_CHARS)
            if len(value.strip()) > limit:
                found.append(RowError(reader.line_num, column,
                                      f"{len(value.strip())} characters; at most {limit}"))
    if not found:
        return
    bad = {e.line for e in found}
    roster.rows = [r for r in roster.rows if r.line not in bad]
    roster.errors = sorted([*roster.errors, *found], key=lambda e: e.line)


def reported(errors: list[RowError]) -> tuple[list[RowError], int]:
    """The problems to show, and how many more there are."""
    return errors[:MAX_REPORTED], max(0, len(errors) - MAX_REPORTED)
