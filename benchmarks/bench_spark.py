"""Benchmark: features on Spark (``local[2]``) against the pandas path, and the driver's memory.

Workload (defaults): the simulator with 100k customers over 3 years (about 10M touchpoints) and
the first 10% of its customers (about 1M touchpoints), 12 monthly cutoffs that leave a 90-day
label horizon, every default feature family. Each engine and size runs in its own fresh process
reading the same Parquet files, so every peak RSS is that run's own. Prints JSON:

    python benchmarks/bench_spark.py [--customers 100000] [--repeat 3] [--buckets 64] [--driver-memory 6g] [--sizes small,large]

- **pandas**: ``read_events`` + ``build_features`` + ``write_table`` (what ``signals features``
  does once the cutoffs are known); ``build_seconds`` is ``build_features`` alone.
- **spark**: a ``local[2]`` session; ``end_to_end_seconds`` is the validation jobs
  (``validate_seconds``) + features written to Parquet (``features_parquet_seconds``; reading the
  input Parquet is lazy, so it is inside; the first run also pays the JIT and the Python workers
  starting). Where the time goes: ``build_features_task_seconds`` (seconds inside
  ``build_features`` summed over all tasks, from an accumulator; two tasks run at once, so
  ``build_features_share_of_task_slots`` is that over twice the wall time) and, at the large
  size, ``shuffle_only_seconds`` (one separate job: events and cutoffs shuffled by customer
  bucket and handed to Python through Arrow with a trivial function, the cost of the mechanism).
  The rest is Spark: reading Parquet, the shuffle, Arrow both ways, writing Parquet.
- **driver memory**: the Python driver's peak RSS (where ``collect()`` / ``toPandas()`` would
  land) and the JVM's (in local mode the JVM is the driver *and* the executors, so it holds the
  shuffle buffers too, within ``spark.driver.memory``), at both sizes; the Python workers' peak
  (executor side, sampled every 0.2 s) for scale. ``rss_ratio_10x`` = peak at the large size over
  the peak at the small one.
- **equality**: the Spark output at the large size read back and compared with the pandas
  features, every row and column (``max_abs_diff``).

``ratio`` = spark median / pandas median, measured in the same invocation. The machine is shared:
``load_average`` is sampled before and after each run.

**Scoring** (``--scoring``; cheap, a few minutes): the simulator with ``--score-customers``
customers (default 5k), both tasks trained once (``signals train``), then ``signals score`` as of
the last month with the pandas engine and with ``--engine spark`` (``local[2]``), each in its own
process, ``--repeat`` times, both writing the ``customer_signals`` Parquet batches (sink
``files``). Prints the medians, their ratio, the Spark session start (outside the runs), the
Python drivers' peak RSS and the equality of the two outputs (max |score difference|, ranks,
bands, alarms and reasons identical).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that across
    fork + exec, so a worker would report its parent's peak (the whole simulated world)."""
    return _hwm_mb(os.getpid()) or float("nan")


def _hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class _WorkerSampler:
    """Peak RSS of the Python worker processes (descendants of the JVM), sampled in a thread."""

    def __init__(self, jvm_pid: int) -> None:
        import psutil

        self.jvm = psutil.Process(jvm_pid)
        self.peak_total = 0.0
        self.peak_single = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0.0
            try:
                children = self.jvm.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                try:
                    rss = child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def pandas_worker(folder: Path, repeat: int, compare: Path | None) -> dict:
    from signals.features.matrix import build_features, feature_columns
    from signals.features.spec import FeatureSpec
    from signals.io.tables import read_events, read_table, write_table
    from signals.schemas import check_cutoffs
    from signals.settings import load_settings

    spec = FeatureSpec.from_settings(load_settings())
    runs, builds = [], []
    out = None
    for i in range(repeat):
        started = time.perf_counter()
        events = read_events(folder / "events.parquet", spec.touchpoints)
        cutoffs = check_cutoffs(read_table(folder / "cutoffs.parquet"))
        built = time.perf_counter()
        out = build_features(events, cutoffs, spec, validate=False)
        builds.append(time.perf_counter() - built)
        write_table(out, folder / f"pandas-{i}.parquet")
        runs.append(time.perf_counter() - started)
        print(f"pandas run {i + 1}/{repeat}: {runs[-1]:.1f} s (build {builds[-1]:.1f} s)", file=sys.stderr, flush=True)
        del events
    result = {"runs": [round(r, 2) for r in runs], "seconds_median": round(statistics.median(runs), 2),
              "build_seconds_median": round(statistics.median(builds), 2), "rows": len(out),
              "features": len(feature_columns(out)), "peak_rss_mb": round(_peak_rss_mb(), 1)}  # before comparing
    if compare is not None:
        result["equality"] = _compare(out, pd.read_parquet(compare))
    return result


