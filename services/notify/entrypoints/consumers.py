"""Wiring: which events the notify consumer (group "notify") handles, and with what."""

from __future__ import annotations

from services.notify.service_layer import handlers as h
from shared.contracts import activity, matching, payments
from shared.service import Service
from shared.topics import ACTIVITY, MATCHING, PAYMENTS


def register_consumers(service: Service) -> None:
    consumer = service.consumer(MATCHING, ACTIVITY, PAYMENTS)
    consumer.handles(matching.ProgramConfigured)(h.on_program_configured)
    consumer.handles(matching.MentorEnrolled)(h.on_mentor_enrolled)
    consumer.handles(matching.MenteeEnrolled)(h.on_mentee_enrolled)
    consumer.handles(matching.MetamentorEnrolled)(h.on_metamentor_enrolled)
    consumer.handles(matching.MentorProfileUpdated)(h.on_mentor_profile_updated)
    consumer.handles(matching.MentorPaused)(h.on_mentor_paused)
    consumer.handles(matching.MentorResumed)(h.on_mentor_resumed)
    consumer.handles(matching.MenteeMatched)(h.on_mentee_matched)
    consumer.handles(matching.MetamentorAssigned)(h.on_metamentor_assigned)
    consumer.handles(matching.PartnershipEnded)(h.on_partnership_ended)
    consumer.handles(matching.RematchRequested)(h.on_rematch_requested)
    consumer.handles(matching.IncidentReported)(h.on_incident_reported)
    consumer.handles_batch(activity.MeetingLogged)(h.on_meetings_logged)
    consumer.handles(activity.MeetingCorrected)(h.on_meeting_corrected)
    consumer.handles(activity.ActivityRecorded)(h.on_activity_recorded)
    consumer.handles_batch(activity.TimeEntryRecorded)(h.on_time_entries)
    consumer.handles_batch(activity.TimeEntryAmended)(h.on_time_entries)
    consumer.handles(activity.PartnershipAtRisk)(h.on_partnership_at_risk)
    consumer.handles(activity.SurveyInvited)(h.on_survey_invited)
    consumer.handles(activity.FeedbackReviewed)(h.on_feedback_reviewed)
    consumer.handles(payments.ClarificationRequested)(h.on_clarification_requested)
    consumer.handles(payments.PaymentApproved)(h.on_payment_approved)
    consumer.handles(payments.PayoutIssued)(h.on_payout_issued)
    consumer.handles(payments.ReimbursementApproved)(h.on_reimbursement)
    consumer.handles(payments.ReimbursementRefused)(h.on_reimbursement)
