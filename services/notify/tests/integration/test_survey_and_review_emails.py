"""Survey invitations, their reminder, and feedback-review comments, through the real sender to a
real SMTP server (aiosmtpd)."""

from __future__ import annotations

import pytest

from services.notify.tests.integration.test_email_kinds import ANA, PROGRAM, Env, env  # noqa: F401 (fixture)
from shared.contracts.activity import FeedbackReviewed, SurveyInvited

pytestmark = [pytest.mark.integration]


def test_survey_invitation_and_its_reminder(env: Env) -> None:  # noqa: F811
    invite = SurveyInvited(invitation_id="1", round_id="sr-1", survey_id="sv-1", program_id=PROGRAM,
                           person_id="ana", title="Experience survey")
    env.store.apply(invite, invite.model_copy(update={"reminder": True}))
    env.deliver()
    subjects = sorted(r.subject for r in env.smtp.to(ANA))
    assert subjects == ["A short survey: Experience survey",
                        'Reminder: the survey "Experience survey" is waiting for your answer']
    body = env.smtp.to(ANA)[0].body()
    assert "Hello Ana Alvarez" in body and f"/api/v1/programs/{PROGRAM}/survey-rounds/sr-1/answers" in body


def test_feedback_review_scores_and_comment_reach_the_mentor(env: Env) -> None:  # noqa: F811
    env.store.apply(FeedbackReviewed(review_id="rv-1", entry_id="fb-1", program_id=PROGRAM, mentor_id="ana",
                                     month="2026-10", scores={"specific": 4, "actionable": 2},
                                     comment="Name one next step."))
    env.deliver()
    mail = env.only(ANA)
    assert mail.subject == "Your written feedback for 2026-10 was reviewed"
    assert "- actionable: 2" in mail.body() and "- specific: 4" in mail.body()
    assert "Name one next step." in mail.body() and "<li>specific: 4</li>" in mail.body("html")
