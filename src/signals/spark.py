"""The same builders, labels and models on Spark: one customer's rows never leave its group.

Every builder of the package is a pure function of one customer's events (row ``i`` reads only
customer ``i``'s events before its cutoff), so it partitions by customer. This module hashes the
customer ids into ``buckets``, co-groups the events and the cutoffs by bucket
(``groupBy(bucket).cogroup(...).applyInPandas``) and calls the package's own pandas functions on
each bucket: :func:`signals.build_features`, :func:`signals.labels.label_cutoffs`,
:func:`signals.build_training_set`, :meth:`signals.SignalModel.probability`. No second
implementation exists, so the Spark results equal the pandas ones row for row (the tests check
every column to 1e-9). A bucket holds many customers (one Python call per bucket, vectorised
inside), and every customer's events sit in one bucket, however many it has.

Nothing here collects events to the driver: the driver only plans the job, reads the bundle,
computes the cutoff instants from two aggregates (the first and last event time) and runs small
validation aggregates. The events flow executor to executor through the shuffle.

Data in Spark
-------------
- **events**: ``customer_id`` (cast to string), ``ts`` (``TIMESTAMP``; ``TIMESTAMP_NTZ`` is taken
  as UTC), ``touchpoint`` (a catalog type), ``value`` (optional, null = 0); other columns are
  ignored. :func:`read_parquet_spark` reads the package's own Parquet files (pandas writes
  nanosecond timestamps, which Spark cannot read without help).
- **cutoffs**: ``customer_id``, ``cutoff`` (``TIMESTAMP``, whole seconds); build them on the
  cluster with :func:`training_cutoffs_spark` / :func:`scoring_cutoffs_spark`.
- **customers** (only for the ``static`` family): ``customer_id`` and the spec's static columns.

Time travels between the JVM and Python as integer microseconds since the epoch (UTC), never as
local wall-clock times, so the session time zone cannot shift or fold an instant.

The schema of every result is known before any data is read: :func:`feature_schema` evaluates
the package's builders on zero rows of the contract's dtypes, so the Spark columns and types
follow the spec (and the static columns' types in the customers table), never a sample.
pandas ``int32`` becomes ``INT``, ``float64`` ``DOUBLE``, ``int8`` ``TINYINT``, ``bool``
``BOOLEAN``, categoricals (static text attributes) ``STRING`` and ``cutoff`` ``TIMESTAMP``.

Requires the ``spark`` extra (``pip install 'signals[spark]'``) and a Java runtime (17+).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

try:
    from pyspark.sql import Column, DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "signals.spark needs PySpark: install the spark extra (pip install 'signals[spark]') "
        "and a Java runtime 17+ (Debian: apt-get install default-jre-headless)"
    ) from exc

from signals.dataset import LABEL, build_training_set
from signals.errors import DataError
from signals.features.matrix import build_features
from signals.features.spec import FeatureSpec
from signals.labels import TASKS, label_cutoffs
from signals.schemas import CUSTOMER_ID, CUTOFF, TOUCHPOINT, TS, VALUE
from signals.settings import LabelSettings, Touchpoint

__all__ = [
    "build_features_spark",
    "build_training_set_spark",
    "check_cutoffs_spark",
    "check_events_spark",
    "feature_schema",
    "jdbc_jars",
    "label_cutoffs_spark",
    "map_customer_groups",
    "read_parquet_spark",
    "rank_descending_spark",
    "schema_of",
    "score_signals_spark",
    "score_spark",
    "scoring_cutoffs_spark",
    "spark_session",
    "training_cutoffs_spark",
]

BUCKET = "_signals_bucket"
TS_US = "_ts_us"
CUTOFF_US = "_cutoff_us"
HAS_CUSTOMER = "_has_customer"
SCORE = "score"
_US_PER_S = 1_000_000

# (events_pdf, cutoffs_pdf) -> result pdf, both in the pandas contracts of signals.schemas
GroupFunction = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


# ---- the session ------------------------------------------------------------------------------
#: JDBC drivers from Debian's packages (``libpostgresql-jdbc-java``, ``libxerial-sqlite-jdbc-java``;
#: ``make system-deps``): a local session puts those present on its class path (``spark.jars``).
DEBIAN_JDBC_JARS = ("/usr/share/java/postgresql.jar", "/usr/share/java/sqlite-jdbc.jar")


def jdbc_jars() -> list[str]:
    """The JDBC driver jars of :data:`DEBIAN_JDBC_JARS` that exist on this machine."""
    return [path for path in DEBIAN_JDBC_JARS if Path(path).is_file()]


def spark_session(
    master: str = "local[2]",
    *,
    app_name: str = "signals",
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession for local runs and tests (on a cluster, use the one the platform gives).

    Local masters run the Python workers with this interpreter (so they import the same
    ``signals``); the web UI is off, the session time zone is UTC (display only: instants travel
    as epoch microseconds), Arrow is on for ``toPandas`` and Parquet timestamps are written as UTC
    instants (``TIMESTAMP_MICROS``: pandas reads them back tz-aware, not naive ``INT96``), and the
    JDBC drivers of :func:`jdbc_jars` are on the class path (``conf`` may set ``spark.jars``
    instead). An existing session is returned as it is.
    """
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"))
    if master.startswith("local"):
        builder = (builder.config("spark.ui.enabled", "false")
                   .config("spark.pyspark.python", sys.executable)
                   .config("spark.pyspark.driver.python", sys.executable))
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if jdbc_jars() and "spark.jars" not in (conf or {}):
            builder = builder.config("spark.jars", ",".join(jdbc_jars()))
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(int(shuffle_partitions)))
    if driver_memory is not None:
        builder = builder.config("spark.driver.memory", driver_memory)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def read_parquet_spark(spark: SparkSession, path: str | Path) -> DataFrame:
    """Read a Parquet file or folder; nanosecond timestamps (pandas' default) become ``TIMESTAMP``.

    Spark reads only micro- and millisecond Parquet timestamps. The package's tables are written
    by pandas with nanoseconds, so their columns are found from the Parquet schema (read with
    pyarrow, metadata only), read as ``BIGINT`` (``spark.sql.legacy.parquet.nanosAsLong``) and
    converted back to ``TIMESTAMP``, floored to the microsecond (the features compare whole
    seconds; an age changes by under 1e-12 days).
    """
    path = str(path)
    nanos = _nanosecond_columns(path)
    if nanos:
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    frame = spark.read.parquet(path)
    for name in nanos:
        floored_us = F.expr(f"(`{name}` - pmod(`{name}`, 1000)) div 1000")  # exact integer floor
        frame = frame.withColumn(name, F.timestamp_micros(floored_us))
    return frame