def _compare(expected: pd.DataFrame, got: pd.DataFrame) -> dict:
    """Every row and column of the Spark output against the pandas features."""
    keys = ["customer_id", "cutoff"]
    expected = expected.assign(customer_id=expected["customer_id"].astype(str)).sort_values(keys, ignore_index=True)
    got = got.assign(cutoff=pd.to_datetime(got["cutoff"], utc=True)).sort_values(keys, ignore_index=True)
    same_keys = bool((expected["customer_id"].to_numpy() == got["customer_id"].to_numpy()).all()
                     and (expected["cutoff"].dt.as_unit("ns").array.asi8 == got["cutoff"].dt.as_unit("ns").array.asi8).all())
    worst, nan_mismatch = 0.0, 0
    for column in expected.columns[2:]:
        a, b = expected[column].to_numpy(np.float64), got[column].to_numpy(np.float64)
        nan_mismatch += int((np.isnan(a) != np.isnan(b)).sum())
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0, where=~np.isnan(a) & ~np.isnan(b))))
    return {"rows": len(expected), "same_rows_and_columns": same_keys and list(expected.columns) == list(got.columns)
            and len(expected) == len(got), "nan_mismatches": nan_mismatch, "max_abs_diff": worst}


def spark_worker(folder: Path, repeat: int, buckets: int, decompose: bool, driver_memory: str) -> dict:
    from signals import spark as ss
    from signals.features.matrix import build_features
    from signals.features.spec import FeatureSpec
    from signals.settings import load_settings

    spec = FeatureSpec.from_settings(load_settings())
    started = time.perf_counter()
    spark = ss.spark_session("local[2]", shuffle_partitions=buckets, app_name="bench-spark", driver_memory=driver_memory)
    spark.sparkContext.setLogLevel("ERROR")
    session_seconds = time.perf_counter() - started
    jvm_pid = spark.sparkContext._gateway.proc.pid

    def inputs():
        return (ss.read_parquet_spark(spark, folder / "events.parquet"),
                ss.read_parquet_spark(spark, folder / "cutoffs.parquet"))

    seconds_in_builder = spark.sparkContext.accumulator(0.0)

    def timed(events_pdf, cutoffs_pdf):
        t = time.perf_counter()
        out = build_features(events_pdf, cutoffs_pdf, spec)
        seconds_in_builder.add(time.perf_counter() - t)
        return out

    schema = ss.feature_schema(spec)
    keys = ss.schema_of(pd.DataFrame({"customer_id": pd.Series([], dtype=object),
                                      "cutoff": pd.Series([], dtype="datetime64[ns, UTC]")}))
    result: dict = {"session_seconds": round(session_seconds, 2), "buckets": buckets}
    with _WorkerSampler(jvm_pid) as sampler:
        parts: dict[str, list[float]] = {k: [] for k in ("validate", "features_parquet", "build_features_task",
                                                         "end_to_end")}
        for i in range(repeat):
            events, cutoffs = inputs()
            t = time.perf_counter()
            ss.check_events_spark(events, spec.touchpoints)
            ss.check_cutoffs_spark(cutoffs)
            parts["validate"].append(time.perf_counter() - t)
            before = seconds_in_builder.value
            t = time.perf_counter()  # = build_features_spark(..., validate=False), with the builder timed
            ss.map_customer_groups(events, cutoffs, timed, schema, buckets=buckets) \
              .write.mode("overwrite").parquet(str(folder / "spark-out"))
            parts["features_parquet"].append(time.perf_counter() - t)
            parts["build_features_task"].append(seconds_in_builder.value - before)
            parts["end_to_end"].append(parts["validate"][-1] + parts["features_parquet"][-1])
            print(f"spark run {i + 1}/{repeat}: {parts['end_to_end'][-1]:.1f} s", file=sys.stderr, flush=True)
        result["runs"] = [round(r, 2) for r in parts["end_to_end"]]
        result |= {f"{k}_seconds_median": round(statistics.median(v), 2) for k, v in parts.items()}
        # two task slots (local[2]): the share of the slots' time spent inside build_features
        result["build_features_share_of_task_slots"] = round(
            statistics.median(parts["build_features_task"]) / (2 * statistics.median(parts["features_parquet"])), 3)
        if decompose:  # once: the mechanism alone (shuffle by bucket + Arrow to Python and back)
            events, cutoffs = inputs()
            t = time.perf_counter()
            ss.map_customer_groups(events, cutoffs, lambda e, c: c, keys, buckets=buckets) \
              .write.format("noop").mode("overwrite").save()
            result["shuffle_only_seconds"] = round(time.perf_counter() - t, 2)
        rows = spark.read.parquet(str(folder / "spark-out")).count()
    result |= {
        "rows": rows,
        "python_driver_peak_rss_mb": round(_peak_rss_mb(), 1),
        "jvm_peak_rss_mb": round(_hwm_mb(jvm_pid) or float("nan"), 1),
        "python_workers_peak_rss_mb": {"sum": round(sampler.peak_total, 1), "largest": round(sampler.peak_single, 1)},
        "spark_driver_memory": spark.conf.get("spark.driver.memory", "1g"),
        "events_collected_to_driver": False,
    }
    spark.stop()
    return result


