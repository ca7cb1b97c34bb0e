"""Benchmark: every view of ``signals report`` on a big simulated CRM, and the whole HTML page.

Workload (defaults): the simulator with 100k customers over 3 years (about 10M touchpoints), as of
the day after the last event. In a fresh process that reads the saved events, each repeat builds
the :class:`~signals.views.History` and the whole report (every view, every figure, the HTML), and
times each stage from the report's progress messages. For a yardstick measured on the same machine
in the same run, it also times the feature matrix (every default family) for every customer at the
as-of date, and reports the ratio. Prints JSON:

    python benchmarks/bench_views.py [--customers 100000] [--repeat 3]

``seconds_median`` is the median wall time of ``--repeat`` runs; every run is listed. The target
(issue 18) is all views at 100k customers / 10M touchpoints in under 30 s.
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


def worker(folder: Path, repeat: int) -> dict:
    """Time the report ``repeat`` times on the saved events; return per-stage medians."""
    from signals.features.matrix import build_features
    from signals.features.spec import FeatureSpec
    from signals.jobs.report import default_as_of
    from signals.schemas import check_events
    from signals.settings import load_settings
    from signals.views import History
    from signals.views.report import build_report

    settings = load_settings()
    events = check_events(pd.read_parquet(folder / "events.parquet"), tuple(settings.catalog))
    customers = pd.read_parquet(folder / "customers.parquet")
    as_of = default_as_of(events, settings.timezone)
    loaded_rss = _peak_rss_mb()
    runs, stages, html_bytes, figures = [], [], 0, 0
    for i in range(repeat):
        marks: list[tuple[str, float]] = []
        started = time.perf_counter()
        history = History(events, as_of, settings, customers=customers, validate=False)
        marks.append(("index events", time.perf_counter()))
        report = build_report(history, progress=lambda m, marks=marks: marks.append((m, time.perf_counter())))
        finished = time.perf_counter()
        runs.append(finished - started)
        starts = [t for _, t in marks[1:]]             # a progress message starts its stage
        per_stage = {"index events": marks[0][1] - started}
        per_stage.update({name: end - start for (name, start), end in
                          zip(marks[1:], starts[1:] + [finished], strict=True)})
        stages.append(per_stage)
        html_bytes, figures = len(report.html.encode()), len(report.figures)
        print(f"views run {i + 1}/{repeat}: {runs[-1]:.1f} s", file=sys.stderr, flush=True)
        del history, report
    spec = FeatureSpec.from_settings(settings)
    reference = []
    for _ in range(repeat):
        cutoffs = pd.DataFrame({"customer_id": events["customer_id"].cat.categories.astype(str),
                                "cutoff": as_of})
        started = time.perf_counter()
        build_features(events, cutoffs, spec, validate=False)
        reference.append(time.perf_counter() - started)
    return {
        "runs": [round(r, 3) for r in runs],
        "seconds_median": round(statistics.median(runs), 3),
        "stages_median": {k: round(statistics.median(s[k] for s in stages), 3) for k in stages[0]},
        "html_mb": round(html_bytes / 1e6, 2),
        "figures": figures,
        "reference_features_at_as_of": {"runs": [round(r, 3) for r in reference],
                                        "seconds_median": round(statistics.median(reference), 3),
                                        "rows": int(events["customer_id"].cat.categories.size)},
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "data_loaded_rss_mb": round(loaded_rss, 1),
        "as_of": str(as_of),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.folder, args.repeat)))
        return

    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    settings = load_settings(overrides=[f"simulate.n_customers={args.customers}"])
    started = time.perf_counter()
    world = simulate_crm(settings)
    simulate_seconds = time.perf_counter() - started
    n_events = len(world.events)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        world.events.to_parquet(folder / "events.parquet")
        world.customers.to_parquet(folder / "customers.parquet")
        del world
        cmd = [sys.executable, __file__, "--worker", "--folder", str(folder), "--repeat", str(args.repeat)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        sys.stderr.write(done.stderr)
        views = json.loads(done.stdout.strip().splitlines()[-1])
    reference = views["reference_features_at_as_of"]["seconds_median"]
    result = {
        "benchmark": "views",
        "customers": args.customers,
        "events": n_events,
        "seconds_median": views["seconds_median"],
        "target_seconds": 30,
        "within_target": views["seconds_median"] < 30,
        "ratio_to_features_at_as_of": round(views["seconds_median"] / reference, 2) if reference else None,
        "simulate_seconds": round(simulate_seconds, 1),
        "views": views,
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
