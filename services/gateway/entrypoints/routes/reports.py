"""Program health report: composed by the gateway from each service's own read API (activity's
health figures, matching's mentees / incidents / transitions, payments' batches), for the
program's staff and admins, as JSON or CSV."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from services.gateway.domain.reports import health_csv, health_report
from services.gateway.entrypoints.deps import API_PREFIX, Caller, caller, seg
from services.gateway.entrypoints.routes.common import ProgramId

router = APIRouter(prefix=API_PREFIX, tags=["reports"])


@router.get("/programs/{program_id}/reports/health",
            summary="Program health: partnerships by status per metamentor and site, meetings and hours per "
                    "month, PIPs per semester, surveys, time to first meeting, stipends paid per month, open "
                    "incidents and pending transitions (staff of the program; ?format=csv)")
async def program_health(program_id: str = ProgramId, format: Literal["json", "csv"] = Query("json"),
                         c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    p = seg(program_id)
    activity, mentees, incidents, transitions, batches = await asyncio.gather(
        c.read("activity", f"/programs/{p}/health"),
        c.read("matching", f"/programs/{p}/mentees"),
        c.read("matching", f"/programs/{p}/incidents", {"status": "open"}),
        c.read("matching", f"/programs/{p}/transitions", {"status": "awaiting"}),
        c.read("payments", "/batches", {"program_id": program_id}),
    )
    report: dict[str, Any] = health_report(program_id, activity, mentees, incidents, transitions, batches)
    if format == "csv":
        return Response(health_csv(report), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="health-{program_id}.csv"'})
    return JSONResponse(report)
