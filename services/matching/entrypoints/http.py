"""The matching service's HTTP API (internal: the gateway is the only caller and does auth).
Every refusal names the field and the reason (shared.errors)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import col, select

from services.matching.adapters.tables import ProgramRow
from services.matching.service_layer import commands as cmd
from services.matching.service_layer import handlers, roster_file, views
from services.matching.service_layer.handlers import Actor
from shared.contracts.envelope import Cause
from shared.errors import DomainError
from shared.service import Service, request_cause

Kinds = Literal["mentors", "mentees", "metamentors"]
KIND: dict[str, cmd.PersonKind] = {"mentors": "mentor", "mentees": "mentee", "metamentors": "metamentor"}
MAX_CSV_BYTES = 20 * 1024 * 1024


class CsvTooLarge(DomainError):
    status = 413

    def __init__(self) -> None:
        super().__init__("file", f"larger than {MAX_CSV_BYTES} bytes ({MAX_CSV_BYTES / 2**20:g} MiB); split it "
                         "into smaller files", "too_large")


async def actor_of(request: Request) -> Actor:
    return Actor(request.headers.get("X-Actor-Id", ""), request.headers.get("X-Actor-Role", ""))


def make_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["matching"])

    def now() -> Any:
        return service.clock.now()

    # -- programs --------------------------------------------------------------------------
    @router.post("/programs", status_code=201)
    def create_program(body: cmd.ConfigureProgram, cause: Cause = Depends(request_cause),
                       actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            return views.program_view(handlers.configure_program(tx, body, actor, now()))

    @router.get("/programs")
    def list_programs() -> list[dict[str, Any]]:
        with service.db.session() as s:
            return [views.program_view(p) for p in s.exec(select(ProgramRow).order_by(col(ProgramRow.program_id))).all()]

    @router.get("/programs/{program_id}")
    def get_program(program_id: str) -> dict[str, Any]:
        with service.db.session() as s:
            return views.program_view(handlers.get_program(s, program_id))

    @router.put("/programs/{program_id}")
    def change_program(program_id: str, body: cmd.ChangeProgram, cause: Cause = Depends(request_cause),
                       actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            return views.program_view(handlers.change_program(tx, program_id, body, actor, now()))

    @router.get("/people/{person_id}")
    def get_person(person_id: str) -> dict[str, Any]:
        """A mentor, mentee or metamentor of any program, as the program's list shows them."""
        with service.db.session() as s:
            return views.person(s, person_id)

    @router.patch("/people/{person_id}")
    def update_profile(person_id: str, body: cmd.UpdateProfile, cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            return views.person_view(handlers.update_profile(tx, person_id, body, now()))

    @router.put("/mentors/{mentor_id}/capacity")
    def change_capacity(mentor_id: str, body: cmd.ChangeCapacity, cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            return views.person_view(handlers.change_capacity(tx, mentor_id, body, now()))

    @router.post("/mentors/{mentor_id}/pause")
    def pause(mentor_id: str, body: cmd.PauseMentor, cause: Cause = Depends(request_cause),
              actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            transitions = handlers.pause_mentor(tx, mentor_id, body, actor, now())
            return {"mentor_id": mentor_id, "awaiting_transition": [
                {"transition_id": t.transition_id, "mentee_id": t.mentee_id, "partnership_id": t.partnership_id}
                for t in transitions]}

    @router.post("/mentors/{mentor_id}/resume")
    def resume(mentor_id: str, body: cmd.ResumeMentor, cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            return views.person_view(handlers.resume_mentor(tx, mentor_id, body, now()))

    @router.post("/programs/{program_id}/banned-pairs", status_code=201)
    def ban(program_id: str, body: cmd.BanPair, cause: Cause = Depends(request_cause)) -> dict[str, str]:
        with service.transaction(cause) as tx:
            row = handlers.ban_pair(tx, program_id, body, now())
            return {"mentee_id": row.mentee_id, "mentor_id": row.mentor_id, "reason": row.reason}

    # -- matching --------------------------------------------------------------------------
    @router.post("/programs/{program_id}/proposals", status_code=201)
    def propose(program_id: str, body: cmd.ProposeMatches, cause: Cause = Depends(request_cause),
                actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            proposal = handlers.propose(tx, program_id, body, actor, now())
            tx.session.flush()
            return views.proposal_view(tx.session, proposal.proposal_id)

    @router.get("/proposals/{proposal_id}")
    def get_proposal(proposal_id: str) -> dict[str, Any]:
        with service.db.session() as s:
            return views.proposal_view(s, proposal_id)

    @router.post("/proposals/{proposal_id}/publish")
    def publish(proposal_id: str, body: cmd.PublishProposal, cause: Cause = Depends(request_cause),
                actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            created, warnings = handlers.publish(tx, proposal_id, body, actor, now())
            return {"partnerships": [views.partnership_view(p) for p in created], "metamentor_warnings": warnings}

    @router.post("/programs/{program_id}/partnerships", status_code=201)
    def manual_match(program_id: str, body: cmd.ManualMatch, cause: Cause = Depends(request_cause),
                     actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            row, warnings, meta = handlers.manual_match(tx, program_id, body, actor, now())
            return {**views.partnership_view(row), "confirmed_warnings": warnings, "metamentor_warnings": meta}

    @router.get("/programs/{program_id}/partnerships")
    def list_partnerships(program_id: str, status: str | None = None) -> list[dict[str, Any]]:
        with service.db.session() as s:
            return views.partnerships(s, program_id, status)

    @router.get("/partnerships/{partnership_id}")
    def get_partnership(partnership_id: str) -> dict[str, Any]:
        with service.db.session() as s:
            return views.partnership(s, partnership_id)

    @router.post("/partnerships/{partnership_id}/rematch")
    def rematch(partnership_id: str, body: cmd.RequestRematch, cause: Cause = Depends(request_cause),
                actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            proposal = handlers.request_rematch(tx, partnership_id, body, actor, now())
            tx.session.flush()
            return {"proposal": views.proposal_view(tx.session, proposal.proposal_id)}

    @router.get("/programs/{program_id}/transitions")
    def list_transitions(program_id: str, status: str | None = "awaiting") -> list[dict[str, Any]]:
        with service.db.session() as s:
            return views.transitions(s, program_id, status)

    @router.post("/transitions/{transition_id}/decision")
    def decide(transition_id: str, body: cmd.DecideTransition, cause: Cause = Depends(request_cause),
               actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            t, proposal = handlers.decide_transition(tx, transition_id, body, actor, now())
            tx.session.flush()
            return {"transition_id": t.transition_id, "status": t.status,
                    "proposal": views.proposal_view(tx.session, proposal.proposal_id) if proposal else None}

    @router.post("/programs/{program_id}/metamentors/assign")
    def assign_metamentors(program_id: str, cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            return {"warnings": handlers.assign_metamentors(tx, program_id)}

    # -- incidents -------------------------------------------------------------------------
    @router.post("/partnerships/{partnership_id}/incidents", status_code=201)
    def report(partnership_id: str, body: cmd.ReportIncident, cause: Cause = Depends(request_cause)) -> dict[str, str]:
        with service.transaction(cause) as tx:
            row = handlers.report_incident(tx, partnership_id, body, now())
            return {"incident_id": row.incident_id, "status": row.status}

    @router.get("/programs/{program_id}/incidents")
    def list_incidents(program_id: str, status: str | None = "open") -> list[dict[str, Any]]:
        with service.db.session() as s:
            return views.incidents(s, program_id, status)

    @router.post("/incidents/{incident_id}/resolve")
    def resolve(incident_id: str, body: cmd.ResolveIncident, cause: Cause = Depends(request_cause),
                actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            incident, proposal = handlers.resolve_incident(tx, incident_id, body, actor, now())
            tx.session.flush()
            return {"incident_id": incident.incident_id, "status": incident.status,
                    "proposal": views.proposal_view(tx.session, proposal.proposal_id) if proposal else None}

    # -- people (registered last: /programs/{id}/{kinds} must not shadow the routes above) --
    @router.post("/programs/{program_id}/{kinds}", status_code=201)
    def enrol(program_id: str, kinds: Kinds, body: cmd.EnrolPerson, cause: Cause = Depends(request_cause),
              actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            return views.person_view(handlers.enrol(tx, program_id, KIND[kinds], body, actor, now()))

    @router.post("/programs/{program_id}/{kinds}/import", status_code=201)
    async def import_roster(program_id: str, kinds: Kinds, request: Request,
                            import_good_rows: bool = Query(False), cause: Cause = Depends(request_cause),
                            actor: Actor = Depends(actor_of)) -> dict[str, Any]:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_CSV_BYTES:
            raise CsvTooLarge()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():  # never more than the limit in memory
            size += len(chunk)
            if size > MAX_CSV_BYTES:
                raise CsvTooLarge()
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DomainError("file", f"not UTF-8 text (line {line}: byte {raw[exc.start]:#04x}); save the file "
                              "as CSV UTF-8", "encoding") from None

        def run() -> dict[str, Any]:
            with service.transaction(cause) as tx:
                people, roster = handlers.import_roster(tx, program_id, KIND[kinds], text,
                                                        import_good_rows=import_good_rows, actor=actor, now=now())
                shown, _ = roster_file.reported(roster.errors)
                return {
                    "imported": len(people),
                    "person_ids": [p.person_id for p in people],
                    "skipped": [{"line": e.line, "field": e.field, "reason": e.reason} for e in shown],
                    "skipped_total": len(roster.errors),
                }

        return await asyncio.to_thread(run)

    @router.get("/programs/{program_id}/{kinds}")
    def list_people(program_id: str, kinds: Kinds) -> list[dict[str, Any]]:
        with service.db.session() as s:
            handlers.get_program(s, program_id)
            return views.people(s, program_id, KIND[kinds])

    return router