def _nanosecond_columns(path: str) -> list[str]:
    try:
        import pyarrow as pa
        import pyarrow.dataset as ds

        schema = ds.dataset(path, format="parquet").schema
    except Exception:  # a store pyarrow cannot open: left to Spark (its own files are in micros)
        return []
    return [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]


# ---- schemas ----------------------------------------------------------------------------------
def _spark_type(dtype) -> T.DataType:
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return T.StringType()
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return T.TimestampType()
    if pd.api.types.is_bool_dtype(dtype):
        return T.BooleanType()
    kind, size = np.dtype(dtype).kind, np.dtype(dtype).itemsize
    if kind in "iu":
        return {1: T.ByteType(), 2: T.ShortType(), 4: T.IntegerType()}.get(size, T.LongType())
    if kind == "f":
        return T.FloatType() if size == 4 else T.DoubleType()
    raise TypeError(f"no Spark type for pandas dtype {dtype}")


def schema_of(frame: pd.DataFrame) -> T.StructType:
    """The Spark schema of a pandas frame of the package (see the module docstring for the map)."""
    return T.StructType([T.StructField(str(name), _spark_type(dtype), True) for name, dtype in frame.dtypes.items()])


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({
        CUSTOMER_ID: pd.Series([], dtype=object),
        TS: pd.Series([], dtype="datetime64[ns, UTC]"),
        TOUCHPOINT: pd.Series([], dtype=object),
        VALUE: pd.Series([], dtype=np.float64),
    })


def _empty_cutoffs() -> pd.DataFrame:
    return pd.DataFrame({CUSTOMER_ID: pd.Series([], dtype=object), CUTOFF: pd.Series([], dtype="datetime64[ns, UTC]")})


def _static_types(columns: Iterable[str], customers_schema: T.StructType | None) -> dict[str, T.DataType]:
    """The Spark types of the static columns in the customers table (empty when none are used)."""
    columns = tuple(columns)
    if not columns:
        return {}
    if customers_schema is None:
        raise DataError(f"the feature spec needs static columns {list(columns)}: pass a customers table")
    fields = {f.name: f.dataType for f in customers_schema.fields}
    missing = [c for c in (CUSTOMER_ID, *columns) if c not in fields]
    if missing:
        raise DataError(f"customers table is missing column(s) {missing}; it has {sorted(fields)}")
    return {c: fields[c] for c in columns}


def _empty_customers(static: Mapping[str, T.DataType]) -> pd.DataFrame | None:
    """Zero customers with the pandas dtypes the Spark types arrive as (see :func:`_customers_frame`)."""
    if not static:
        return None
    columns: dict[str, pd.Series] = {CUSTOMER_ID: pd.Series([], dtype=object)}
    for name, dtype in static.items():
        if isinstance(dtype, T.TimestampType | T.TimestampNTZType):
            columns[name] = pd.Series([], dtype="datetime64[ns, UTC]")
        elif isinstance(dtype, T.NumericType):
            columns[name] = pd.Series([], dtype=np.float64)
        elif isinstance(dtype, T.BooleanType):
            columns[name] = pd.Series([], dtype=bool)
        else:
            columns[name] = pd.Series([], dtype=object)
    return pd.DataFrame(columns)


def feature_schema(spec: FeatureSpec, customers_schema: T.StructType | None = None) -> T.StructType:
    """The Spark schema of :func:`build_features_spark` for ``spec``, known before any data is read.

    It is the schema of ``build_features`` evaluated on zero events and zero cutoffs (the
    contract's dtypes), so it always follows the builders: the columns, their order and their
    types come from the spec, and the static columns' types from ``customers_schema``.

    >>> from signals.settings import load_settings
    >>> schema = feature_schema(FeatureSpec.from_settings(load_settings()))
    >>> [(f.name, f.dataType.simpleString()) for f in schema.fields[:3]]
    [('customer_id', 'string'), ('cutoff', 'timestamp'), ('freq__all__7d', 'int')]
    """
    static = _static_types(spec.static_columns, customers_schema)
    return schema_of(build_features(_empty_events(), _empty_cutoffs(), spec, customers=_empty_customers(static)))


