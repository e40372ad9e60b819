"""Collects the problems of one request so a refusal names every field that is wrong at once."""

from __future__ import annotations

from shared.errors import DomainError, Problem


class Problems:
    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, field: str, reason: str, code: str = "invalid") -> None:
        self.found.append(Problem(field, reason, code))

    def raise_if_any(self) -> None:
        if self.found:
            first = self.found[0]
            raise DomainError(first.field, first.reason, first.code, problems=list(self.found))
