"""Benchmark training: ``fit_task`` per task on the demo world, by step and by interval method.

Simulates the demo world (``configs/demo.yaml``, ``--customers``), then times ``fit_task`` for each
task and each ``model.points_interval`` method in ``--intervals`` (the refits behind the points'
intervals are the expensive part). Two references measured in the same run, because the machine
is shared and absolute seconds drift:

- ``one_fit_seconds``: one LightGBM fit (``fit_model``) on the same task's kept split, so every
  total is also given as a multiple of it (``fits``);
- with ``--reference-src PATH`` (the ``src`` folder of another checkout, e.g. ``main``), the same
  task trained by that version in a subprocess on the same files, run alternately with this one
  (``--repeat`` times), as the ratio of the medians.

    python benchmarks/bench_training.py [--customers 10000] [--intervals half_sample,none,bootstrap]
                                        [--reference-src ../main/src] [--repeat 3] [--set key=value]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"

_REFERENCE = """
import sys, time
from signals.io.tables import read_events, read_table
from signals.modeling.training import fit_task
from signals.settings import load_settings
folder, task, *overrides = sys.argv[1:]
settings = load_settings({demo!r}, overrides)
events = read_events(folder + "/events.parquet", settings.catalog)
customers = read_table(folder + "/customers.parquet")
started = time.perf_counter()
fit_task(events, settings, task=task, customers=customers)
print(time.perf_counter() - started)
"""


def _reference_seconds(src: Path, folder: Path, task: str, overrides: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", _REFERENCE.format(demo=str(DEMO)), str(folder), task, *overrides],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--tasks", default="purchase,churn")
    parser.add_argument("--intervals", default="half_sample,none", help="points_interval methods to time")
    parser.add_argument("--reference-src", type=Path, default=None, help="src folder of a version to compare with")
    parser.add_argument("--repeat", type=int, default=1, help="runs of the default method (and the reference)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key.path=value override")
    args = parser.parse_args()

    from signals.io.world import write_world
    from signals.modeling.training import backtest_splits, fit_model, fit_task, training_set
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    base = [f"simulate.n_customers={args.customers}", *args.overrides]
    settings = load_settings(DEMO, base)
    world = simulate_crm(settings)
    result = {"benchmark": "bench_training", "customers": args.customers, "events": len(world.events),
              "cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0], "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        folder = Path(tmp)
        write_world(world, settings.paths.model_copy(update={"events": folder / "events.parquet",
                                                             "customers": folder / "customers.parquet",
                                                             "truth": folder / "truth.json"}))
        for task in args.tasks.split(","):
            entry: dict = {"methods": {}}
            ts = training_set(world.events, settings, task=task, customers=world.customers)
            split = backtest_splits(ts)[-1]
            started = time.perf_counter()
            fit_model(ts, split, settings)
            entry["one_fit_seconds"] = round(time.perf_counter() - started, 2)
            methods = args.intervals.split(",")
            for i, method in enumerate(methods):
                runs, steps, reference = [], None, []
                for _ in range(args.repeat if i == 0 else 1):
                    if args.reference_src is not None and i == 0:
                        reference.append(_reference_seconds(args.reference_src, folder, task, base))
                    s = load_settings(DEMO, [*base, f"model.points_interval={method}"])
                    started = time.perf_counter()
                    trained = fit_task(world.events, s, task=task, customers=world.customers)
                    runs.append(time.perf_counter() - started)
                    steps = trained.seconds
                seconds = statistics.median(runs)
                entry["methods"][method] = {"seconds_median": round(seconds, 1), "runs": [round(r, 1) for r in runs],
                                            "fits": round(seconds / entry["one_fit_seconds"], 1), "by_step": steps,
                                            "refits": s.model.points_refits if method != "none" else 0}
                if reference:
                    entry["reference_seconds_median"] = round(statistics.median(reference), 1)
                    entry["reference_runs"] = [round(r, 1) for r in reference]
                    entry["ratio_to_reference"] = round(seconds / statistics.median(reference), 2)
                print(f"{task} {method}: {seconds:.1f} s", file=sys.stderr, flush=True)
            if "none" in entry["methods"] and methods[0] != "none":
                entry["interval_cost_seconds"] = round(entry["methods"][methods[0]]["seconds_median"]
                                                       - entry["methods"]["none"]["seconds_median"], 1)
            result["tasks"][task] = entry
    result["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
