"""Benchmark: the full default feature set on simulator data, fast builders vs the plain reference.

Workload (defaults): the simulator with 100k customers over 3 years (about 10M touchpoints),
12 monthly cutoffs that leave a 90-day label horizon (every customer existing at each cutoff),
every default feature family. Each implementation runs in its own fresh process that reads the
same Parquet files, so its peak RSS is its own (data + work). Prints JSON:

    python benchmarks/bench_features.py [--customers 100000] [--repeat 3] [--reference-repeat 1]

``seconds_median`` is the median wall time of ``--repeat`` runs in one process (the first run
of a fresh process also pays first-touch page faults; all runs are listed). ``speedup`` is the
reference's median over the fast median, measured in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(kind: str, folder: Path, repeat: int) -> dict:
    """Run one implementation ``repeat`` times on the saved workload; return timings and peak RSS."""
    from signals.features.matrix import build_features, feature_columns
    from signals.features.reference import reference_features
    from signals.features.spec import FeatureSpec
    from signals.schemas import check_cutoffs, check_events
    from signals.settings import load_settings

    spec = FeatureSpec.from_settings(load_settings())
    events = check_events(pd.read_parquet(folder / "events.parquet"), spec.touchpoints)
    cutoffs = check_cutoffs(pd.read_parquet(folder / "cutoffs.parquet"))
    loaded_rss = _peak_rss_mb()
    runs = []
    shape = None
    for i in range(repeat):
        started = time.perf_counter()
        if kind == "fast":
            out = build_features(events, cutoffs, spec, validate=False)
        else:
            out = reference_features(events, cutoffs, spec)
        runs.append(time.perf_counter() - started)
        shape = (len(out), len(feature_columns(out)))
        print(f"{kind} run {i + 1}/{repeat}: {runs[-1]:.1f} s", file=sys.stderr, flush=True)
        del out
    return {"runs": [round(r, 3) for r in runs], "seconds_median": round(statistics.median(runs), 3),
            "rows": shape[0], "features": shape[1], "peak_rss_mb": round(_peak_rss_mb(), 1),
            "data_loaded_rss_mb": round(loaded_rss, 1)}


def _run_worker(kind: str, folder: Path, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--folder", str(folder), "--repeat", str(repeat)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    sys.stderr.write(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cutoffs", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast builders")
    parser.add_argument("--reference-repeat", type=int, default=1, help="runs of the reference (slow)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--worker", choices=["fast", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, args.repeat)))
        return

    from signals.cutoffs import training_cutoffs
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    settings = load_settings(overrides=[f"simulate.n_customers={args.customers}"])
    started = time.perf_counter()
    world = simulate_crm(settings)
    simulate_seconds = time.perf_counter() - started
    events = world.events
    n_events = len(events)
    cutoffs = training_cutoffs(events, horizon_days=90, n_cutoffs=args.cutoffs, timezone=settings.timezone)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        events.to_parquet(folder / "events.parquet")
        cutoffs.to_parquet(folder / "cutoffs.parquet")
        del world, events
        fast = _run_worker("fast", folder, args.repeat)
        reference = None if args.skip_reference else _run_worker("reference", folder, args.reference_repeat)
    result = {
        "benchmark": "features",
        "customers": args.customers,
        "events": n_events,
        "rows": fast["rows"],
        "cutoffs": args.cutoffs,
        "features": fast["features"],
        "events_per_second": round(n_events / fast["seconds_median"]),
        "simulate_seconds": round(simulate_seconds, 1),
        "fast": fast,
        "reference": reference,
        "speedup": round(reference["seconds_median"] / fast["seconds_median"], 1) if reference else None,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "pandas": pd.__version__},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
