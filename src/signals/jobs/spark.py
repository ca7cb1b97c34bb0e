"""Jobs on Spark: ``signals features --engine spark`` and ``signals score --engine spark`` read Parquet
and run the package's own functions on the cluster; features go to a Parquet folder, the
``customer_signals`` rows to the configured sink (:mod:`signals.io.spark_io`).

The session: inside ``spark-submit`` or a Databricks job the platform's session is used (master,
executors and memory come from there); run as a plain command, a local session on every core
(``local[*]``) is started. Paths are local paths or any URI Spark reads (``s3a://``,
``abfss://``, ``dbfs:/``, ``hdfs://``). A local output folder is written whole or not at all
(built next to the target and swapped in, with a lock against a second writer); a remote one is
written with Spark's own commit protocol (``_SUCCESS`` marks a complete write).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from signals.errors import ConfigError, DataError
from signals.features.spec import FeatureSpec
from signals.io.spark_io import exists, is_remote, location
from signals.labels import TASKS
from signals.settings import Settings

__all__ = ["SparkFeaturesRun", "SparkScoreRun", "get_session", "run_features_spark", "run_score_spark",
           "summarize_spark"]


@dataclass
class SparkFeaturesRun:
    """What the Spark features job wrote: ``features`` is the written dataset, read back lazily."""

    features: object  # pyspark.sql.DataFrame
    path: str
    cutoffs: list[pd.Timestamp]
    seconds: float
    n_rows: int

    @property
    def n_features(self) -> int:
        return sum(1 for c in self.features.columns if c.count("__") == 2)


def get_session():
    """The platform's SparkSession (spark-submit, Databricks) or a local one on every core."""
    from pyspark.sql import SparkSession

    from signals.spark import spark_session

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # launched by spark-submit: its conf decides
        return SparkSession.builder.appName("signals").getOrCreate()
    return spark_session("local[*]")


def _parquet_input(spark, path: Path | str, what: str):
    from signals.spark import read_parquet_spark

    path = str(path)
    if not path.endswith(".parquet") and not is_remote(path):
        raise DataError(f"{path}: the Spark engine reads Parquet ({what}); convert the file or point paths.{what} at one")
    return read_parquet_spark(spark, path)


def _read_inputs(spark, settings: Settings):
    """``paths.events`` (required) and ``paths.customers`` (when it exists) as Spark DataFrames, and
    the customers' location (for messages)."""
    events_path, customers_path = location(settings.paths.events), location(settings.paths.customers)
    if not exists(spark, events_path):
        raise DataError(f"no events at {events_path}: run `signals simulate` or `signals ingest` first")
    events = _parquet_input(spark, events_path, "events")
    customers = _parquet_input(spark, customers_path, "customers") if exists(spark, customers_path) else None
    return events, customers, customers_path


def run_features_spark(
    settings: Settings,
    *,
    as_of: str | None = None,
    horizon_days: float | None = None,
    out: Path | str | None = None,
    spark=None,
) -> SparkFeaturesRun:
    """The features job of :func:`signals.jobs.features.run_features` on Spark.

    Reads ``paths.events`` (and ``paths.customers`` when it exists) as Parquet, builds the
    training grid (or one cutoff at ``as_of``) and the features on the cluster, and writes a
    Parquet dataset (a folder of part files; ``pandas.read_parquet`` reads it) to ``out``
    (default ``paths.features``). Nothing but aggregates reaches the driver.
    """
    from signals.io.atomic import atomic_directory, folder_lock

    try:
        from signals.spark import (
            build_features_spark,
            scoring_cutoffs_spark,
            training_cutoffs_spark,
        )
    except ImportError as exc:
        raise ConfigError(f"the Spark engine: {exc}") from None

    started = time.perf_counter()
    spark = spark or get_session()
    paths = settings.paths
    events, customers, customers_path = _read_inputs(spark, settings)
    if settings.features.static_columns and customers is None:
        raise DataError(f"features.static_columns needs a customers table at {customers_path}")
    if as_of is not None:
        cutoffs, instants = scoring_cutoffs_spark(events, as_of, timezone=settings.timezone, customers=customers)
    else:
        horizon = horizon_days or max(settings.labels.churn.horizon_days, settings.labels.purchase.horizon_days)
        c = settings.cutoffs
        cutoffs, instants = training_cutoffs_spark(
            events, horizon_days=horizon, n_cutoffs=c.n_training, frequency=c.frequency, timezone=settings.timezone,
            end=c.end, customers=customers, min_history_days=c.min_history_days)
    spec = FeatureSpec.from_settings(settings)
    features = build_features_spark(events, cutoffs, spec, customers=customers)
    target = location(out or paths.features)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # UTC instants, as pandas writes
    if is_remote(target):
        features.write.mode("overwrite").parquet(target)
    else:
        with folder_lock(target), atomic_directory(target) as tmp:
            features.write.mode("overwrite").parquet(str(tmp))
    written = spark.read.parquet(target)
    return SparkFeaturesRun(written, target, list(instants), time.perf_counter() - started, written.count())


