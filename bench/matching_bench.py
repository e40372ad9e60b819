"""Benchmark of the matching solver (not a test): time, peak memory, scale, independent check.

    uv run python -m bench.matching_bench --quick     # 20,000 mentees x 6,000 mentors, checks
    uv run python -m bench.matching_bench --full      # + scale curve up to 100,000 mentees

The pool: mentees and mentors with 6 criteria (grade band, subjects, role, site, region,
languages; the default weights), mentor capacity 1-5, 10% of mentors ineligible, 300 banned
pairs and 300 mentees being rematched (previous mentor excluded). Each measurement runs in a
fresh process, so "peak RSS" is that process's maximum resident set (interpreter + pool + solve).

Independent checks, on the same input in the same run:
- scipy's HiGHS LP over the same profile classes (the transportation LP is totally unimodular,
  so its optimum is the integer optimum); its objective must equal ours;
  (--full only: HiGHS takes 3-5 minutes per objective at 20,000 x 6,000);
- scipy's linear_sum_assignment (Hungarian) at the person level on the first 3,000 mentees and
  900 mentors of the same pool (one column per free place plus an "unmatched" column per
  mentee), compared with our solver on that same slice; and a spot check of class scores
  against the per-pair rule.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import time
from typing import Any

import numpy as np

from services.matching.domain.matching import (
    OBJECTIVES,
    MatchingProblem,
    MenteeCandidate,
    MentorCandidate,
    Objective,
    check_assignment,
    class_score_matrix,
    objective_value,
    pair_weight,
    solve,
)
from services.matching.domain.profiles import Profile, align

WEIGHTS = {"grade_band": 3, "subjects": 3, "role": 2, "site": 1, "region": 1, "languages": 1}
GRADES = ["k-2", "3-5", "6-8", "9-12"]
SUBJECTS = ["math", "science", "ela", "history", "arts", "cs"]
ROLES = ["teacher", "coach", "specialist"]
SITES = 10
LANGUAGES = [["en"], ["es"], ["en", "es"]]


def profile(rng: random.Random) -> Profile:
    site = rng.randrange(SITES)
    return Profile.of(
        grade_band=rng.choice(GRADES), subjects=[rng.choice(SUBJECTS)], role=rng.choice(ROLES),
        site=f"site-{site}", region=f"region-{site % 3}", languages=rng.choice(LANGUAGES),
        years_in_position=rng.randint(0, 10), training_completed=True,
    )


def make_problem(mentees: int, mentors: int, objective: Objective, seed: int = 7,
                 banned: int = 300, rematches: int = 300) -> MatchingProblem:
    rng = random.Random(seed)
    es = [MenteeCandidate(f"e{i}", profile(rng)) for i in range(mentees)]
    ms = [MentorCandidate(f"m{j}", profile(rng), rng.randint(1, 5), rng.random() >= 0.10) for j in range(mentors)]
    excluded = {(f"e{rng.randrange(mentees)}", f"m{rng.randrange(mentors)}") for _ in range(banned)}
    excluded |= {(f"e{i}", f"m{rng.randrange(mentors)}") for i in rng.sample(range(mentees), min(rematches, mentees))}
    return MatchingProblem(es, ms, WEIGHTS, objective, frozenset(excluded))


def _measure(args: tuple[int, int, Objective], out: Any) -> None:
    mentees, mentors, objective = args
    problem = make_problem(mentees, mentors, objective)
    started, cpu = time.monotonic(), time.process_time()
    result = solve(problem)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    assert not check_assignment(problem, result.pairs)
    out.put({
        "mentees": mentees, "mentors": mentors, "objective": objective, "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "matched": result.matched, "total_score": result.total_score, **result.stats,
    })


def measure(mentees: int, mentors: int, objective: Objective) -> dict[str, Any]:
    """Solve in a fresh process so its peak memory is this solve's alone."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_measure, args=((mentees, mentors, objective), out))
    proc.start()
    row: dict[str, Any] = out.get()
    proc.join()
    return row


