"""Every benchmark in one run: `uv run python -m bench --quick|--full [--only NAME ...]`.

Each benchmark runs as its own process (so one's memory does not count against another's), with
its wall time, peak resident memory and the host's speed just before it (a fixed pure-Python
probe) recorded beside the figures it prints (its last JSON object). The table is printed and written to bench/results/<time>.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHES = ("broker", "store", "pipeline", "matching", "activity", "payments", "notify", "gateway", "latency", "reports")


def last_json(text: str) -> Any:
    """The last complete JSON object a benchmark printed (they print their figures last)."""
    decoder = json.JSONDecoder()
    found: Any = None
    i = text.find("{")
    while i >= 0:
        try:
            found, end = decoder.raw_decode(text, i)
        except ValueError:
            end = i + 1
        # Past a whole object, not into it: its nested objects are not the figures.
        i = text.find("{", end)
    return found


def host_probe_ms(rounds: int = 3) -> float:
    """How fast this machine runs Python right now: a fixed pure-Python workload (dict updates,
    JSON encoding), the best of `rounds`, in ms. This host's speed drifts by a factor of two
    within minutes (the same probe took 0.57-1.10 s at four times the size in one session), so
    the absolute figures of two runs compare only beside their probes; the ratios to raw Kafka
    cancel most of it."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        counts: dict[str, int] = {}
        for i in range(50_000):
            key = f"k{i % 1000}"
            counts[key] = counts.get(key, 0) + i
            json.dumps({"a": i, "b": [1, 2, 3]})
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def run_one(name: str, size: str) -> dict[str, Any]:
    probe = host_probe_ms()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}_bench", f"--{size}"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "bench": name,
        "exit_code": done.returncode,
        "wall_seconds": round(seconds, 1),
        "host_probe_ms": probe,  # just before it ran (host_probe_ms)
        # ru_maxrss of children is the largest so far; it is this run's when it grew.
        "peak_rss_mib": round(peak_kib / 1024) if peak_kib > before else None,
        "figures": last_json(done.stdout),
        "stderr_tail": done.stderr.strip().splitlines()[-5:] if done.returncode else [],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--full", action="store_true")
    parser.add_argument("--only", nargs="*", choices=BENCHES)
    args = parser.parse_args()
    chosen = args.only or list(BENCHES)
    results = []
    for name in chosen:
        print(f"== {name} ({'full' if args.full else 'quick'})", flush=True)
        result = run_one(name, "full" if args.full else "quick")
        print(json.dumps(result, indent=2), flush=True)
        results.append(result)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"size": "full" if args.full else "quick", "results": results}, indent=2))
    print(f"\n{'bench':<10} {'exit':>4} {'seconds':>8} {'peak MiB':>9} {'probe ms':>9}")
    for r in results:
        print(f"{r['bench']:<10} {r['exit_code']:>4} {r['wall_seconds']:>8} {r['peak_rss_mib']!s:>9} "
              f"{r['host_probe_ms']:>9}")
    print(f"written to {path}")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
