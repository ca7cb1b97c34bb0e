"""Stress check: many ``fit_task`` runs with LightGBM fits side by side, results identical every time.

LightGBM keeps the thread count of its latest call in one process-wide variable; a call with another
count under a fit running on another thread crashed that fit (``trap divide error`` in
``lib_lightgbm.so``). ``fit_task`` runs the points' refits and the earlier backtest origins on a
thread pool (``model.parallel_fits``), so this script trains ``--runs`` times (the two tasks in
turn) on one simulated world with many refits and checks that nothing crashes and that every run of
a task gives the same refit draws (one SHA-256 per task). Prints one JSON object:

    python benchmarks/stress_parallel_fits.py [--runs 30] [--customers 4000] [--refits 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="fit_task runs (churn and purchase in turn)")
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--refits", type=int, default=20, help="model.points_refits per run")
    parser.add_argument("--workers", type=int, default=2, help="model.parallel_fits")
    args = parser.parse_args()

    import pandas as pd

    from signals.modeling.training import fit_task
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    settings = load_settings(overrides=[f"simulate.n_customers={args.customers}",
                                        f"model.points_refits={args.refits}", "model.bootstrap_rounds=20",
                                        f"model.parallel_fits={args.workers}"])
    world = simulate_crm(settings)
    hashes: dict[str, set[str]] = {}
    seconds: list[float] = []
    started = time.perf_counter()
    for i in range(args.runs):
        task = ("churn", "purchase")[i % 2]
        tick = time.perf_counter()
        trained = fit_task(world.events, settings, task=task, customers=world.customers)
        seconds.append(time.perf_counter() - tick)
        draws = pd.util.hash_pandas_object(trained.point_draws, index=False).to_numpy().tobytes()
        hashes.setdefault(task, set()).add(hashlib.sha256(draws).hexdigest())
        print(f"run {i + 1} of {args.runs}: {task} {seconds[-1]:.1f} s", flush=True, file=sys.stderr)
    fits = args.runs * (args.refits + settings.model.backtest_origins - 1)  # refits and earlier origins
    print(json.dumps({
        "benchmark": "stress_parallel_fits", "runs": args.runs, "customers": args.customers,
        "refits_per_run": args.refits, "workers": args.workers, "fits_side_by_side": fits,
        "distinct_results_per_task": {task: len(h) for task, h in hashes.items()},
        "identical_every_run": all(len(h) == 1 for h in hashes.values()),
        "seconds_total": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