def _score_settings(folder: Path, customers: int):
    from signals.settings import load_settings

    return load_settings(overrides=[
        f"simulate.n_customers={customers}", "model.bootstrap_rounds=20", "model.points_reference_rows=2000",
        f"paths.events={folder / 'events.parquet'}", f"paths.customers={folder / 'customers.parquet'}",
        f"paths.truth={folder / 'truth.json'}", f"paths.models_dir={folder / 'models'}", "sink.kind=files",
        f"mlflow.tracking_uri=sqlite:///{folder / 'mlflow.db'}", "sink.url_env=null"])


def score_worker(engine: str, folder: Path, customers: int, repeat: int, as_of: str) -> dict:
    """``signals score`` (both tasks, Parquet sink) with one engine, ``repeat`` times, in this process."""
    settings = _score_settings(folder, customers)
    settings = settings.model_copy(update={"sink": settings.sink.model_copy(update={"folder": folder / engine})})
    result: dict = {}
    if engine == "spark":
        from signals import spark as ss
        from signals.jobs.spark import run_score_spark

        started = time.perf_counter()
        spark = ss.spark_session("local[2]", shuffle_partitions=16, app_name="bench-spark-score")
        spark.sparkContext.setLogLevel("ERROR")
        result["session_seconds"] = round(time.perf_counter() - started, 2)
        jvm_pid = spark.sparkContext._gateway.proc.pid

        def run():
            return run_score_spark(settings, as_of=as_of, spark=spark)
    else:
        from signals.jobs.score import run_score

        def run():
            return run_score(settings, as_of=as_of, show_progress=False)
    runs = []
    for i in range(repeat):
        started = time.perf_counter()
        done = run()
        runs.append(time.perf_counter() - started)
        print(f"score {engine} run {i + 1}/{repeat}: {runs[-1]:.1f} s", file=sys.stderr, flush=True)
    result |= {"runs": [round(r, 2) for r in runs], "seconds_median": round(statistics.median(runs), 2),
               "rows": done.written.rows, "stages_last_run": {k: round(v, 2) for k, v in done.seconds.items()},
               "python_driver_peak_rss_mb": round(_peak_rss_mb(), 1)}
    if engine == "spark":
        result["jvm_peak_rss_mb"] = round(_hwm_mb(jvm_pid) or float("nan"), 1)
    return result


