"""Jobs on Spark: ``signals features --engine spark`` reads Parquet, builds on the cluster, writes Parquet.

The session: inside ``spark-submit`` or a Databricks job the platform's session is used (master,
executors and memory come from there); run as a plain command, a local session on every core
(``local[*]``) is started. Paths are local paths or any URI Spark reads (``s3a://``,
``abfss://``, ``dbfs:/``, ``hdfs://``). A local output folder is written whole or not at all
(built next to the target and swapped in, with a lock against a second writer); a remote one is
written with Spark's own commit protocol (``_SUCCESS`` marks a complete write).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from signals.errors import ConfigError, DataError
from signals.features.spec import FeatureSpec
from signals.settings import Settings

__all__ = ["SparkFeaturesRun", "get_session", "run_features_spark"]


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


_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>.*)$")
# object stores whose URIs name a bucket / container: scheme://bucket/key
_BUCKET_SCHEMES = {"s3", "s3a", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "oss", "cos", "r2"}


def _is_remote(path: str) -> bool:
    return _URI.match(path) is not None


def _location(path: Path | str) -> str:
    """A path as Spark must see it: local paths absolute (the JVM keeps the working directory it
    started in), URIs as they are. Settings hold paths as ``pathlib.Path``, which folds
    ``s3a://bucket/key`` into ``s3a:/bucket/key``: the bucket's two slashes are put back.

    >>> _location(Path("s3a://crm/events/")), _location("dbfs:/crm/events"), _location("hdfs:///x")
    ('s3a://crm/events', 'dbfs:/crm/events', 'hdfs:///x')
    """
    text = str(path)
    match = _URI.match(text)
    if match is None:
        return str(Path(text).resolve())
    if match["scheme"].lower() in _BUCKET_SCHEMES and not match["rest"].startswith("/"):
        return f"{match['scheme']}://{match['rest']}"
    return text


def _exists(spark, path: str) -> bool:
    if not _is_remote(path):
        return Path(path).exists()
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return bool(hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hadoop_path))


def _parquet_input(spark, path: Path | str, what: str):
    from signals.spark import read_parquet_spark

    path = str(path)
    if not path.endswith(".parquet") and not _is_remote(path):
        raise DataError(f"{path}: the Spark engine reads Parquet ({what}); convert the file or point paths.{what} at one")
    return read_parquet_spark(spark, path)


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
    events_path, customers_path = _location(paths.events), _location(paths.customers)
    if not _exists(spark, events_path):
        raise DataError(f"no events at {events_path}: run `signals simulate` or `signals ingest` first")
    events = _parquet_input(spark, events_path, "events")
    customers = _parquet_input(spark, customers_path, "customers") if _exists(spark, customers_path) else None
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
    target = _location(out or paths.features)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # UTC instants, as pandas writes
    if _is_remote(target):
        features.write.mode("overwrite").parquet(target)
    else:
        with folder_lock(target), atomic_directory(target) as tmp:
            features.write.mode("overwrite").parquet(str(tmp))
    written = spark.read.parquet(target)
    return SparkFeaturesRun(written, target, list(instants), time.perf_counter() - started, written.count())