# ---- moving frames between Spark and pandas ---------------------------------------------------
def _micros(frame: DataFrame, column: str, what: str) -> Column:
    """Epoch microseconds (UTC) of a timestamp column; ``TIMESTAMP_NTZ`` is taken as UTC."""
    dtype = frame.schema[column].dataType
    if isinstance(dtype, T.TimestampType):
        return F.unix_micros(F.col(column))
    if isinstance(dtype, T.TimestampNTZType):
        return F.expr(f"timestampdiff(MICROSECOND, TIMESTAMP_NTZ'1970-01-01 00:00:00', `{column}`)")
    raise DataError(f"{what}.{column} must be a timestamp column, got {dtype.simpleString()} "
                    f"(read the package's Parquet files with signals.spark.read_parquet_spark)")


def _require(frame: DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} is missing column(s) {missing}; it has {frame.columns}")


def _events_for_groups(events: DataFrame) -> DataFrame:
    _require(events, (CUSTOMER_ID, TS, TOUCHPOINT), "events")
    value = F.coalesce(F.col(VALUE).cast("double"), F.lit(0.0)) if VALUE in events.columns else F.lit(0.0)
    return events.select(
        F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID),
        _micros(events, TS, "events").alias(TS_US),
        F.col(TOUCHPOINT).cast("string").alias(TOUCHPOINT),
        value.alias(VALUE),
    )


def _cutoffs_for_groups(cutoffs: DataFrame, customers: DataFrame | None, static: Mapping[str, T.DataType]) -> DataFrame:
    _require(cutoffs, (CUSTOMER_ID, CUTOFF), "cutoffs")
    out = cutoffs.select(F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID), _micros(cutoffs, CUTOFF, "cutoffs").alias(CUTOFF_US))
    if not static:
        return out
    columns = [F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID), F.lit(True).alias(HAS_CUSTOMER)]
    for name, dtype in static.items():
        columns.append(_micros(customers, name, "customers").alias(name)
                       if isinstance(dtype, T.TimestampType | T.TimestampNTZType) else F.col(name))
    return out.join(customers.select(*columns), on=CUSTOMER_ID, how="left")


def _utc(micros: pd.Series) -> pd.DatetimeIndex:
    """Epoch microseconds as UTC ``datetime64[ns]`` (exact integer arithmetic)."""
    ns = micros.to_numpy(dtype=np.int64) * 1000
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def _events_frame(pdf: pd.DataFrame) -> pd.DataFrame:
    """A bucket's events in the canonical pandas contract (validated again by the builders)."""
    return pd.DataFrame({
        CUSTOMER_ID: pdf[CUSTOMER_ID].to_numpy(dtype=object),
        TS: _utc(pdf[TS_US]),
        TOUCHPOINT: pdf[TOUCHPOINT].to_numpy(dtype=object),
        VALUE: pdf[VALUE].to_numpy(dtype=np.float64),
    })


