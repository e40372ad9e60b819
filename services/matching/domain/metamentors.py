"""Metamentor caseloads: every active partnership gets a metamentor, loads kept balanced.

Each new partnership goes to the metamentor with the smallest caseload who is below the
program's maximum (ties by id, so the result is reproducible). Least-loaded first keeps the
largest caseload as small as possible and the smallest as large as possible. When the range
cannot be met (no metamentor, everyone at the maximum, or too few partnerships to bring
everyone to the minimum) the plan says so instead of silently overloading anyone.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class MetamentorPlan:
    assignments: dict[str, str] = field(default_factory=dict)  # partnership_id -> metamentor_id
    unassigned: list[str] = field(default_factory=list)
    caseloads: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def plan_metamentors(
    partnerships: Sequence[str], caseloads: Mapping[str, int], minimum: int, maximum: int
) -> MetamentorPlan:
    plan = MetamentorPlan(caseloads=dict(caseloads))
    heap = [(load, mid) for mid, load in caseloads.items() if load < maximum]
    heapq.heapify(heap)
    for pid in partnerships:
        if not heap:
            plan.unassigned.append(pid)
            continue
        load, mid = heapq.heappop(heap)
        plan.assignments[pid] = mid
        plan.caseloads[mid] = load + 1
        if load + 1 < maximum:
            heapq.heappush(heap, (load + 1, mid))
    if plan.unassigned:
        why = "the program has no metamentor" if not caseloads else (
            f"every metamentor is at the maximum caseload of {maximum}"
        )
        plan.warnings.append(f"{len(plan.unassigned)} partnership(s) left without a metamentor: {why}")
    for mid, load in sorted(plan.caseloads.items()):
        if load < minimum:
            plan.warnings.append(f"metamentor {mid} has {load} partnership(s), below the minimum of {minimum}")
    return plan
