"""Surveys: questions, schedules, answers and the "is this a good fit?" flag. Pure: no I/O.

A survey belongs to a program and has one schedule:
- `first_meeting`: one round per partnership, opened once its first meeting is logged;
- `periodic`: one round every `every_days` days from `start_date` (program-local dates) for all
  the program's mentors; only the latest due round opens (a service that was down does not send
  a backlog of stale surveys);
- `partnership_end`: one round per partnership, once it has ended;
- `on_date`: one round on `start_date` (e.g. the end of the school year) for all mentors.
A round is named by a key unique per survey, so whichever instance opens it first wins and it
opens once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.activity.domain.errors import Problems


class QuestionKind(StrEnum):
    RATING = "rating"  # 1..5
    CHOICE = "choice"
    TEXT = "text"


class ScheduleKind(StrEnum):
    FIRST_MEETING = "first_meeting"
    PERIODIC = "periodic"
    PARTNERSHIP_END = "partnership_end"
    ON_DATE = "on_date"

    @property
    def per_partnership(self) -> bool:
        return self in (ScheduleKind.FIRST_MEETING, ScheduleKind.PARTNERSHIP_END)


RATING_MIN, RATING_MAX = 1, 5


@dataclass(frozen=True)
class Question:
    question_id: str
    kind: QuestionKind
    prompt: str
    options: tuple[str, ...] = ()
    required: bool = True
    # A choice whose answer flags the partnership for staff (e.g. "not a good fit").
    flag_answer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "kind": self.kind.value, "prompt": self.prompt,
                "options": list(self.options), "required": self.required, "flag_answer": self.flag_answer}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Question:
        return cls(raw["question_id"], QuestionKind(raw["kind"]), raw["prompt"], tuple(raw.get("options", ())),
                   bool(raw.get("required", True)), raw.get("flag_answer"))


@dataclass(frozen=True)
class SurveyDraft:
    program_id: str
    title: str
    questions: tuple[Question, ...]
    schedule: ScheduleKind
    every_days: int | None = None
    start_date: date | None = None
    remind_after_days: int | None = None


def check_survey(draft: SurveyDraft) -> None:
    """Refuses a survey that cannot be answered or scheduled, naming every wrong field."""
    p = Problems()
    if not draft.title.strip():
        p.add("title", "a survey needs a title", "required")
    if not draft.questions:
        p.add("questions", "a survey needs at least one question", "required")
    seen: set[str] = set()
    for i, q in enumerate(draft.questions):
        at = f"questions[{i}]"
        if not q.question_id or q.question_id in seen:
            p.add(f"{at}.question_id", "question ids must be present and distinct", "duplicate")
        seen.add(q.question_id)
        if not q.prompt.strip():
            p.add(f"{at}.prompt", "a question needs a prompt", "required")
        if q.kind is QuestionKind.CHOICE and len(q.options) < 2:
            p.add(f"{at}.options", "a choice question needs at least two options", "too_few")
        if q.kind is not QuestionKind.CHOICE and q.options:
            p.add(f"{at}.options", "only choice questions have options", "not_allowed")
        if q.flag_answer is not None and (q.kind is not QuestionKind.CHOICE or q.flag_answer not in q.options):
            p.add(f"{at}.flag_answer", "must be one of the options of a choice question", "not_an_option")
        if q.flag_answer is not None and not draft.schedule.per_partnership:
            p.add(f"{at}.flag_answer", "only a survey about one partnership can flag it", "not_allowed")
    if draft.schedule is ScheduleKind.PERIODIC:
        if draft.every_days is None or draft.every_days < 1:
            p.add("every_days", "a periodic survey needs every_days >= 1", "required")
        if draft.start_date is None:
            p.add("start_date", "a periodic survey needs a start date", "required")
    elif draft.schedule is ScheduleKind.ON_DATE:
        if draft.start_date is None:
            p.add("start_date", "a dated survey needs the date it goes out", "required")
    elif draft.every_days is not None:
        p.add("every_days", "only periodic surveys repeat", "not_allowed")
    if draft.remind_after_days is not None and draft.remind_after_days < 1:
        p.add("remind_after_days", "must be at least 1 day", "too_small")
    p.raise_if_any()


def due_round_key(schedule: ScheduleKind, start_date: date | None, every_days: int | None,
                  today: date) -> str | None:
    """The key of the program-wide round due on `today` (local), or None.

    Periodic: the latest start_date + k*every_days <= today; on_date: start_date once reached."""
    if start_date is None or today < start_date:
        return None
    if schedule is ScheduleKind.ON_DATE:
        return f"on:{start_date.isoformat()}"
    if schedule is ScheduleKind.PERIODIC and every_days:
        k = (today - start_date).days // every_days
        return f"periodic:{(start_date + timedelta(days=k * every_days)).isoformat()}"
    return None


def reminder_due(invited_at: datetime, remind_after_days: int | None, now: datetime) -> bool:
    return remind_after_days is not None and now >= invited_at + timedelta(days=remind_after_days)


@dataclass(frozen=True)
class CheckedAnswers:
    answers: dict[str, Any]
    flagged_by: str | None  # the question whose answer flags the partnership


def check_answers(questions: tuple[Question, ...], answers: dict[str, Any]) -> CheckedAnswers:
    """Validates one person's answers to a survey; names every wrong answer."""
    p = Problems()
    by_id = {q.question_id: q for q in questions}
    for qid in answers:
        if qid not in by_id:
            p.add(f"answers.{qid}", "no such question in this survey", "unknown_question")
    flagged: str | None = None
    clean: dict[str, Any] = {}
    for q in questions:
        at = f"answers.{q.question_id}"
        value = answers.get(q.question_id)
        if value is None or value == "":
            if q.required:
                p.add(at, "this question needs an answer", "required")
            continue
        if q.kind is QuestionKind.RATING:
            if isinstance(value, bool) or not isinstance(value, int) or not RATING_MIN <= value <= RATING_MAX:
                p.add(at, f"a rating is a whole number from {RATING_MIN} to {RATING_MAX}", "out_of_range")
                continue
        elif q.kind is QuestionKind.CHOICE:
            if value not in q.options:
                p.add(at, f"must be one of {list(q.options)}", "not_an_option")
                continue
            if q.flag_answer is not None and value == q.flag_answer:
                flagged = q.question_id
        elif not isinstance(value, str) or len(value) > 10_000:
            p.add(at, "free text of at most 10000 characters", "invalid")
            continue
        clean[q.question_id] = value
    p.raise_if_any()
    return CheckedAnswers(clean, flagged)


def average_rating(questions: tuple[Question, ...], answers: dict[str, Any]) -> float | None:
    """The mean of one answer's ratings (None without any rating question answered)."""
    ratings = [answers[q.question_id] for q in questions
               if q.kind is QuestionKind.RATING and isinstance(answers.get(q.question_id), int)]
    return sum(ratings) / len(ratings) if ratings else None