def _compare_scores(folder: Path) -> dict:
    """The two engines' Parquet batches, row by row."""
    from signals.io.sinks import FileSink

    keys = ["task", "customer_id"]
    a = FileSink(folder / "pandas").read().sort_values(keys, ignore_index=True)
    b = FileSink(folder / "spark").read().sort_values(keys, ignore_index=True)
    same_text = all(a[c].astype(object).where(a[c].notna(), None).tolist()
                    == b[c].astype(object).where(b[c].notna(), None).tolist()
                    for c in ("customer_id", "task", "band", "alarm", "reason_1", "reason_2", "reason_3", "segment",
                              "journey_stage", "model_version"))
    numbers = ["score", "temperature", "temperature_prior", "temperature_change_14d", "temperature_change_30d"]
    worst = {c: float(np.nanmax(np.abs(a[c].to_numpy(float) - b[c].to_numpy(float)), initial=0.0)) for c in numbers}
    return {"rows": [len(a), len(b)], "text_columns_identical": bool(same_text and len(a) == len(b)),
            "ranks_identical": bool((a["rank"].to_numpy() == b["rank"].to_numpy()).all()),
            "as_of_identical": bool((a["as_of"] == b["as_of"]).all()),
            "max_abs_diff": worst}


def scoring_main(args) -> None:
    from signals.jobs.simulate import run_simulate
    from signals.jobs.train import run_train

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = _score_settings(folder, args.score_customers)
        started = time.perf_counter()
        world = run_simulate(settings, messy=False)
        for task in ("purchase", "churn"):
            run_train(settings, task=task)
        print(f"world and models: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        last = pd.read_parquet(settings.paths.events, columns=["ts"])["ts"].max()
        as_of = (last.tz_convert(settings.timezone).normalize().replace(day=1)).strftime("%Y-%m-%d")
        result: dict = {"benchmark": "spark_scoring", "customers": args.score_customers, "events": world["events"],
                        "as_of": as_of, "repeat": args.repeat}
        for engine in ("spark", "pandas"):
            result[engine] = _run(["--worker", f"score-{engine}", "--folder", str(folder), "--repeat", str(args.repeat),
                                   "--score-customers", str(args.score_customers), "--as-of", as_of])
        result["ratio_spark_over_pandas"] = round(result["spark"]["seconds_median"] / result["pandas"]["seconds_median"], 2)
        result["equality"] = _compare_scores(folder)
    import pyspark

    result["machine"] = {"cpus": os.cpu_count(), "pyspark": pyspark.__version__, "java": _java_version()}
    print(json.dumps(result))


def _run(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, *args]
    load_before = os.getloadavg()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if done.returncode:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit(f"worker failed: {' '.join(args)}")
    for line in done.stderr.splitlines():
        if "run " in line and ("pandas" in line or "spark" in line):  # also "score <engine> run i/n"
            print(line, file=sys.stderr, flush=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["load_average"] = {"before": [round(x, 1) for x in load_before], "after": [round(x, 1) for x in os.getloadavg()]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cutoffs", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large-repeat", type=int, default=None, help="runs at the large size (default --repeat)")
    parser.add_argument("--buckets", type=int, default=64, help="customer groups (= shuffle partitions)")
    parser.add_argument("--driver-memory", default="6g",
                        help="local mode: the driver JVM also runs the executors (1g and 2g ran out at 10M)")
    parser.add_argument("--sizes", default="small,large", help="which sizes to run (small = 10%% of the customers)")
    parser.add_argument("--scoring", action="store_true", help="measure scoring instead (see the docstring)")
    parser.add_argument("--score-customers", type=int, default=5_000, help="--scoring: simulated customers")
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["pandas", "spark", "score-pandas", "score-spark"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--compare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--decompose", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "pandas":
        print(json.dumps(pandas_worker(args.folder, args.repeat, args.compare)))
        return
    if args.worker == "spark":
        print(json.dumps(spark_worker(args.folder, args.repeat, args.buckets, args.decompose, args.driver_memory)))
        return
    if args.worker in ("score-pandas", "score-spark"):
        print(json.dumps(score_worker(args.worker.split("-")[1], args.folder, args.score_customers, args.repeat,
                                      args.as_of)))
        return
    if args.scoring:
        scoring_main(args)
        return

    from signals.cutoffs import training_cutoffs
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    settings = load_settings(overrides=[f"simulate.n_customers={args.customers}"])
    world = simulate_crm(settings)
    events = world.events
    small_ids = world.customers["customer_id"].astype(str).iloc[: args.customers // 10]
    sizes = {"small": events[events["customer_id"].astype(str).isin(set(small_ids))], "large": events}
    del world
    result: dict = {"benchmark": "spark_features", "customers": args.customers, "cutoffs": args.cutoffs,
                    "repeat": args.repeat, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, frame in sizes.items():
            folder = Path(tmp) / name
            folder.mkdir()
            frame = frame.reset_index(drop=True)
            frame.to_parquet(folder / "events.parquet")
            training_cutoffs(frame, horizon_days=90, n_cutoffs=args.cutoffs, timezone=settings.timezone) \
                .to_parquet(folder / "cutoffs.parquet")
            result["sizes"][name] = {"events": len(frame)}
        del sizes, events, frame
        for name in args.sizes.split(","):
            folder = Path(tmp) / name
            large = name == "large"
            repeat = (args.large_repeat or args.repeat) if large else args.repeat
            print(f"{name}: {result['sizes'][name]['events']:,} events", file=sys.stderr, flush=True)
            spark = _run(["--worker", "spark", "--folder", str(folder), "--repeat", str(repeat),
                          "--buckets", str(args.buckets), "--driver-memory", args.driver_memory,
                          *(["--decompose"] if large else [])])
            pandas_args = ["--worker", "pandas", "--folder", str(folder), "--repeat", str(repeat)]
            if large:
                pandas_args += ["--compare", str(folder / "spark-out")]
            pandas_run = _run(pandas_args)
            result["sizes"][name] |= {"rows": pandas_run["rows"], "features": pandas_run["features"],
                                      "spark": spark, "pandas": pandas_run,
                                      "ratio_spark_over_pandas": round(spark["end_to_end_seconds_median"]
                                                                       / pandas_run["seconds_median"], 2)}
            print(f"PARTIAL {name} " + json.dumps(result["sizes"][name]), file=sys.stderr, flush=True)
    if set(args.sizes.split(",")) != {"small", "large"}:
        print(json.dumps(result))
        return
    small, large = result["sizes"]["small"]["spark"], result["sizes"]["large"]["spark"]
    result["driver_memory"] = {
        "events_small": result["sizes"]["small"]["events"], "events_large": result["sizes"]["large"]["events"],
        "python_driver_peak_rss_mb": [small["python_driver_peak_rss_mb"], large["python_driver_peak_rss_mb"]],
        "jvm_peak_rss_mb": [small["jvm_peak_rss_mb"], large["jvm_peak_rss_mb"]],
        "python_driver_rss_ratio_10x": round(large["python_driver_peak_rss_mb"] / small["python_driver_peak_rss_mb"], 2),
        "jvm_rss_ratio_10x": round(large["jvm_peak_rss_mb"] / small["jvm_peak_rss_mb"], 2),
        "pandas_peak_rss_mb": [result["sizes"]["small"]["pandas"]["peak_rss_mb"],
                               result["sizes"]["large"]["pandas"]["peak_rss_mb"]],
    }
    import pyspark

    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "pandas": pd.__version__,
                         "pyspark": pyspark.__version__, "java": _java_version()}
    print(json.dumps(result))


def _java_version() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        return done.stderr.splitlines()[0] if done.stderr else "unknown"
    except OSError:
        return "missing"


if __name__ == "__main__":
    main()