# -- independent solvers -----------------------------------------------------------------------
def lp_value(problem: MatchingProblem) -> tuple[int, int, float]:
    """HiGHS on the class-level transportation LP (built here, from the people, on its own)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    started = time.monotonic()
    criteria = sorted(WEIGHTS)
    lone_e = {a for a, _ in problem.excluded_pairs}
    lone_m = {b for _, b in problem.excluded_pairs}
    rows: dict[Any, int] = {}
    supply: list[int] = []
    row_profile: list[Profile] = []
    for e in problem.mentees:
        key = ("p", e.person_id) if e.person_id in lone_e else tuple(e.profile.value(c) for c in criteria)
        if key not in rows:
            rows[key] = len(supply)
            supply.append(0)
            row_profile.append(e.profile)
        supply[rows[key]] += 1
    cols: dict[Any, int] = {}
    capacity: list[int] = []
    col_profile: list[Profile] = []
    for m in problem.mentors:
        if not m.eligible or m.free_places <= 0:
            continue
        key = ("p", m.person_id) if m.person_id in lone_m else tuple(m.profile.value(c) for c in criteria)
        if key not in cols:
            cols[key] = len(capacity)
            capacity.append(0)
            col_profile.append(m.profile)
        capacity[cols[key]] += m.free_places
    scores = class_score_matrix(row_profile, col_profile, WEIGHTS)
    # Spot check the vectorised class scores against the per-pair rule.
    rng = random.Random(1)
    for _ in range(2000):
        i, j = rng.randrange(len(row_profile)), rng.randrange(len(col_profile))
        assert scores[i, j] == align(row_profile[i], col_profile[j], WEIGHTS).score
    allowed = np.ones(scores.shape, dtype=bool)
    for a, b in problem.excluded_pairs:
        if ("p", a) in rows and ("p", b) in cols:
            allowed[rows[("p", a)], cols[("p", b)]] = False
    most = min(sum(supply), sum(capacity))
    big = most + 1 if problem.objective == "best_total" else most * int(scores.max()) + 1
    weight = np.asarray(pair_weight(problem.objective, scores, big), dtype=np.float64)
    ii, jj = np.nonzero(allowed)
    n = len(ii)
    a_rows = np.concatenate([ii, len(supply) + jj])
    a_cols = np.concatenate([np.arange(n), np.arange(n)])
    limits = coo_matrix((np.ones(2 * n), (a_rows, a_cols)), shape=(len(supply) + len(capacity), n)).tocsr()
    bounds = np.array(supply + capacity, dtype=np.float64)
    res = linprog(-weight[ii, jj], A_ub=limits, b_ub=bounds, bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    flow = np.rint(res.x).astype(np.int64)
    matched = int(flow.sum())
    total = int((flow * scores[ii, jj]).sum())
    return matched, total, time.monotonic() - started


def hungarian_value(problem: MatchingProblem) -> tuple[int, int, float]:
    """scipy's linear_sum_assignment on the person level: one column per free place."""
    from scipy.optimize import linear_sum_assignment

    started = time.monotonic()
    mentees = list(problem.mentees)
    slots = [m for m in problem.mentors if m.eligible for _ in range(m.free_places)]
    scores = class_score_matrix([e.profile for e in mentees], [s.profile for s in slots], WEIGHTS)
    most = min(len(mentees), len(slots))
    big = most + 1 if problem.objective == "best_total" else most * int(scores.max()) + 1
    weight = np.asarray(pair_weight(problem.objective, scores, big), dtype=np.int64)
    index = {e.person_id: i for i, e in enumerate(mentees)}
    for j, s in enumerate(slots):
        for a, b in problem.excluded_pairs:
            if b == s.person_id and a in index:
                weight[index[a], j] = 0
    matrix = np.zeros((len(mentees), len(slots) + len(mentees)), dtype=np.int64)
    matrix[:, : len(slots)] = weight
    r, c = linear_sum_assignment(matrix, maximize=True)
    keep = (c < len(slots))
    r, c = r[keep], c[keep]
    keep = weight[r, c] > 0
    r, c = r[keep], c[keep]
    return len(r), int(scores[r, c].sum()), time.monotonic() - started


