"""How long the local Kafka broker takes: copying the jars (from Maven's local repository), a cold
start (format + start + first answered metadata request), a warm restart, and a stop.

    uv run python -m bench.broker_bench --quick|--full
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from deploy.kafka.local import LocalKafka, free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--full", action="store_true")
    rounds = 5 if parser.parse_args().full else 2
    home = Path(tempfile.mkdtemp(prefix="broker-bench-"))
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), home=home)
    try:
        t = time.perf_counter()
        kafka.ensure_jars()
        jars = time.perf_counter() - t
        cold, warm, stop = [], [], []
        for _ in range(rounds):
            shutil.rmtree(kafka.data, ignore_errors=True)
            t = time.perf_counter()
            kafka.start()
            cold.append(time.perf_counter() - t)
            kafka.stop()
            t = time.perf_counter()
            kafka.start()
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            kafka.stop()
            stop.append(time.perf_counter() - t)
    finally:
        kafka.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(
        json.dumps(
            {
                "rounds": rounds,
                "jars_copied_s": round(jars, 1),
                "cold_start_median_s": round(statistics.median(cold), 1),
                "cold_start_max_s": round(max(cold), 1),
                "warm_restart_median_s": round(statistics.median(warm), 1),
                "stop_median_s": round(statistics.median(stop), 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
