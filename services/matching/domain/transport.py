"""An exact max-weight transportation solver (numpy, no other dependency).

Rows are groups of mentees (supply = how many), columns are groups of mentor capacity
(capacity = free places), weight[i, j] > 0 is the gain of placing one mentee of row i with a
mentor of column j, allowed[i, j] says whether that is permitted. We look for integer flows
x[i, j] >= 0 with row sums <= supply and column sums <= capacity that maximise sum(weight * x).

This is a min-cost flow on  s -> row (supply) -> column (unbounded, cost -weight) -> t (capacity),
solved by the primal-dual method (successive shortest paths with potentials): each phase finds
the shortest augmenting s-t paths by Dijkstra on reduced costs, then pushes a maximum flow along
all of them at once (Dinic on the zero-reduced-cost subgraph). Phases stop when the shortest
path no longer gains anything. Successive shortest paths keep the flow optimal for its value at
every step and the marginal gain only decreases, so stopping at the first non-positive path
gives the maximum-weight flow (of any value). Everything is exact integer arithmetic.

Dijkstra is "bucketed": all nodes at the current minimum distance are settled at once and their
edges relaxed as one numpy operation, so a phase costs O(rows * columns) array work, not Python
loops over edges.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
INF = np.int64(1) << np.int64(60)
FAR = INF // 2  # anything at or above this is unreachable (a forbidden pair's cost stays near INF)


@dataclass
class TransportResult:
    flow: IntArray
    phases: int
    augmentations: int


def solve_transport(
    weight: IntArray, allowed: BoolArray, supply: IntArray, capacity: IntArray
) -> TransportResult:
    weight = np.asarray(weight, dtype=np.int64)
    allowed = np.asarray(allowed, dtype=bool) & (weight > 0)
    n_rows, n_cols = weight.shape
    x = np.zeros((n_rows, n_cols), dtype=np.int64)
    if n_rows == 0 or n_cols == 0:
        return TransportResult(x, 0, 0)
    res_s = np.asarray(supply, dtype=np.int64).copy()  # mentees of row i not yet placed
    res_t = np.asarray(capacity, dtype=np.int64).copy()  # free places of column j
    cost = np.where(allowed, -weight, INF)

    # Potentials that make every residual edge's reduced cost non-negative at the start.
    pi_s = np.int64(0)
    pi_r = np.zeros(n_rows, dtype=np.int64)
    col_best = np.where(allowed, weight, 0).max(axis=0)
    pi_c = -col_best
    pi_t = np.int64(pi_c.min())

    phases = 0
    augmentations = 0
    while True:
        rc = cost + pi_r[:, None] - pi_c[None, :]  # forbidden pairs stay above FAR: potentials are small
        dist_r, dist_c, dist_t = _dijkstra(rc, x, res_s, res_t, pi_s, pi_r, pi_c, pi_t)
        if dist_t >= INF:
            break
        gain = -(dist_t + pi_t - pi_s)
        if gain <= 0:
            break
        pi_r = pi_r + np.minimum(dist_r, dist_t)
        pi_c = pi_c + np.minimum(dist_c, dist_t)
        pi_t = pi_t + dist_t
        phases += 1
        rc = cost + pi_r[:, None] - pi_c[None, :]
        augmentations += _max_flow_on_admissible(rc == 0, x, res_s, res_t, pi_s - pi_r == 0, pi_c - pi_t == 0)
    return TransportResult(x, phases, augmentations)


def _dijkstra(
    rc: IntArray,
    x: IntArray,
    res_s: IntArray,
    res_t: IntArray,
    pi_s: np.int64,
    pi_r: IntArray,
    pi_c: IntArray,
    pi_t: np.int64,
) -> tuple[IntArray, IntArray, np.int64]:
    n_rows, n_cols = rc.shape
    dist_r = np.full(n_rows, INF, dtype=np.int64)
    dist_c = np.full(n_cols, INF, dtype=np.int64)
    open_rows = res_s > 0
    dist_r[open_rows] = (pi_s - pi_r)[open_rows]
    done_r = np.zeros(n_rows, dtype=bool)
    done_c = np.zeros(n_cols, dtype=bool)
    to_t = np.where(res_t > 0, pi_c - pi_t, INF)  # reduced cost of column -> t
    dist_t = INF
    while True:
        cand_r = np.where(done_r, INF, dist_r)
        cand_c = np.where(done_c, INF, dist_c)
        m = min(cand_r.min(), cand_c.min())
        if m >= INF or m >= dist_t:
            break
        fr = cand_r == m
        fc = cand_c == m
        done_r |= fr
        done_c |= fc
        if fr.any():
            reach = rc[fr].min(axis=0)
            reach = np.where(reach >= FAR, INF, reach + m)
            dist_c = np.where(done_c, dist_c, np.minimum(dist_c, reach))
        if fc.any():
            dist_t = min(dist_t, (to_t[fc] + m).min() if (to_t[fc] < INF).any() else INF)
            back = x[:, fc] > 0  # column -> row along a placed mentee: reduced cost -rc
            if back.any():
                via = np.where(back, -rc[:, fc], INF).min(axis=1)
                via = np.where(via >= FAR, INF, via + m)
                dist_r = np.where(done_r, dist_r, np.minimum(dist_r, via))
    return dist_r, dist_c, np.int64(dist_t)


def _max_flow_on_admissible(
    adm: BoolArray, x: IntArray, res_s: IntArray, res_t: IntArray, s_adm: BoolArray, t_adm: BoolArray
) -> int:
    """Dinic on the zero-reduced-cost subgraph; updates x, res_s, res_t in place."""
    n_rows, n_cols = adm.shape
    augmentations = 0
    while True:
        # Breadth-first levels: rows at odd levels, columns at even levels.
        level_r = np.full(n_rows, -1, dtype=np.int64)
        level_c = np.full(n_cols, -1, dtype=np.int64)
        frontier = s_adm & (res_s > 0)
        level_r[frontier] = 1
        level = 1
        level_t = -1
        sink_c = t_adm & (res_t > 0)
        while frontier.any():
            cols = adm[frontier].any(axis=0) & (level_c < 0)
            if not cols.any():
                break
            level_c[cols] = level + 1
            if (cols & sink_c).any():
                level_t = level + 2
                break
            rows = ((x[:, cols] > 0) & adm[:, cols]).any(axis=1) & (level_r < 0)
            level_r[rows] = level + 2
            frontier = rows
            level += 2
        if level_t < 0:
            return augmentations
        augmentations += _blocking_flow(adm, x, res_s, res_t, level_r, level_c, level_t, sink_c)


def _blocking_flow(
    adm: BoolArray,
    x: IntArray,
    res_s: IntArray,
    res_t: IntArray,
    level_r: IntArray,
    level_c: IntArray,
    level_t: int,
    sink_c: BoolArray,
) -> int:
    # Nodes: rows are 0..n_rows-1, columns are n_rows..n_rows+n_cols-1.
    n_rows = adm.shape[0]
    dead_r = np.zeros(n_rows, dtype=bool)
    dead_c = np.zeros(adm.shape[1], dtype=bool)
    children: dict[int, list[int]] = {}
    pointer: dict[int, int] = {}
    starts = [int(i) for i in np.flatnonzero(level_r == 1)]
    augmentations = 0

    def next_child(node: int) -> int | None:
        """The next live child with residual capacity (a column index offset, a row, or -1 for t)."""
        if node not in children:
            if node < n_rows:
                cols = np.flatnonzero(adm[node] & (level_c == level_r[node] + 1))
                children[node] = [n_rows + int(j) for j in cols]
            else:
                j = node - n_rows
                if level_c[j] + 1 == level_t:
                    children[node] = [-1] if sink_c[j] else []
                else:
                    rows = np.flatnonzero((x[:, j] > 0) & adm[:, j] & (level_r == level_c[j] + 1))
                    children[node] = [int(i) for i in rows]
            pointer[node] = 0
        kids = children[node]
        p = pointer[node]
        while p < len(kids):
            child = kids[p]
            if child == -1:
                if res_t[node - n_rows] > 0:
                    break
            elif child >= n_rows:
                if not dead_c[child - n_rows]:
                    break
            elif not dead_r[child] and x[child, node - n_rows] > 0:
                break
            p += 1
        pointer[node] = p
        return kids[p] if p < len(kids) else None

    for start in starts:
        while res_s[start] > 0 and not dead_r[start]:
            path = [start]
            reached = False
            while path:
                node = path[-1]
                child = next_child(node)
                if child is None:
                    if node < n_rows:
                        dead_r[node] = True
                    else:
                        dead_c[node - n_rows] = True
                    path.pop()
                    if path:
                        pointer[path[-1]] += 1
                    continue
                if child == -1:
                    reached = True
                    break
                path.append(child)
            if not reached:
                break
            # Bottleneck: the start row's supply, column -> row placements, the last column's places.
            bottleneck = int(res_s[start])
            for a, b in itertools.pairwise(path):
                if a >= n_rows:  # column a -> row b moves a placed mentee of row b
                    bottleneck = min(bottleneck, int(x[b, a - n_rows]))
            last = path[-1] - n_rows
            bottleneck = min(bottleneck, int(res_t[last]))
            res_s[start] -= bottleneck
            for a, b in itertools.pairwise(path):
                if a < n_rows:
                    x[a, b - n_rows] += bottleneck
                else:
                    x[b, a - n_rows] -= bottleneck
            res_t[last] -= bottleneck
            augmentations += 1
    return augmentations
