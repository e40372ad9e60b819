"""Stipend statements, review, payouts and reimbursements (payments service).

Only staff approve statements, ask for clarification and see payout batches; a mentor sees their
own statements; a partnership's mentor (or staff) asks for a reimbursement."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from services.gateway.domain.access import STAFF_ROLES, Role, can_act_as_mentor, can_log_for_partnership
from services.gateway.entrypoints import lookups
from services.gateway.entrypoints.deps import API_PREFIX, Caller, caller, mutation, seg
from services.gateway.entrypoints.routes.common import (
    PartnershipId,
    ProgramId,
    id_path,
    json_body,
    offset_query,
    optional_json_body,
    text_field,
)
from services.gateway.errors import Unprocessable
from shared.errors import Forbidden, NotFound

router = APIRouter(prefix=API_PREFIX, tags=["payments"])
P = "payments"
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
StatementId = id_path("st-prog-mentormt-mentor-7f3a-2026-10", "A statement id")
BatchId = id_path("batch-prog-mentormt-2026-11-02", "A payout batch id")


def _require_staff_role(c: Caller) -> None:
    if c.principal.role not in STAFF_ROLES:
        raise Forbidden("authorization", "only staff may do this")


@router.get("/statements", summary="Statements by status, program, mentor, month (staff; a mentor: their own)")
async def list_statements(
    status: str | None = Query(None, max_length=40, examples=["in_review"]),
    program_id: str | None = Query(None, max_length=200),
    mentor_id: str | None = Query(None, max_length=200),
    month: str | None = Query(None, pattern=MONTH),
    limit: int = Query(100, ge=1, le=1000), offset: int = offset_query(),
    c: Caller = Depends(caller),
) -> list[dict[str, Any]]:
    p = c.principal
    if p.role is Role.MENTOR:
        mentor_id = p.person_id  # a mentor's view is always their own
    elif p.role not in STAFF_ROLES:
        raise Forbidden("authorization", "only staff and mentors see statements")
    if program_id is not None:
        c.require_in_program(program_id)
    elif p.role is Role.COORDINATOR and len(p.program_ids) == 1:
        program_id = next(iter(p.program_ids))
    items: list[dict[str, Any]] = await c.read(P, "/statements", {
        "status": status, "program_id": program_id, "mentor_id": mentor_id, "month": month,
        "limit": limit, "offset": offset})
    return [s for s in items if can_act_as_mentor(p, str(s.get("program_id")), str(s.get("mentor_id")))]


async def _statement(c: Caller, statement_id: str) -> dict[str, Any]:
    statement = await lookups.owned(c, P, f"/statements/{seg(statement_id)}", "statement_id", statement_id)
    if not can_act_as_mentor(c.principal, str(statement["program_id"]), str(statement["mentor_id"])):
        raise NotFound("statement_id", f"no statement {statement_id}")
    return statement


@router.get("/statements/{statement_id}", summary="A statement with its lines and clarifications (staff; its mentor)")
async def get_statement(statement_id: str = StatementId, c: Caller = Depends(caller)) -> dict[str, Any]:
    return await _statement(c, statement_id)


@router.get("/statements/{statement_id}/audit", summary="Who did what to a statement, and when (staff; its mentor)")
async def statement_audit(statement_id: str = StatementId, c: Caller = Depends(caller)) -> Response:
    await _statement(c, statement_id)
    return await c.forward(P)


@router.post("/statements/{statement_id}/approve", dependencies=mutation,
             summary="Approve a statement for the next payout (staff)")
async def approve(statement_id: str = StatementId,
                  body: dict[str, Any] | None = optional_json_body({"revision": 1}, {}),
                  c: Caller = Depends(caller)) -> Response:
    statement = await _statement(c, statement_id)
    c.require_staff(str(statement["program_id"]))
    return await c.forward(P, json=body or {})


COORDINATOR_BULK_LIMIT = 1000


@router.post("/statements/approvals", dependencies=mutation,
             summary="Approve many statements at once; the answer lists approved, unchanged and refused ones "
             "(staff of every statement's program)")
async def approve_many(body: dict[str, Any] = json_body({"statement_ids": ["st-1", "st-2"]}),
                       c: Caller = Depends(caller)) -> Response:
    _require_staff_role(c)
    ids = body.get("statement_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise Unprocessable("statement_ids", "required: a list of statement ids", "missing")
    if not c.principal.is_admin:
        # A coordinator approves only in their programs: each statement is checked with payments.
        unique = list(dict.fromkeys(ids))
        if len(unique) > COORDINATOR_BULK_LIMIT:
            raise Unprocessable("statement_ids", f"at most {COORDINATOR_BULK_LIMIT} at once", "too_many")
        limit = asyncio.Semaphore(16)

        async def check(statement_id: str) -> None:
            async with limit:
                statement = await _statement(c, statement_id)
            c.require_staff(str(statement["program_id"]))

        await asyncio.gather(*(check(i) for i in unique))
    return await c.forward(P, json=body)


@router.post("/statements/{statement_id}/clarifications", status_code=201, dependencies=mutation,
             summary="Ask the mentor to clarify specific entries before approving (staff)")
async def ask_clarification(
    statement_id: str = StatementId,
    body: dict[str, Any] = json_body({"entry_ids": ["te-8a9b0c"], "question": "Was this 90 minutes of planning?"}),
    c: Caller = Depends(caller),
) -> Response:
    statement = await _statement(c, statement_id)
    c.require_staff(str(statement["program_id"]))
    return await c.forward(P, json=body)


def _staff_program_filter(c: Caller, program_id: str | None) -> str | None:
    _require_staff_role(c)
    if program_id is not None:
        c.require_staff(program_id)
    return program_id


@router.get("/payouts/pending", summary="Everything not yet paid, with why it waits (staff)")
async def pending_payouts(program_id: str | None = Query(None, max_length=200),
                          c: Caller = Depends(caller)) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = await c.read(P, "/payouts/pending",
                                               {"program_id": _staff_program_filter(c, program_id)})
    return [i for i in items if c.principal.is_staff_of(str(i.get("program_id")))]


@router.post("/programs/{program_id}/payouts", dependencies=mutation,
             summary="Run the program's payout now, as the pay-day job does (staff of the program)",
             description="One batch per program and pay day: 201 with the batch this call issued; a re-run "
             "for the same day answers 200 with that batch (`created: false`); `batch: null` when nothing "
             "approved and unpaid was due. `pay_date` defaults to today in the program's time zone and may "
             "not be in the future.",
             responses={201: {"description": "The batch this call issued"}})
async def run_payout(program_id: str = ProgramId,
                     body: dict[str, Any] | None = optional_json_body({}, {"pay_date": "2026-11-02"}),
                     c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(P, json=body or {})


@router.get("/batches", summary="Payout batches (staff)")
async def list_batches(program_id: str | None = Query(None, max_length=200),
                       c: Caller = Depends(caller)) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = await c.read(P, "/batches", {"program_id": _staff_program_filter(c, program_id)})
    return [i for i in items if c.principal.is_staff_of(str(i.get("program_id")))]


async def _batch(c: Caller, batch_id: str) -> dict[str, Any]:
    _require_staff_role(c)
    batch = await lookups.owned(c, P, f"/batches/{seg(batch_id)}", "batch_id", batch_id)
    c.require_staff(str(batch["program_id"]))
    return batch


@router.get("/batches/{batch_id}", summary="A payout batch with its items (staff)")
async def get_batch(batch_id: str = BatchId, c: Caller = Depends(caller)) -> dict[str, Any]:
    return await _batch(c, batch_id)


@router.get("/batches/{batch_id}/csv", summary="A payout batch as CSV for the payment system (staff)",
            response_class=Response,
            responses={200: {"content": {"text/csv": {"example": "payee,amount,currency,memo,reference\n"}}}})
async def batch_csv(batch_id: str = BatchId, c: Caller = Depends(caller)) -> Response:
    await _batch(c, batch_id)
    return await c.forward(P)


@router.post("/reimbursements", status_code=201, dependencies=mutation,
             summary="Ask for a book or travel reimbursement against the partnership's yearly budget "
             "(the partnership's mentor, or staff); over budget is refused with the remaining budget")
async def request_reimbursement(
    body: dict[str, Any] = json_body({"partnership_id": "pa-0f3c9e21", "kind": "book", "amount": "24.99",
                                      "spent_on": "2026-10-03", "description": "The Skillful Teacher"}),
    c: Caller = Depends(caller),
) -> Response:
    partnership_id = text_field(body, "partnership_id")
    await lookups.require_partnership(c, partnership_id, can_log_for_partnership, "ask for reimbursements")
    return await c.forward(P, json=body)


@router.get("/reimbursements", summary="Reimbursements of a partnership (its people, staff) or of your programs (staff)")
async def list_reimbursements(partnership_id: str | None = Query(None, max_length=200),
                              status: str | None = Query(None, max_length=40),
                              c: Caller = Depends(caller)) -> list[dict[str, Any]]:
    if partnership_id is not None:
        await lookups.partnership(c, partnership_id)
    else:
        _require_staff_role(c)
    items: list[dict[str, Any]] = await c.read(P, "/reimbursements",
                                               {"partnership_id": partnership_id, "status": status})
    if partnership_id is not None:
        return items
    return [i for i in items if c.principal.is_staff_of(str(i.get("program_id")))]


@router.get("/partnerships/{partnership_id}/budgets", tags=["partnerships"],
            summary="Book and travel budgets of a partnership for the school year of a date (its people, staff)")
async def budgets(partnership_id: str = PartnershipId,
                  on: str = Query(..., pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-10-06"]),
                  c: Caller = Depends(caller)) -> Response:
    await lookups.partnership(c, partnership_id)
    return await c.forward(P, params={"on": on})