def compare(problem: MatchingProblem, label: str, solver: str, figures: list[dict[str, Any]]) -> bool:
    started = time.monotonic()
    ours = solve(problem)
    ours_s = time.monotonic() - started
    if solver == "lp":
        matched, total, theirs_s = lp_value(problem)
    else:
        matched, total, theirs_s = hungarian_value(problem)
    same = objective_value(problem.objective, ours.matched, ours.total_score) == objective_value(
        problem.objective, matched, total)
    figures.append({"input": label, "objective": problem.objective, "solver": solver, "equal": same,
                    "ours": {"matched": ours.matched, "score": ours.total_score, "seconds": round(ours_s, 2)},
                    "theirs": {"matched": matched, "score": total, "seconds": round(theirs_s, 2)}})
    print(f"  {label:<38} {problem.objective:<17} ours: {ours.matched} matched, score {ours.total_score} "
          f"({ours_s:.2f}s) | {solver}: {matched} matched, score {total} ({theirs_s:.2f}s) -> "
          f"{'EQUAL' if same else 'DIFFERENT'}")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="20k x 6k, short scale curve, checks (default)")
    mode.add_argument("--full", action="store_true", help="scale curve up to 100,000 mentees")
    args = parser.parse_args()

    figures: dict[str, list[dict[str, Any]]] = {"headline": [], "scale_curve": [], "surplus": [], "solvers": []}
    print("== headline: 20,000 mentees x 6,000 mentors (capacity 1-5, 6 criteria); goal < 10 s, < 2 GB")
    for objective in OBJECTIVES:
        r = measure(20_000, 6_000, objective)
        figures["headline"].append({"mentees": 20_000, "mentors": 6_000, "objective": objective, **r})
        print(f"  {objective:<17} {r['seconds']:>6.2f} s (cpu {r['cpu_seconds']:>5.2f} s)  peak RSS {r['peak_rss_mb']:>5} MB  "
              f"matched {r['matched']}  score {r['total_score']}  classes {r['mentee_classes']}x{r['mentor_classes']}"
              f"  phases {r['phases']}")

    print("== scale curve (mentors = 30% of mentees, so capacity is about 90% of demand)")
    sizes = [5_000, 20_000, 50_000, 100_000] if args.full else [5_000, 20_000]
    for n in sizes:
        for objective in OBJECTIVES if args.full else ("max_participation",):
            r = measure(n, n * 3 // 10, objective)
            figures["scale_curve"].append({"mentees": n, "mentors": n * 3 // 10, "objective": objective, **r})
            print(f"  {n:>7} x {n * 3 // 10:>6}  {objective:<17} {r['seconds']:>6.2f} s (cpu {r['cpu_seconds']:>5.2f} s)  peak RSS "
                  f"{r['peak_rss_mb']:>5} MB  matched {r['matched']}  classes {r['mentee_classes']}x"
                  f"{r['mentor_classes']}")
    print("== surplus capacity: 20,000 mentees x 12,000 mentors")
    for objective in OBJECTIVES:
        r = measure(20_000, 12_000, objective)
        figures["surplus"].append({"mentees": 20_000, "mentors": 12_000, "objective": objective, **r})
        print(f"  {objective:<17} {r['seconds']:>6.2f} s (cpu {r['cpu_seconds']:>5.2f} s)  peak RSS {r['peak_rss_mb']:>5} MB  "
              f"matched {r['matched']}  score {r['total_score']}")

    print("== independent solvers on the same input")
    ok = True
    for objective in OBJECTIVES:
        full = make_problem(20_000, 6_000, objective)
        # The Hungarian method holds a dense person x place matrix: a slice of the same pool.
        part = MatchingProblem(full.mentees[:3_000], full.mentors[:900], WEIGHTS, objective, frozenset(
            (a, b) for a, b in full.excluded_pairs if int(a[1:]) < 3_000 and int(b[1:]) < 900))
        ok &= compare(part, "first 3,000 x 900 of it (Hungarian)", "hungarian", figures["solvers"])
        if args.full:  # HiGHS needs 3-5 minutes per objective on the 6M-variable class LP
            ok &= compare(full, "20,000 x 6,000 (class-level LP, HiGHS)", "lp", figures["solvers"])
    print("ALL EQUAL" if ok else "MISMATCH")
    headline_ok = all(r["seconds"] < 10 and r["peak_rss_mb"] < 2048 for r in figures["headline"])
    print(json.dumps({**figures, "solvers_agree": ok, "goal": "20,000 x 6,000 in < 10 s and < 2 GB",
                      "goal_met": headline_ok}, default=str, indent=2))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
