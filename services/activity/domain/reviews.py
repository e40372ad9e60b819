"""Feedback-quality reviews: the written feedback mentors give, the monthly sample staff review,
and rubric scores. Pure: no I/O.

The sample of a mentor's month is random but reproducible: the generator is seeded from
(program, mentor, month), so every draw over the same entries picks the same ones.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from services.activity.domain.errors import Problems

SCORE_MIN, SCORE_MAX = 1, 4
MAX_SAMPLE = 50


@dataclass(frozen=True)
class Criterion:
    criterion_id: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return {"criterion_id": self.criterion_id, "description": self.description}


def check_feedback(text: str, link: str) -> None:
    p = Problems()
    if not text.strip() and not link.strip():
        p.add("text", "record the feedback's text or a link to it", "required")
    if link.strip() and not link.startswith(("https://", "http://")):
        p.add("link", "a link starts with https:// or http://", "not_a_link")
    if len(text) > 20_000:
        p.add("text", "at most 20000 characters", "too_long")
    p.raise_if_any()


def check_rubric(criteria: tuple[Criterion, ...], sample_size: int) -> None:
    p = Problems()
    if not criteria:
        p.add("criteria", "a rubric needs at least one criterion", "required")
    ids = [c.criterion_id for c in criteria]
    if len(set(ids)) != len(ids) or any(not i for i in ids):
        p.add("criteria", "criterion ids must be present and distinct", "duplicate")
    if not 1 <= sample_size <= MAX_SAMPLE:
        p.add("sample_size", f"from 1 to {MAX_SAMPLE} entries a month", "out_of_range")
    p.raise_if_any()


def sample_seed(program_id: str, mentor_id: str, month: str) -> int:
    digest = hashlib.sha256(f"{program_id}\x1f{mentor_id}\x1f{month}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw_sample(entry_ids: list[str], count: int, program_id: str, mentor_id: str, month: str) -> list[str]:
    """`count` entries (all, when fewer), chosen reproducibly; returned in their sorted order."""
    pool = sorted(entry_ids)
    if len(pool) <= count:
        return pool
    picked = random.Random(sample_seed(program_id, mentor_id, month)).sample(pool, count)
    return sorted(picked)


def check_scores(criteria: tuple[Criterion, ...], scores: dict[str, Any]) -> dict[str, int]:
    p = Problems()
    known = {c.criterion_id for c in criteria}
    for cid in scores:
        if cid not in known:
            p.add(f"scores.{cid}", "no such criterion in the program's rubric", "unknown_criterion")
    clean: dict[str, int] = {}
    for c in criteria:
        value = scores.get(c.criterion_id)
        if value is None:
            p.add(f"scores.{c.criterion_id}", "every criterion needs a score", "required")
        elif isinstance(value, bool) or not isinstance(value, int) or not SCORE_MIN <= value <= SCORE_MAX:
            p.add(f"scores.{c.criterion_id}", f"a score is a whole number from {SCORE_MIN} to {SCORE_MAX}",
                  "out_of_range")
        else:
            clean[c.criterion_id] = value
    p.raise_if_any()
    return clean
