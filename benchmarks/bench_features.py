"""Benchmark: the feature builders against NumPy and pandas peers, in one run, as JSON.

Workload (defaults): the simulator with 100k customers over 3 years (about 10M touchpoints),
12 monthly cutoffs that leave a 90-day label horizon (every customer existing at each cutoff,
about 1.1M rows). The events are handed over as exports come (``--order log``: sorted by time,
not by customer) or already sorted by customer (``--order customer``). Engines:

- ``signals``: ``build_features`` with the full default spec (every default family);
- ``signals_subset``: ``build_features`` with the smallest spec that covers the issue's subset
  (per-type counts over 30/90/365 days, days since the last touch, 30-day decayed count, 365-day
  value; ``benchmarks/feature_peers.py``);
- ``numpy``: a sort-once + searchsorted NumPy build of that subset (one task per type);
- ``pandas``: filter + groupby per cutoff, the same subset;
- ``reference``: the plain reference of every feature (slow, opt-in with ``--reference``).

Each engine runs in its own fresh process that reads the same Parquet files, so its peak RSS is
its own (data + work), once per thread count of ``--threads`` for the threaded ones. Prints one
JSON object:

    python benchmarks/bench_features.py [--customers 100000] [--order log|customer] [--threads 1 2]
                                        [--repeat 3] [--pandas-repeat 3] [--reference]

The engines import ``signals`` from the environment: with ``PYTHONPATH=<older checkout>/src`` the
same command measures an older version (one without ``features.threads`` runs single-threaded).

``seconds_median`` is the median wall time of the runs in one process (all runs are listed; the
first also pays first-touch page faults); ``cpu_seconds`` is the process CPU time of each run
(all threads), which other processes on a busy machine disturb less. ``ratios`` compare medians
of the same invocation: ``pandas_over_subset`` (how many times faster than the pandas peer),
``subset_over_numpy`` (how many times slower than the NumPy peer at the same thread count),
``threads_speedup``; ``cpu_ratios`` are the single-thread ones on CPU time. The peers' features
are checked against signals on 20,000 sampled rows (``agreement``, max abs and rel differences),
and the signals outputs of 1 and 2 threads are compared byte for byte (SHA-256 of every column,
``identical_across_threads``). ``memory_ratio`` is the peak RSS over (RSS with the events loaded
+ the output matrix). ``load_average`` is ``os.getloadavg()`` before and after: the machine is
shared, so absolute seconds are noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
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
KINDS = ("signals", "signals_subset", "numpy", "pandas", "reference")
THREADED = ("signals", "signals_subset", "numpy")
SAMPLE_ROWS = 20_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _digest(frame: pd.DataFrame, columns: list[str]) -> str:
    digest = hashlib.sha256()
    for column in columns:
        values = frame[column].to_numpy()
        digest.update(column.encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def worker(kind: str, folder: Path, repeat: int, threads: int) -> dict:
    """Run one engine ``repeat`` times on the saved workload; return timings, memory, checks."""
    from benchmarks.feature_peers import numpy_peer, pandas_peer, subset_columns, subset_spec
    from signals.features.matrix import build_features, feature_columns
    from signals.features.reference import reference_features
    from signals.features.spec import FeatureSpec
    from signals.schemas import check_cutoffs, check_events
    from signals.settings import load_settings

    spec = FeatureSpec.from_settings(load_settings())
    threaded = {"threads": threads}
    if "threads" not in inspect.signature(build_features).parameters:  # an older checkout: before/after
        threaded = {}
    subset = subset_spec(spec, threads if threaded else None)
    base_rss = _rss_mb()
    events = check_events(pd.read_parquet(folder / "events.parquet"), spec.touchpoints)
    cutoffs = check_cutoffs(pd.read_parquet(folder / "cutoffs.parquet"))
    loaded_rss = _rss_mb()
    builds = {
        "signals": lambda: build_features(events, cutoffs, spec, validate=False, **threaded),
        "signals_subset": lambda: build_features(events, cutoffs, subset, validate=False, **threaded),
        "numpy": lambda: numpy_peer(events, cutoffs, spec, threads=threads),
        "pandas": lambda: pandas_peer(events, cutoffs, spec),
        "reference": lambda: reference_features(events, cutoffs, spec),
    }
    runs, cpu, out = [], [], None
    for i in range(repeat):
        del out
        started, started_cpu = time.perf_counter(), time.process_time()
        out = builds[kind]()
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        print(f"{kind} ({threads} thread(s)) run {i + 1}/{repeat}: {runs[-1]:.2f} s", file=sys.stderr, flush=True)
    columns = feature_columns(out)
    output_mb = float(out[columns].memory_usage(index=False, deep=True).sum()) / 2**20
    peak_rss = _peak_rss_mb()
    sample = np.random.default_rng(0).choice(len(out), size=min(SAMPLE_ROWS, len(out)), replace=False)
    np.save(folder / f"sample_{kind}_{threads}.npy",
            out[subset_columns(spec)].iloc[np.sort(sample)].to_numpy(dtype=np.float64))
    return {
        "runs": [round(r, 3) for r in runs], "seconds_median": round(statistics.median(runs), 3),
        "cpu_seconds": [round(c, 3) for c in cpu], "cpu_seconds_median": round(statistics.median(cpu), 3),
        "rows": len(out), "features": len(columns), "threads": threads,
        "peak_rss_mb": round(peak_rss, 1), "loaded_rss_mb": round(loaded_rss, 1),
        "base_rss_mb": round(base_rss, 1),
        "events_mb": round(float(events.memory_usage(index=False, deep=True).sum()) / 2**20, 1),
        "output_mb": round(output_mb, 1),
        "memory_ratio": round(peak_rss / (loaded_rss + output_mb), 3),
        "sha256": _digest(out, columns) if kind.startswith("signals") else None,
    }


def _run_worker(kind: str, folder: Path, repeat: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--folder", str(folder), "--repeat", str(repeat),
           "--threads", str(threads)]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    sys.stderr.write(done.stderr)
    done.check_returncode()
    return json.loads(done.stdout.strip().splitlines()[-1])


def _agreement(folder: Path, kind: str, threads: int, against: str) -> dict:
    """Largest differences of an engine's sampled subset features from signals' (same rows)."""
    mine = np.load(folder / f"sample_{kind}_{threads}.npy")
    theirs = np.load(folder / f"sample_{against}.npy")
    same_nan = bool(np.array_equal(np.isnan(mine), np.isnan(theirs)))
    both = ~np.isnan(mine) & ~np.isnan(theirs)
    diff = np.abs(mine[both] - theirs[both])
    rel = diff / np.maximum(np.abs(theirs[both]), 1e-300)
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel[diff > 1e-9].max()) if (diff > 1e-9).any() else 0.0
    return {"same_missing": same_nan, "max_abs_diff": max_abs, "max_rel_diff_where_abs_above_1e-9": max_rel,
            "within_1e-9": same_nan and bool(np.all(diff <= 1e-9 + 1e-9 * np.abs(theirs[both])))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cutoffs", type=int, default=12)
    parser.add_argument("--order", choices=["log", "customer"], default="log",
                        help="log: events sorted by time, as exports come (default); customer: sorted by customer")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts of signals and the NumPy peer (default: 1 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of signals and the NumPy peer")
    parser.add_argument("--pandas-repeat", type=int, default=3, help="runs of the pandas peer (0: skip it)")
    parser.add_argument("--reference", action="store_true", help="also run the slow plain reference")
    parser.add_argument("--reference-repeat", type=int, default=1)
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        threads = args.threads[0]
        print(json.dumps(worker(args.worker, args.folder, args.repeat, threads)))
        return

    from signals.cutoffs import training_cutoffs
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    load_before = os.getloadavg()
    settings = load_settings(overrides=[f"simulate.n_customers={args.customers}"])
    started = time.perf_counter()
    world = simulate_crm(settings)
    simulate_seconds = time.perf_counter() - started
    events = world.events
    cutoffs = training_cutoffs(events, horizon_days=90, n_cutoffs=args.cutoffs, timezone=settings.timezone)
    if args.order == "log":
        events = events.sort_values("ts", kind="stable", ignore_index=True)
    n_events = len(events)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        events.to_parquet(folder / "events.parquet")
        cutoffs.to_parquet(folder / "cutoffs.parquet")
        del world, events
        for kind in ("signals", "signals_subset", "numpy"):
            for threads in args.threads:
                results[f"{kind}_{threads}"] = _run_worker(kind, folder, args.repeat, threads)
        if args.pandas_repeat:
            results["pandas_1"] = _run_worker("pandas", folder, args.pandas_repeat, 1)
        if args.reference:
            results["reference_1"] = _run_worker("reference", folder, args.reference_repeat, 1)
        first = f"signals_{args.threads[0]}"
        agreement = {name: _agreement(folder, name.rsplit("_", 1)[0], int(name.rsplit("_", 1)[1]), first)
                     for name in results if not name.startswith("signals")}
        agreement.update({name: _agreement(folder, name.rsplit("_", 1)[0], int(name.rsplit("_", 1)[1]), first)
                          for name in results if name.startswith("signals_subset")})

    def median(name: str) -> float:
        return results[name]["seconds_median"]

    ratios: dict[str, float] = {}
    for t in args.threads:
        if "pandas_1" in results:
            ratios[f"pandas_over_subset_{t}"] = round(median("pandas_1") / median(f"signals_subset_{t}"), 2)
            ratios[f"pandas_over_signals_{t}"] = round(median("pandas_1") / median(f"signals_{t}"), 2)
        ratios[f"subset_over_numpy_{t}"] = round(median(f"signals_subset_{t}") / median(f"numpy_{t}"), 2)
        ratios[f"signals_over_subset_{t}"] = round(median(f"signals_{t}") / median(f"signals_subset_{t}"), 2)
        if "reference_1" in results:
            ratios[f"reference_over_signals_{t}"] = round(median("reference_1") / median(f"signals_{t}"), 1)
    if len(args.threads) > 1:
        lo, hi = min(args.threads), max(args.threads)
        for kind in THREADED:
            ratios[f"threads_speedup_{kind}"] = round(median(f"{kind}_{lo}") / median(f"{kind}_{hi}"), 2)
    def cpu(name: str) -> float:
        return results[name]["cpu_seconds_median"]

    cpu_ratios: dict[str, float] = {}  # single-thread engines: CPU time, less disturbed by a busy machine
    if 1 in args.threads:
        if "pandas_1" in results:
            cpu_ratios["pandas_over_subset_1"] = round(cpu("pandas_1") / cpu("signals_subset_1"), 2)
        cpu_ratios["subset_over_numpy_1"] = round(cpu("signals_subset_1") / cpu("numpy_1"), 2)
        cpu_ratios["signals_over_subset_1"] = round(cpu("signals_1") / cpu("signals_subset_1"), 2)
    identical = ({kind: len({results[f"{kind}_{t}"]["sha256"] for t in args.threads}) == 1
                  for kind in ("signals", "signals_subset")} if len(args.threads) > 1 else None)
    result = {
        "benchmark": "features",
        "order": args.order,
        "customers": args.customers,
        "events": n_events,
        "cutoffs": args.cutoffs,
        "rows": results[first]["rows"],
        "features": {"signals": results[first]["features"],
                     "signals_subset": results[f"signals_subset_{args.threads[0]}"]["features"],
                     "peers": results[f"numpy_{args.threads[0]}"]["features"]},
        "simulate_seconds": round(simulate_seconds, 1),
        "engines": results,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
        "identical_across_threads": identical,
        "agreement_with_signals": agreement,
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "pandas": pd.__version__},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