def _cutoffs_frame(pdf: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({CUSTOMER_ID: pdf[CUSTOMER_ID].to_numpy(dtype=object), CUTOFF: _utc(pdf[CUTOFF_US])})


def _customers_frame(pdf: pd.DataFrame, static: Mapping[str, T.DataType]) -> pd.DataFrame | None:
    """The customers table of a bucket: one row per customer of its cutoffs that has one."""
    if not static:
        return None
    known = pdf[pdf[HAS_CUSTOMER].fillna(False).astype(bool)].drop_duplicates(CUSTOMER_ID)
    if known.empty:
        # none of the bucket's customers is in the customers table: one placeholder row that
        # matches no cutoff row (an id none of them has), all attributes null, so the builder
        # gets a table of the right columns and every row gets "not found" (NaN / null)
        placeholder = "\x00no-customer"
        while placeholder in set(pdf[CUSTOMER_ID]):
            placeholder += "\x00"
        known = pd.DataFrame({CUSTOMER_ID: [placeholder], **{name: [None] for name in static}})
    out = pd.DataFrame({CUSTOMER_ID: known[CUSTOMER_ID].astype(object).to_numpy()})
    for name, dtype in static.items():
        values = known[name]
        if isinstance(dtype, T.TimestampType | T.TimestampNTZType):
            out[name] = pd.to_datetime(values.to_numpy(dtype=np.float64), unit="us", utc=True)
        elif isinstance(dtype, T.NumericType):
            out[name] = values.to_numpy(dtype=np.float64)
        else:
            out[name] = values.to_numpy()
    return out


def _to_spark_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A result frame as it leaves Python: ``cutoff`` as epoch microseconds, categoricals as text."""
    out = {}
    for name, series in frame.items():
        if name == CUTOFF:
            out[CUTOFF_US] = series.dt.as_unit("us").array.asi8
        elif isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series.dtype):
            values = series.astype(object)
            out[name] = values.where(series.notna(), None).to_numpy()
        else:
            out[name] = series.to_numpy()
    return pd.DataFrame(out)


def _wire_schema(schema: T.StructType) -> T.StructType:
    """The schema a group function returns: ``cutoff`` travels as ``BIGINT`` microseconds."""
    return T.StructType([T.StructField(CUTOFF_US, T.LongType(), False) if f.name == CUTOFF else f for f in schema.fields])


# ---- the one mechanism -------------------------------------------------------------------------
def _default_buckets(spark: SparkSession) -> int:
    return max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))


def map_customer_groups(
    events: DataFrame,
    cutoffs: DataFrame,
    func: GroupFunction,
    schema: T.StructType,
    *,
    customers: DataFrame | None = None,
    static_columns: Iterable[str] = (),
    buckets: int | None = None,
) -> DataFrame:
    """Run a pandas function of (events, cutoffs) per bucket of customers; the core of this module.

    The customer ids are hashed into ``buckets`` (default ``spark.sql.shuffle.partitions``);
    the events and cutoffs are co-grouped by bucket, so each call of ``func`` gets *all* the events
    and cutoff rows of its customers, and nothing else.

    Parameters
    ----------
    events, cutoffs : pyspark.sql.DataFrame
        See the module docstring.
    func : callable
        ``func(events, cutoffs) -> pd.DataFrame`` on pandas frames in the package's contracts
        (``customer_id`` text, ``ts`` / ``cutoff`` UTC ``datetime64[ns]``, ``value`` float). With
        ``static_columns``, ``func`` gets a third argument: the bucket's customers table
        (``customer_id`` and those columns, for the customers of its cutoffs). It returns a frame
        with the columns of ``schema`` (``cutoff`` as a UTC datetime column); it is called only for
        buckets that have cutoff rows, and must be picklable (it runs on the executors).
    schema : pyspark.sql.types.StructType
        The result's schema (with ``cutoff`` as ``TIMESTAMP``).
    customers : pyspark.sql.DataFrame, optional
        The customers table, needed with ``static_columns``.
    static_columns : sequence of str
        Customer attributes ``func`` needs (``spec.static_columns``), joined onto the cutoff rows.
    buckets : int, optional
        How many groups: each holds about ``1 / buckets`` of the events in one Python worker.

    Returns
    -------
    pyspark.sql.DataFrame
        ``schema``'s columns, one result frame per bucket, in no particular order.
    """
    spark = events.sparkSession
    n = int(buckets) if buckets is not None else _default_buckets(spark)
    if n < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    static = _static_types(static_columns, customers.schema if customers is not None else None)
    bucket = F.pmod(F.xxhash64(F.col(CUSTOMER_ID)), F.lit(n))
    left = _events_for_groups(events).withColumn(BUCKET, bucket)
    right = _cutoffs_for_groups(cutoffs, customers, static).withColumn(BUCKET, bucket)
    wire = _wire_schema(schema)
    names = [f.name for f in wire.fields]

    def run(events_pdf: pd.DataFrame, cutoffs_pdf: pd.DataFrame) -> pd.DataFrame:
        if cutoffs_pdf.empty:
            return pd.DataFrame({name: pd.Series([], dtype=object) for name in names})
        args = [_events_frame(events_pdf), _cutoffs_frame(cutoffs_pdf)]
        if static:
            args.append(_customers_frame(cutoffs_pdf, static))
        return _to_spark_frame(func(*args))[names]

    grouped = left.groupBy(BUCKET).cogroup(right.groupBy(BUCKET)).applyInPandas(run, wire)
    return grouped.select(*[F.timestamp_micros(F.col(CUTOFF_US)).alias(CUTOFF) if f.name == CUTOFF_US else F.col(f.name)
                            for f in wire.fields])


# ---- validation (aggregates only) ---------------------------------------------------------------
def check_events_spark(events: DataFrame, touchpoints: Iterable[str]) -> None:
    """Raise :class:`~signals.errors.DataError` when the events break the contract.

    One aggregate job: rows without customer id or time, touchpoints outside the catalog (up to
    five of them named), negative or infinite values. Nothing but the counts reaches the driver.
    """
    _require(events, (CUSTOMER_ID, TS, TOUCHPOINT), "events")
    _micros(events, TS, "events")
    allowed = list(touchpoints)
    unknown = F.col(TOUCHPOINT).isNull() | ~F.col(TOUCHPOINT).cast("string").isin(allowed)
    checks = {
        "no customer_id": F.col(CUSTOMER_ID).isNull(),
        "no timestamp": F.col(TS).isNull(),
        "a touchpoint not in the catalog": unknown,
    }
    if VALUE in events.columns:
        v = F.col(VALUE).cast("double")
        checks["a negative or non-finite value"] = v.isNotNull() & ~F.isnan(v) & ((v < 0) | (F.abs(v) == F.lit(math.inf)))
    row = events.select(*[F.sum(F.when(c, 1).otherwise(0)).alias(f"c{i}") for i, c in enumerate(checks.values())],
                        F.collect_set(F.when(unknown, F.coalesce(F.col(TOUCHPOINT).cast("string"), F.lit("<null>"))))
                        .alias("unknown")).first()
    problems = [f"{row[f'c{i}']:,} row(s) have {what}" for i, what in enumerate(checks) if row[f"c{i}"]]
    if problems:
        named = sorted(row["unknown"])[:5]
        tail = f" ({', '.join(named)}; catalog: {allowed})" if named else ""
        raise DataError(f"events: {'; '.join(problems)}{tail}")


def check_cutoffs_spark(cutoffs: DataFrame) -> None:
    """Raise :class:`~signals.errors.DataError` for cutoffs without id or time, fractional
    seconds, or duplicate ``(customer_id, cutoff)`` rows (two small aggregate jobs)."""
    _require(cutoffs, (CUSTOMER_ID, CUTOFF), "cutoffs")
    us = _micros(cutoffs, CUTOFF, "cutoffs")
    row = cutoffs.select(
        F.sum(F.when(F.col(CUSTOMER_ID).isNull(), 1).otherwise(0)).alias("no_id"),
        F.sum(F.when(F.col(CUTOFF).isNull(), 1).otherwise(0)).alias("no_cutoff"),
        F.sum(F.when(F.pmod(us, F.lit(_US_PER_S)) != 0, 1).otherwise(0)).alias("fractional"),
    ).first()
    if row["no_id"] or row["no_cutoff"]:
        raise DataError(f"cutoffs: {row['no_id'] or 0:,} row(s) have no customer_id and {row['no_cutoff'] or 0:,} no cutoff")
    if row["fractional"]:
        raise DataError(f"cutoffs must be whole seconds: {row['fractional']:,} row(s) are not "
                        f"(floor them, e.g. date_trunc('second', cutoff))")
    dup = (cutoffs.groupBy(F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID), F.col(CUTOFF)).count()
           .where(F.col("count") > 1).limit(1).collect())
    if dup:
        raise DataError(f"cutoffs: duplicate (customer_id, cutoff) rows, e.g. {dup[0][CUSTOMER_ID]!r} at {dup[0][CUTOFF]}")


def _per_bucket(spec: FeatureSpec) -> FeatureSpec:
    """The spec a bucket builds with: the share-of-unmatched-ids check is about the whole table
    (a bucket may hold only customers without events), so buckets only warn."""
    features = spec.features.model_copy(update={"max_unmatched_id_fraction": 1.0, "unmatched_ids": "warn"})
    return spec.model_copy(update={"features": features})


def _check_customers(customers: DataFrame) -> None:
    dup = (customers.groupBy(F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID)).count()
           .where(F.col("count") > 1).limit(1).collect())
    if dup:
        raise DataError(f"customers table has duplicate customer_id values, e.g. {dup[0][CUSTOMER_ID]!r}")


def _check_inputs(events: DataFrame, cutoffs: DataFrame, customers: DataFrame | None, touchpoints) -> None:
    check_events_spark(events, touchpoints)
    check_cutoffs_spark(cutoffs)
    if customers is not None:
        _check_customers(customers)


# ---- features, labels, training sets -----------------------------------------------------------
def build_features_spark(
    events: DataFrame,
    cutoffs: DataFrame,
    spec: FeatureSpec,
    *,
    customers: DataFrame | None = None,
    buckets: int | None = None,
    validate: bool = True,
) -> DataFrame:
    """:func:`signals.build_features` on Spark: the same columns, dtypes and values.

    Parameters
    ----------
    events, cutoffs : pyspark.sql.DataFrame
        Canonical events and ``(customer_id, cutoff)`` rows (module docstring); other cutoff
        columns are not carried over (join them back on ``customer_id, cutoff``).
    spec : FeatureSpec
    customers : pyspark.sql.DataFrame, optional
        Needed when ``spec.static_columns`` is not empty.
    buckets : int, optional
        Groups of customers (default ``spark.sql.shuffle.partitions``); see the README on sizing.
    validate : bool
        Check the events and cutoffs first (small aggregate jobs; errors are
        :class:`~signals.errors.DataError`).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per cutoff row with the schema :func:`feature_schema` gives; row ``i`` uses only
        customer ``i``'s events with ``ts < cutoff_i``.
    """
    static = _static_types(spec.static_columns, customers.schema if customers is not None else None)
    if validate:
        _check_inputs(events, cutoffs, customers if static else None, spec.touchpoints)
    schema = feature_schema(spec, customers.schema if customers is not None else None)

    def features(events_pdf: pd.DataFrame, cutoffs_pdf: pd.DataFrame, customers_pdf=None) -> pd.DataFrame:
        return build_features(events_pdf, cutoffs_pdf, bucket_spec, customers=customers_pdf)

    bucket_spec = _per_bucket(spec)
    return map_customer_groups(events, cutoffs, features, schema, customers=customers,
                               static_columns=spec.static_columns, buckets=buckets)


LABEL_SCHEMA = T.StructType([
    T.StructField(CUSTOMER_ID, T.StringType(), True),
    T.StructField(CUTOFF, T.TimestampType(), True),
    T.StructField("eligible", T.BooleanType(), True),
    T.StructField(LABEL, T.DoubleType(), True),
])


def label_cutoffs_spark(
    events: DataFrame,
    cutoffs: DataFrame,
    task: str,
    *,
    labels: LabelSettings,
    catalog: Mapping[str, Touchpoint],
    buckets: int | None = None,
    validate: bool = True,
) -> DataFrame:
    """:func:`signals.labels.label_cutoffs` on Spark (reads ``[cutoff, cutoff + horizon)``).

    Returns ``customer_id, cutoff, eligible`` (boolean) and ``label`` (1.0 / 0.0, null when not
    eligible), one row per cutoff row.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if validate:
        check_events_spark(events, catalog)
        check_cutoffs_spark(cutoffs)
    catalog = dict(catalog)

    def labelled(events_pdf: pd.DataFrame, cutoffs_pdf: pd.DataFrame) -> pd.DataFrame:
        out = label_cutoffs(events_pdf, cutoffs_pdf, task, labels=labels, catalog=catalog)
        return out[[CUSTOMER_ID, CUTOFF, "eligible", LABEL]]

    return map_customer_groups(events, cutoffs, labelled, LABEL_SCHEMA, buckets=buckets)


def build_training_set_spark(
    events: DataFrame,
    cutoffs: DataFrame,
    spec: FeatureSpec,
    *,
    task: str,
    labels: LabelSettings,
    customers: DataFrame | None = None,
    buckets: int | None = None,
    validate: bool = True,
) -> DataFrame:
    """:func:`signals.build_training_set` on Spark: features and ``label`` (0/1 ``TINYINT``) of the
    eligible rows, to sample down to the driver for fitting (``.sample(...).toPandas()``)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    static = _static_types(spec.static_columns, customers.schema if customers is not None else None)
    if validate:
        _check_inputs(events, cutoffs, customers if static else None, spec.touchpoints)
    schema = T.StructType([*feature_schema(spec, customers.schema if customers is not None else None).fields,
                           T.StructField(LABEL, T.ByteType(), True)])

    def training(events_pdf: pd.DataFrame, cutoffs_pdf: pd.DataFrame, customers_pdf=None) -> pd.DataFrame:
        return build_training_set(events_pdf, cutoffs_pdf, bucket_spec, task=task, labels=labels, customers=customers_pdf)

    bucket_spec = _per_bucket(spec)

    return map_customer_groups(events, cutoffs, training, schema, customers=customers,
                               static_columns=spec.static_columns, buckets=buckets)


# ---- scoring ------------------------------------------------------------------------------------
SCORE_SCHEMA = T.StructType([
    T.StructField(CUSTOMER_ID, T.StringType(), True),
    T.StructField(CUTOFF, T.TimestampType(), True),
    T.StructField(SCORE, T.DoubleType(), True),
])

_MODELS: dict[str, object] = {}  # per Python worker: bundles already loaded, by content hash


def _bundle_files(bundle: Path) -> dict[str, bytes]:
    model_dir = bundle / "model"
    files = {"spec.json": bundle / "spec.json", "booster.txt": model_dir / "booster.txt", "model.json": model_dir / "model.json"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"{bundle} is not a model bundle: missing {missing} (write one with `signals train`)")
    return {name: path.read_bytes() for name, path in files.items()}


def _load_shipped_model(files: Mapping[str, bytes]):
    """Load the bundle shipped to an executor (once per Python worker process)."""
    from signals.modeling.estimators import SignalModel

    key = hashlib.sha256(files["booster.txt"] + files["model.json"]).hexdigest()
    if key not in _MODELS:
        with tempfile.TemporaryDirectory(prefix="signals-model-") as tmp:
            for name in ("booster.txt", "model.json"):
                Path(tmp, name).write_bytes(files[name])
            _MODELS[key] = SignalModel.load(tmp)
    return _MODELS[key]


def score_spark(
    events: DataFrame,
    cutoffs: DataFrame,
    bundle: str | Path,
    *,
    customers: DataFrame | None = None,
    buckets: int | None = None,
    validate: bool = True,
) -> DataFrame:
    """Calibrated probabilities of a model bundle on Spark, equal to the pandas path.

    The bundle (``models/<task>/``: ``model/booster.txt``, ``model/model.json``, ``spec.json``)
    is read once on the driver and shipped with the job (a few MB; no shared file system
    needed). On each bucket the features are built with the bundle's own spec (never the current
    config) and :meth:`signals.SignalModel.probability` applied, exactly as
    ``model.probability(build_features(events, cutoffs, spec))`` does on one machine.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id, cutoff, score`` (calibrated probability), one row per cutoff row.
    """
    from signals.modeling.estimators import SignalModel

    bundle = Path(bundle)
    files = _bundle_files(bundle)
    spec = FeatureSpec.from_json(files["spec.json"].decode("utf-8"))
    model = SignalModel.load(bundle / "model")  # fails here, on the driver, if the bundle is broken
    static = _static_types(spec.static_columns, customers.schema if customers is not None else None)
    produced = {f.name for f in feature_schema(spec, customers.schema if customers is not None else None).fields}
    missing = [name for name in model.feature_names_ if name not in produced]
    if missing:
        raise DataError(f"{bundle}: the model needs {len(missing)} feature(s) its spec.json does not build, "
                        f"e.g. {missing[:5]}")
    if validate:
        _check_inputs(events, cutoffs, customers if static else None, spec.touchpoints)

    bucket_spec = _per_bucket(spec)

    def scores(events_pdf: pd.DataFrame, cutoffs_pdf: pd.DataFrame, customers_pdf=None) -> pd.DataFrame:
        shipped = _load_shipped_model(files)
        X = build_features(events_pdf, cutoffs_pdf, bucket_spec, customers=customers_pdf)
        return pd.DataFrame({CUSTOMER_ID: X[CUSTOMER_ID], CUTOFF: X[CUTOFF], SCORE: shipped.probability(X)})

    return map_customer_groups(events, cutoffs, scores, SCORE_SCHEMA, customers=customers,
                               static_columns=spec.static_columns, buckets=buckets)


# ---- the customer_signals rows -----------------------------------------------------------------
#: The columns of :func:`score_signals_spark` besides ``customer_id`` and ``as_of`` (their Spark types).
_SIGNAL_TYPES: dict[str, T.DataType] = {
    "task": T.StringType(), "model_name": T.StringType(), "model_version": T.StringType(), "run_id": T.StringType(),
    "score": T.DoubleType(), "rank": T.LongType(), "band": T.StringType(), "temperature": T.DoubleType(),
    "temperature_prior": T.DoubleType(), "temperature_change_14d": T.DoubleType(),
    "temperature_change_30d": T.DoubleType(), "alarm": T.StringType(), "reason_1": T.StringType(),
    "reason_2": T.StringType(), "reason_3": T.StringType(), "segment": T.StringType(),
    "journey_stage": T.StringType(), "scored_at": T.TimestampType(), "usual_temperature": T.DoubleType(),
    "temperature_surge": T.DoubleType(),
}
#: What one group returns: everything but the global ``rank`` and the run's ``scored_at``; its
#: rows' ``cutoff`` is the as-of instant.
_GROUP_SIGNALS = T.StructType([
    T.StructField(CUSTOMER_ID, T.StringType(), True), T.StructField(CUTOFF, T.TimestampType(), True),
    *[T.StructField(name, dtype, True) for name, dtype in _SIGNAL_TYPES.items() if name not in ("rank", "scored_at")],
])
RANK_BIN = "_rank_bin"


def rank_descending_spark(frame: DataFrame, score: str = SCORE, *, by: str = "task", tie: str = CUSTOMER_ID,
                          bins: int = 64, name: str = "rank") -> DataFrame:
    """:func:`signals.modeling.scoring.rank_descending` on the cluster: 1 = the highest ``score``
    within each ``by`` value, ties by ``tie`` (ascending), so ranks are unique and reproducible.

    A window over all the rows of a task would sort them in one partition. Instead the scores
    are cut into ``bins`` ranges at approximate quantiles (one small job; the cut points then
    are fixed numbers, so a recomputed partition ranks the same way), the rows per ``(by, bin)``
    are counted (at most ``2 * bins`` numbers reach the driver), and each row's rank is the count
    of its task's higher bins plus its ``row_number`` within its bin. Equal scores share a bin.
    ``frame`` is read three times: cache it when it is expensive (:func:`score_signals_spark` does).
    """
    cuts = frame.approxQuantile(score, [i / bins for i in range(1, bins)], 1.0 / (4 * bins)) if bins > 1 else []
    cuts = sorted({float(c) for c in cuts if c is not None and math.isfinite(c)})
    col = F.col(score)
    binned = frame.withColumn(RANK_BIN, sum((F.when(col >= F.lit(c), 1).otherwise(0) for c in cuts), F.lit(0))
                              if cuts else F.lit(0))
    counts = binned.groupBy(by, RANK_BIN).count().collect()
    above: dict[tuple, int] = {}
    for key in {r[by] for r in counts}:
        higher = 0
        for r in sorted((r for r in counts if r[by] == key), key=lambda r: -r[RANK_BIN]):
            above[(key, r[RANK_BIN])] = higher
            higher += r["count"]
    spark = frame.sparkSession
    offset_schema = T.StructType([frame.schema[by], T.StructField(RANK_BIN, T.IntegerType(), False),
                                  T.StructField("_rank_offset", T.LongType(), False)])
    offsets = spark.createDataFrame([(k, b, o) for (k, b), o in above.items()], offset_schema)
    within = Window.partitionBy(by, RANK_BIN).orderBy(col.desc(), F.col(tie).asc())
    ranked = binned.join(F.broadcast(offsets), on=[by, RANK_BIN], how="left")
    return (ranked.withColumn(name, F.col("_rank_offset") + F.row_number().over(within))
            .drop(RANK_BIN, "_rank_offset"))


def _worker_model(loaded):
    """The first copy of a shipped model this Python worker saw (its TreeSHAP tables built once)."""
    key = ("loaded", loaded.name, loaded.version, loaded.source)
    return _MODELS.setdefault(key, loaded)


def _scoring_static(models, customers: DataFrame | None) -> tuple[str, ...]:
    """The customers columns the groups need: every model's static columns, and ``first_seen``
    (customers known before their first event are scored and get views, as on one machine)."""
    columns = list(dict.fromkeys(c for m in models for c in m.spec.static_columns))
    if customers is not None and "first_seen" in customers.columns and "first_seen" not in columns:
        columns.append("first_seen")
    return tuple(columns)


def score_signals_spark(
    events: DataFrame,
    models: list,
    as_of,
    *,
    settings,
    customers: DataFrame | None = None,
    scored_at: pd.Timestamp | None = None,
    buckets: int | None = None,
    validate: bool = True,
) -> DataFrame:
    """The ``customer_signals`` rows of :func:`signals.modeling.scoring.score_models` on Spark.

    ``models`` are :class:`signals.io.bundles.LoadedModel` (from a bundle folder or the registry:
    :func:`signals.jobs.score.load_models`); they travel to the executors inside the job. The
    cutoffs are every customer first seen before ``as_of`` (:func:`scoring_cutoffs_spark`); each
    bucket of customers goes through ``score_models`` itself (features from each model's saved
    spec, temperatures, population, probability, band, alarm, 3 reasons) and, with
    ``settings.scoring.views``, :func:`signals.jobs.score.with_views` (segment, journey stage).
    The ranks are global per task, computed on the cluster (:func:`rank_descending_spark`), never
    per bucket. ``scored_at`` (default: now, whole seconds) is one instant for the whole run.

    The groups run here, once (an eager local checkpoint, memory and disk, freed when the result
    is no longer referenced): ranking and writing then read the stored rows. A lost executor fails
    the job instead of recomputing the rows; run it again (the sinks replace a batch whole).

    Returns
    -------
    pyspark.sql.DataFrame
        The :data:`signals.schemas.SIGNAL_COLUMNS` in their order (``as_of``, ``scored_at`` as
        ``TIMESTAMP``, ``rank`` as ``BIGINT``), then ``usual_temperature`` and
        ``temperature_surge``; the rows equal the pandas path's.
    """
    from signals.cutoffs import as_of_instant
    from signals.jobs.score import with_views
    from signals.modeling.scoring import score_models
    from signals.schemas import SIGNAL_COLUMNS

    if not models:
        raise ValueError("no model to score with")
    touchpoints = models[0].spec.touchpoints
    if any(m.spec.touchpoints != touchpoints for m in models):
        raise DataError("the models were trained on different catalogs: score them separately")
    instant = as_of_instant(as_of, settings.timezone)
    scored_at = (scored_at or pd.Timestamp.now(tz="UTC")).floor("s")
    static = _scoring_static(models, customers)
    if validate:
        check_events_spark(events, touchpoints)
        if customers is not None and static:
            _check_customers(customers)
    cutoffs, _ = scoring_cutoffs_spark(events, instant, timezone="UTC", customers=customers)
    scoring, labels, views = settings.scoring, settings.labels, settings.scoring.views
    names = [f.name for f in _GROUP_SIGNALS.fields]

    def signals_of(events_pdf: pd.DataFrame, cutoffs_pdf: pd.DataFrame, customers_pdf=None) -> pd.DataFrame:
        shipped = [_worker_model(m) for m in models]
        scored = score_models(events_pdf, shipped, instant, customers=customers_pdf, settings=scoring, labels=labels,
                              scored_at=scored_at, rows=cutoffs_pdf)
        out = scored.signals
        if views:
            out = with_views(out, events_pdf, instant, settings, customers=customers_pdf)
        return out.rename(columns={"as_of": CUTOFF})[names]

    grouped = map_customer_groups(events, cutoffs, signals_of, _GROUP_SIGNALS, customers=customers,
                                  static_columns=static, buckets=buckets)
    # computed here, once: the ranking reads the rows three times and the writes again; a local
    # checkpoint (memory and disk) is freed when the result is no longer referenced
    rows = grouped.withColumnRenamed(CUTOFF, "as_of").withColumn(
        "scored_at", F.timestamp_micros(F.lit(int(scored_at.value // 1000)))).localCheckpoint(eager=True)
    ranked = rank_descending_spark(rows, SCORE, by="task", tie=CUSTOMER_ID,
                                   bins=buckets or _default_buckets(events.sparkSession))
    ordered = [name for name, _, _ in SIGNAL_COLUMNS] + ["usual_temperature", "temperature_surge"]
    return ranked.select(*ordered)


# ---- cutoffs on the cluster ---------------------------------------------------------------------
def _first_seen_spark(events: DataFrame, customers: DataFrame | None) -> DataFrame:
    """``customer_id, first_us``: the earlier of the first event and ``customers.first_seen``."""
    seen = _events_for_groups(events).groupBy(CUSTOMER_ID).agg(F.min(TS_US).alias("first_us"))
    if customers is not None and "first_seen" in customers.columns:
        table = customers.select(F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID),
                                 _micros(customers, "first_seen", "customers").alias("first_us"))
        seen = seen.unionByName(table).groupBy(CUSTOMER_ID).agg(F.min("first_us").alias("first_us"))
    return seen


def _grid_rows(seen: DataFrame, instants: pd.DatetimeIndex, min_history_days: float) -> DataFrame:
    """Every (customer, cutoff) where the customer was seen before ``cutoff - min_history``."""
    spark = seen.sparkSession
    grid = spark.createDataFrame(pd.DataFrame({CUTOFF_US: (instants.asi8 // 1000).astype(np.int64)}))
    entry = F.col("first_us") + F.lit(int(min_history_days * 86_400) * _US_PER_S)
    rows = seen.where(F.col("first_us").isNotNull()).crossJoin(F.broadcast(grid)).where(entry < F.col(CUTOFF_US))
    return rows.select(CUSTOMER_ID, F.timestamp_micros(F.col(CUTOFF_US)).alias(CUTOFF))


def training_cutoffs_spark(
    events: DataFrame,
    *,
    horizon_days: float,
    n_cutoffs: int,
    frequency: str = "monthly",
    timezone: str = "UTC",
    end=None,
    customers: DataFrame | None = None,
    min_history_days: float = 0,
) -> tuple[DataFrame, pd.DatetimeIndex]:
    """:func:`signals.training_cutoffs` on Spark: the same grid, the same rows.

    Only the first and last event time reach the driver (one aggregate); the grid instants are
    chosen by the pandas function itself on those two instants, and the rows are built on the
    cluster. Returns the cutoffs (``customer_id, cutoff``) and the grid's instants.
    """
    from signals.cutoffs import training_cutoffs

    span = _events_for_groups(events).agg(F.min(TS_US).alias("lo"), F.max(TS_US).alias("hi")).first()
    if span["lo"] is None:
        raise DataError("no events: cannot build a training grid")
    ends = pd.DataFrame({CUSTOMER_ID: ["first", "last"],
                         TS: pd.to_datetime([span["lo"], span["hi"]], unit="us", utc=True).as_unit("ns")})
    try:
        grid = training_cutoffs(ends, horizon_days=horizon_days, n_cutoffs=n_cutoffs, frequency=frequency,
                                timezone=timezone, end=end)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    instants = pd.DatetimeIndex(grid[CUTOFF].unique()).sort_values()
    return _grid_rows(_first_seen_spark(events, customers), instants, min_history_days), instants


def scoring_cutoffs_spark(events: DataFrame, as_of, *, timezone: str = "UTC",
                          customers: DataFrame | None = None) -> tuple[DataFrame, pd.DatetimeIndex]:
    """:func:`signals.scoring_cutoffs` on Spark: one cutoff at ``as_of`` for every customer seen before it."""
    from signals.cutoffs import as_of_instant

    instants = pd.DatetimeIndex([as_of_instant(as_of, timezone)])
    return _grid_rows(_first_seen_spark(events, customers), instants, 0), instants