# ---- scoring ------------------------------------------------------------------------------------
@dataclass
class SparkScoreRun:
    """What a Spark scoring run produced (the fields :class:`signals.jobs.score.ScoreRun` has, but
    ``signals`` is the Spark DataFrame of the rows; ``top_signals`` holds the highest ranks per task)."""

    as_of: pd.Timestamp
    signals: object                        # pyspark.sql.DataFrame: customer_signals rows of every task
    top_signals: pd.DataFrame              # rows with rank <= top per task (on the driver: a few rows)
    models: list
    summary: dict                          # per task, as signals.modeling.scoring.summarize
    written: object | None = None          # SinkResult
    seconds: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None


def summarize_spark(signals) -> dict:
    """:func:`signals.modeling.scoring.summarize` from aggregates (one small job): rows, alarms,
    bands, mean and max exactly; the 50th, 90th and 99th percentiles approximately
    (``percentile_approx``, relative rank error 1e-4)."""
    from pyspark.sql import functions as F

    from signals.modeling.scoring import ALARM_OF_TASK, BANDS

    aggregates = [F.count(F.lit(1)).alias("rows"), F.count("alarm").alias("alarms"),
                  *[F.sum(F.when(F.col("band") == b, 1).otherwise(0)).alias(f"band_{b}") for b in BANDS],
                  F.mean("score").alias("score_mean"), F.max("score").alias("score_max"),
                  F.percentile_approx("score", [0.5, 0.9, 0.99], 10_000).alias("q"),
                  F.first("model_name").alias("model_name"), F.first("model_version").alias("model_version")]
    out = {}
    for r in sorted(signals.groupBy("task").agg(*aggregates).collect(), key=lambda r: r["task"]):
        out[r["task"]] = {
            "rows": int(r["rows"]), "alarms": int(r["alarms"]), "alarm": ALARM_OF_TASK.get(r["task"]),
            "bands": {b: int(r[f"band_{b}"]) for b in BANDS}, "score_mean": float(r["score_mean"]),
            **{f"score_p{q}": float(v) for q, v in zip((50, 90, 99), r["q"], strict=True)},
            "score_max": float(r["score_max"]), "model": f"{r['model_name']} {r['model_version']}",
        }
    return out


def _check_models(models: list, customers, settings: Settings) -> None:
    """The pandas job's refusal (:func:`signals.jobs.score._check`): the events are in the config's
    catalog (checked row by row by :func:`signals.spark.check_events_spark`), the customers table
    has the models' static columns."""
    from signals.modeling.scoring import spec_mismatch

    for loaded in models:
        problems = spec_mismatch(loaded.spec, event_types=list(settings.catalog), customers=customers)
        if problems:
            raise DataError(
                f"the {loaded.task} model ({loaded.source}) cannot score these events: " + "; ".join(problems)
                + ". The model's saved feature spec decides the features: score data that has them, "
                  "or retrain the model on this data")


