"""Benchmark the CRM simulator: n customers over the default three years (~100 events each).

Times :func:`signals.simulate.simulate_crm` with the default settings (``configs/default.yaml``,
``simulate.n_customers`` replaced) and prints JSON: customers, events, the median wall time of
``--repeat`` runs, events per second and the peak RSS of this process.

    python benchmarks/bench_simulate.py [--customers 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np
import pandas as pd

from signals.settings import load_settings
from signals.simulate import simulate_crm


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000, help="simulate.n_customers (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median wall time is reported (default 3)")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.repeat < 1:
        parser.error("--customers and --repeat must be >= 1")
    settings = load_settings(overrides=[f"simulate.n_customers={args.customers}"])
    seconds, events = [], None
    for _ in range(args.repeat):
        started = time.perf_counter()
        world = simulate_crm(settings)
        seconds.append(time.perf_counter() - started)
        n_events = len(world.events)
        if events is not None and n_events != events:
            raise RuntimeError("the simulator is not deterministic: runs gave different event counts")
        events = n_events
        del world
    wall = statistics.median(seconds)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak_mb = peak_kib / 1024 if sys.platform != "darwin" else peak_kib / 2**20
    sim = settings.simulate
    result = {
        "benchmark": "simulate_crm",
        "customers": args.customers,
        "days": (sim.end - sim.start).days,
        "events": events,
        "repeat": args.repeat,
        "wall_seconds": round(wall, 3),
        "wall_seconds_runs": [round(s, 3) for s in seconds],
        "events_per_second": round(events / wall),
        "peak_rss_mb": round(peak_mb, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
