"""Batch scoring speed: a million customers as of one date, both tasks, reasons, SQLite write.

    python benchmarks/bench_scoring.py                      # 1M customers, >= 20M touchpoints, 3 repeats
    python benchmarks/bench_scoring.py --customers 100000 --repeats 1

Prepares once (cached in --cache): a 20k-customer world to train both tasks on (bundles with
their scoring policies), and the scoring world, built from 100k-customer simulator parts with
their own seeds and id prefixes, at ``--activity`` (the simulator's activity scale) so that it
holds at least 20 touchpoints per customer. Then each repeat runs in a fresh process (so the peak
memory is the scoring's own): read the events, score as of ``--as-of`` with
:func:`signals.modeling.scoring.score_models` (cutoffs, features, temperatures, predictions,
reasons) and write the rows to a new SQLite file. Prints JSON: seconds per stage (median over the
repeats, and every repeat), the budgeted total (everything but reading the files), peak RSS, the
machine's load average, and two references measured in the same run: LightGBM's own
``pred_contrib`` on a 20k-row sample against the vectorised TreeSHAP on the same rows (a ratio),
and PostgreSQL's write throughput (rows/s, a throwaway server from Debian's packages) for the
same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

PART = 100_000


def _settings(cache: Path, activity: float, n: int, seed: int, overrides=()):
    from signals.settings import load_settings

    return load_settings(overrides=[
        f"simulate.n_customers={n}", f"simulate.activity_scale={activity}", f"simulate.seed={seed}",
        "model.bootstrap_rounds=50", "model.points_reference_rows=1500",
        f"paths.events={cache / 'train' / 'events.parquet'}", f"paths.customers={cache / 'train' / 'customers.parquet'}",
        f"paths.truth={cache / 'train' / 'truth.json'}", f"paths.models_dir={cache / 'models'}",
        *overrides,
    ])


def prepare(cache: Path, customers: int, activity: float) -> dict:
    from signals.jobs.simulate import run_simulate
    from signals.jobs.train import run_train
    from signals.simulate import simulate_crm

    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trained = cache / "models" / "trained.json"
    if not trained.is_file() or json.loads(trained.read_text()).get("activity") != activity:
        settings = _settings(cache, activity, 20_000, 11)
        run_simulate(settings, messy=False)
        for task in ("purchase", "churn"):
            run_train(settings, task=task)
        trained.write_text(json.dumps({"activity": activity}))
    marker = cache / "prepared.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info["customers"] == customers and info["activity"] == activity:
            return info
    parts_events, parts_customers = [], []
    for i, start in enumerate(range(0, customers, PART)):
        n = min(PART, customers - start)
        world = simulate_crm(_settings(cache, activity, n, 1000 + i))
        rename = {c: f"P{i:02d}-{c}" for c in world.events["customer_id"].cat.categories}
        events = world.events.assign(customer_id=world.events["customer_id"].cat.rename_categories(rename))
        people = world.customers.assign(customer_id=world.customers["customer_id"].cat.rename_categories(rename))
        parts_events.append(events)
        parts_customers.append(people)
        print(f"part {i}: {n:,} customers, {len(events):,} events", file=sys.stderr)
    from pandas.api.types import union_categoricals

    ids = union_categoricals([e["customer_id"] for e in parts_events]).categories
    for frames in (parts_events, parts_customers):
        for f in frames:
            f["customer_id"] = pd.Categorical(f["customer_id"].astype(str), categories=ids)
    events = pd.concat(parts_events, ignore_index=True)
    del parts_events
    people = pd.concat(parts_customers, ignore_index=True)
    for name in ("industry", "region"):
        people[name] = people[name].astype(str).astype("category")
    events.to_parquet(cache / "events.parquet", index=False)
    people.to_parquet(cache / "customers.parquet", index=False)
    info = {"customers": customers, "activity": activity, "events": len(events),
            "events_per_customer": len(events) / customers, "prepare_seconds": time.perf_counter() - started}
    marker.write_text(json.dumps(info))
    return info


def measure(cache: Path, as_of: str, activity: float, out: Path) -> dict:
    """One repeat, in this (fresh) process."""
    from signals.io.bundles import load_bundle
    from signals.io.sinks import SqlSink
    from signals.io.tables import read_table
    from signals.modeling.scoring import score_models
    from signals.schemas import check_events

    settings = _settings(cache, activity, 20_000, 11)
    seconds = {}
    clock = time.perf_counter()
    events = check_events(read_table(cache / "events.parquet"), settings.catalog)
    customers = read_table(cache / "customers.parquet")
    seconds["load"] = time.perf_counter() - clock
    models = [load_bundle(cache / "models" / task, task=task) for task in ("purchase", "churn")]
    started = time.perf_counter()
    scored = score_models(events, models, as_of, timezone=settings.timezone, customers=customers,
                          settings=settings.scoring)
    seconds.update(scored.seconds)
    from signals.jobs.score import with_views

    clock = time.perf_counter()
    signals_rows = with_views(scored.signals, events, as_of, settings, customers=customers)
    seconds["views_segment_and_stage"] = time.perf_counter() - clock
    started += seconds["views_segment_and_stage"]  # reported on its own, outside the scoring budget
    scored.signals = signals_rows
    db = cache / "crm.db"
    db.unlink(missing_ok=True)
    clock = time.perf_counter()
    written = SqlSink(f"sqlite:///{db}", chunk_rows=settings.sink.chunk_rows).write(scored.signals, progress=False)
    seconds["write_sqlite"] = time.perf_counter() - clock
    budget = time.perf_counter() - started
    scored.signals.to_parquet(out, index=False)
    # reference, same process: LightGBM's pred_contrib vs the vectorised TreeSHAP on the same 20k rows
    from signals.features.matrix import build_features
    from signals.modeling.scoring import base_spec

    sample = scored.signals.loc[scored.signals["task"] == "purchase", ["customer_id", "as_of"]].head(20_000)
    sample = sample.rename(columns={"as_of": "cutoff"})
    X = build_features(events, sample, base_spec(models[0].spec), customers=customers)
    reference = {}
    for loaded in models:
        Xm = X[loaded.model.feature_names_]
        clock = time.perf_counter()
        loaded.model.booster_.predict(Xm, pred_contrib=True, num_iteration=loaded.model.best_iteration_)
        lightgbm = time.perf_counter() - clock
        shap = loaded.model.tree_shap()
        clock = time.perf_counter()
        shap.contributions(Xm)
        fast = time.perf_counter() - clock
        reference[loaded.task] = {"rows": len(Xm), "trees": len(shap.trees), "pred_contrib_s": lightgbm,
                                  "fast_tree_shap_s": fast, "speedup": lightgbm / fast}
    return {
        "rows_written": written.rows,
        "customers": scored.rows,
        "events": len(events),
        "seconds": seconds,
        "budget_seconds": budget,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "alarms": {t: int(scored.signals.loc[scored.signals["task"] == t, "alarm"].notna().sum())
                   for t in ("purchase", "churn")},
        "tree_shap_reference_20k_rows": reference,
    }


def postgres_throughput(signals_path: Path, repeats: int) -> dict:
    from signals.io.pgserver import PostgresUnavailable, temporary_postgres
    from signals.io.sinks import SqlSink

    frame = pd.read_parquet(signals_path)
    try:
        with temporary_postgres() as url:
            times = []
            for _ in range(repeats):  # the first inserts, the next ones replace the same batch
                sink = SqlSink(url, chunk_rows=50_000)
                clock = time.perf_counter()
                sink.write(frame, progress=False)
                times.append(time.perf_counter() - clock)
                sink.dispose()
            return {"rows": len(frame), "seconds": times, "rows_per_second_median": len(frame) / float(np.median(times)),
                    "insert_rows_per_second": len(frame) / times[0]}
    except PostgresUnavailable as exc:
        return {"skipped": str(exc)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--activity", type=float, default=0.22, help="simulator activity scale of both worlds")
    parser.add_argument("--as-of", default="2025-12-01")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("data/bench_scoring"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--measure-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_into is not None:
        result = measure(args.cache, args.as_of, args.activity, args.measure_into.with_suffix(".parquet"))
        args.measure_into.write_text(json.dumps(result))
        return
    info = prepare(args.cache, args.customers, args.activity)
    load_before = os.getloadavg()
    runs = []
    for i in range(args.repeats):
        target = args.cache / f"repeat{i}.json"
        subprocess.run([sys.executable, __file__, "--cache", str(args.cache), "--as-of", args.as_of,
                        "--activity", str(args.activity), "--measure-into", str(target)], check=True)
        runs.append(json.loads(target.read_text()))
        print(f"repeat {i}: {runs[-1]['budget_seconds']:.1f} s", file=sys.stderr)
    stages = sorted({k for r in runs for k in r["seconds"]})
    result = {
        "workload": {**info, "as_of": args.as_of, "rows_scored": runs[0]["rows_written"]},
        "median_seconds": {k: float(np.median([r["seconds"].get(k, 0.0) for r in runs])) for k in stages},
        "median_budget_seconds": float(np.median([r["budget_seconds"] for r in runs])),
        "budget": "cutoffs + features + temperatures + both models + reasons + SQLite write (not reading the files, "
                  "not the views' segment and journey stage, reported on their own)",
        "target_seconds": 60,
        "peak_rss_gb_max": max(r["peak_rss_gb"] for r in runs),
        "alarms": runs[0]["alarms"],
        "tree_shap_reference_20k_rows": runs[-1]["tree_shap_reference_20k_rows"],
        "repeats": runs,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    if not args.no_postgres:
        result["postgresql_write"] = postgres_throughput(args.cache / f"repeat{args.repeats - 1}.parquet", 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