def _to_driver(rows) -> pd.DataFrame:
    """A few rows to pandas; the instants cross as epoch microseconds (no session time zone applies)."""
    from pyspark.sql import functions as F

    times = ("as_of", "scored_at")
    frame = rows.select(*[F.unix_micros(c).alias(c) if c in times else F.col(c) for c in rows.columns]).toPandas()
    for name in times:
        frame[name] = pd.to_datetime(frame[name].astype("int64"), unit="us", utc=True)
    return frame


def run_score_spark(
    settings: Settings,
    *,
    as_of,
    model: str | Path = "models",
    tasks: Sequence[str] = TASKS,
    write: bool = True,
    track: bool = False,
    spark=None,
    buckets: int | None = None,
    top: int = 50,
    progress: Callable[[str], None] | None = None,
) -> SparkScoreRun:
    """The score job of :func:`signals.jobs.score.run_score` on Spark.

    Reads ``paths.events`` (and ``paths.customers`` when it exists) as Parquet, loads each task's
    model with the pandas job's own loader (:func:`signals.jobs.score.load_models`: a bundle
    folder, a folder of bundles, or a registry alias), refuses data that does not fit a model's
    saved spec, scores every customer first seen before ``as_of`` on the cluster
    (:func:`signals.spark.score_signals_spark`: the same rows as the pandas job, ranks global per
    task) and writes them to the sink (:func:`signals.io.spark_io.write_signals_spark`: Parquet
    folders, or JDBC into SQLite / PostgreSQL; a re-run replaces its batches). Only the batch keys,
    the summary aggregates and the ``top`` rows per task reach the driver.
    """
    from signals.cutoffs import as_of_instant
    from signals.io.spark_io import write_signals_spark
    from signals.jobs.score import load_models

    try:
        from pyspark.sql import functions as F

        from signals.spark import score_signals_spark
    except ImportError as exc:
        raise ConfigError(f"the Spark engine: {exc}") from None

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    started = time.perf_counter()
    seconds: dict[str, float] = {}
    try:
        instant = as_of_instant(as_of, settings.timezone)
    except (ValueError, TypeError):
        raise ConfigError(f"as-of {as_of!r} is not a date or a time (e.g. 2026-01-01 or 2026-01-01T09:00)") from None
    models = load_models(settings, model, tasks=tasks)
    custom = [m.task for m in models if settings.cutoffs.custom_for(m.task)]
    if custom:  # the customers due that day come from per-customer cutoffs, not built on Spark yet
        raise ConfigError(f"the Spark engine scores every customer as of a date; {custom} train and score on custom "
                          f"cutoffs (cutoffs.kind {settings.cutoffs.kind}): score them with --engine pandas")
    spark = spark or get_session()
    events, customers, _ = _read_inputs(spark, settings)
    _check_models(models, customers, settings)
    clock = time.perf_counter()
    say(f"scoring {', '.join(m.task for m in models)} as of {instant:%Y-%m-%d %H:%M} UTC on Spark")
    signals = score_signals_spark(events, models, instant, settings=settings, customers=customers, buckets=buckets)
    seconds["score"] = time.perf_counter() - clock
    clock = time.perf_counter()
    summary = summarize_spark(signals)
    best = _to_driver(signals.where(F.col("rank") <= top)).sort_values(["task", "rank"], ignore_index=True)
    seconds["summary"] = time.perf_counter() - clock
    say(f"score: {seconds['score']:.1f} s, summary: {seconds['summary']:.1f} s")
    run = SparkScoreRun(instant, signals, best, models, summary, seconds=seconds)
    if write:
        clock = time.perf_counter()
        say(f"writing {sum(v['rows'] for v in summary.values()):,} rows to the {settings.sink.kind} sink")
        run.written = write_signals_spark(signals, settings.sink)
        seconds["write"] = time.perf_counter() - clock
    if track:
        from signals.jobs.score import log_scoring_run

        run.mlflow_run_id = log_scoring_run(run, settings)
    seconds["total"] = time.perf_counter() - started
    return run
