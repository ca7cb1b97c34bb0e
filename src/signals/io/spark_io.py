"""Spark's side of the I/O: where a path is for Spark, and the ``customer_signals`` write-back.

:func:`write_signals_spark` writes the rows of ``signals score --engine spark`` (a Spark
DataFrame, :func:`signals.spark.score_signals_spark`) to the sink of the settings, keyed and
replaced per batch exactly as the pandas sinks (:mod:`signals.io.sinks`) do. A batch is every row
of one ``(as_of, task, model_name, model_version)``; writing it replaces that batch and nothing
else. The rows go from the executors to their destination; the driver handles only the batch keys
and SQL statements.

``sink.kind: files``
    One Parquet *folder* per batch at the path :class:`~signals.io.sinks.FileSink` gives its file
    (``<folder>/<table>/as_of=<instant>/<task>__<model>__<version>.parquet``; ``FileSink.read``
    and ``pandas.read_parquet`` read both). A local folder is built next to the target and swapped
    in (:func:`~signals.io.atomic.atomic_directory`, one writer at a time); a remote one
    (``s3a://``, ``abfss://``, ``dbfs:/`` ...) is written with Spark's commit protocol.
``sink.kind: sqlite`` / ``postgresql``
    Through JDBC: the driver creates a new staging table, the executors append the rows to it
    (Spark's JDBC writer; SQLite allows one writer, so one partition writes there), then one
    transaction on the driver deletes each batch from the target table and inserts it from the
    staging table (``INSERT ... SELECT``); the staging table is dropped then, or after a failure,
    which leaves the target as it was. The table is created or extended as the pandas
    sink does. The JDBC driver must be on Spark's class path: :func:`signals.spark.spark_session`
    adds Debian's jars (``libpostgresql-jdbc-java``, ``libxerial-sqlite-jdbc-java``, installed by
    ``make system-deps``); on a cluster pass ``--jars`` or ``--packages org.postgresql:postgresql:<version>``
    (Databricks runtimes ship the PostgreSQL driver). The password is sent as a connection
    property, never in the JDBC URL, and hidden in every message.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from signals.errors import ConfigError, OutputError
from signals.io.sinks import FileSink, SinkResult, SqlSink, resolve_url
from signals.schemas import SIGNAL_BATCH_KEY, SIGNAL_COLUMNS, SIGNAL_KEY
from signals.settings import SinkSettings

__all__ = ["exists", "is_remote", "jdbc_target", "location", "write_signals_spark"]

_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>.*)$")
# object stores whose URIs name a bucket / container: scheme://bucket/key
_BUCKET_SCHEMES = {"s3", "s3a", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "oss", "cos", "r2"}
_TEXT = [name for name, kind, _ in SIGNAL_COLUMNS if kind == "text"]
_FLOAT = [name for name, kind, _ in SIGNAL_COLUMNS if kind == "float"]
_TIMES = ("as_of", "scored_at")
#: The columns the staging table holds: every contract column but the run's two instants.
STAGED = tuple(name for name, _, _ in SIGNAL_COLUMNS if name not in _TIMES)
_JDBC_DRIVERS = {"postgresql": "org.postgresql.Driver", "sqlite": "org.sqlite.JDBC"}


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URI (``s3a://``, ``dbfs:/``, ...) rather than a local path."""
    return _URI.match(path) is not None


def location(path: Path | str) -> str:
    """A path as Spark must see it: local paths absolute (the JVM keeps the working directory it
    started in), URIs as they are. Settings hold paths as ``pathlib.Path``, which folds
    ``s3a://bucket/key`` into ``s3a:/bucket/key``: the bucket's two slashes are put back.

    >>> location(Path("s3a://crm/events/")), location("dbfs:/crm/events"), location("hdfs:///x")
    ('s3a://crm/events', 'dbfs:/crm/events', 'hdfs:///x')
    """
    text = str(path)
    match = _URI.match(text)
    if match is None:
        return str(Path(text).resolve())
    if match["scheme"].lower() in _BUCKET_SCHEMES and not match["rest"].startswith("/"):
        return f"{match['scheme']}://{match['rest']}"
    return text


def exists(spark, path: str) -> bool:
    """Whether a local path or a Hadoop file system URI exists."""
    if not is_remote(path):
        return Path(path).exists()
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return bool(hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hadoop_path))


# --------------------------------------------------------------------------------------------
# the rows as they leave


def _clean(frame):
    """NaN -> null in the float columns, empty text -> null (as :func:`signals.io.sinks.check_signals`)."""
    from pyspark.sql import functions as F

    columns = []
    for name in frame.columns:
        c = F.col(name)
        if name in _FLOAT:
            c = F.when(F.isnan(c), F.lit(None).cast("double")).otherwise(c)
        elif name in _TEXT:
            c = F.when(c == F.lit(""), F.lit(None).cast("string")).otherwise(c)
        columns.append(c.alias(name))
    return frame.select(*columns)


def _batches(frame) -> list[dict]:
    """The batch keys of ``frame`` (a few rows reach the driver); ``as_of`` as a UTC Timestamp."""
    from pyspark.sql import functions as F

    keys = [k for k in SIGNAL_BATCH_KEY if k != "as_of"]
    rows = frame.select(F.unix_micros("as_of").alias("as_of_us"), *keys).distinct().collect()
    out = []
    for row in sorted(rows, key=lambda r: (r["as_of_us"], *[r[k] for k in keys])):
        out.append({"as_of": pd.Timestamp(row["as_of_us"] * 1000, tz="UTC"), **{k: row[k] for k in keys}})
    return out


def _of_batch(frame, batch: Mapping):
    from pyspark.sql import functions as F

    stamp = int(pd.Timestamp(batch["as_of"]).value // 1000)
    condition = F.unix_micros("as_of") == F.lit(stamp)
    for key in SIGNAL_BATCH_KEY:
        if key != "as_of":
            condition = condition & (F.col(key) == F.lit(batch[key]))
    return frame.where(condition)


# --------------------------------------------------------------------------------------------
# files


def _write_files(frame, sink: SinkSettings, batches: list[dict], count: int) -> SinkResult:
    from signals.io.atomic import atomic_directory, folder_lock

    if sink.format != "parquet":
        raise ConfigError(f"the Spark engine writes sink.format parquet (a folder per batch), not {sink.format}: "
                          "set sink.format: parquet or score with the pandas engine")
    started = time.perf_counter()
    spark = frame.sparkSession
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # UTC instants, as pandas writes
    root = location(sink.folder)
    layout = FileSink(Path("."), sink.table)  # the pandas sink's batch paths, relative to <folder>/<table>
    destination = f"{root.rstrip('/')}/{sink.table}"
    for batch in batches:
        relative = layout.path_of(batch).relative_to(layout.root).as_posix()
        rows = _of_batch(frame, batch)
        if is_remote(root):
            rows.write.mode("overwrite").parquet(f"{destination}/{relative}")
            continue
        target = Path(destination) / relative
        with folder_lock(target, what="signals score --engine spark"), atomic_directory(target) as tmp:
            rows.write.mode("overwrite").parquet(str(tmp))
    return SinkResult(rows=count, batches=batches, destination=destination, seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------------------------
# JDBC


def jdbc_target(url) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties of a SQLAlchemy URL (SQLite file or PostgreSQL).

    The password goes in the properties, never in the JDBC URL.

    >>> jdbc_target("postgresql+psycopg://crm:s3cret@db.internal:5433/crm")
    ('jdbc:postgresql://db.internal:5433/crm', {'driver': 'org.postgresql.Driver', 'user': 'crm', 'password': 's3cret'})
    >>> jdbc_target("sqlite:////data/crm.db")
    ('jdbc:sqlite:/data/crm.db', {'driver': 'org.sqlite.JDBC'})
    """
    from sqlalchemy.engine import make_url

    url = make_url(url) if isinstance(url, str) else url
    backend = url.get_backend_name()
    if backend not in _JDBC_DRIVERS:
        raise ConfigError(f"the Spark engine writes to SQLite or PostgreSQL through JDBC, not {backend}")
    properties = {"driver": _JDBC_DRIVERS[backend]}
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ConfigError("sink.url: the Spark engine needs a SQLite file (sqlite:///crm.db), not an in-memory database")
        return f"jdbc:sqlite:{Path(url.database).resolve()}", properties
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    query = "&".join(f"{k}={v}" for k, v in url.query.items() if isinstance(v, str))
    jdbc = f"jdbc:postgresql://{host}{port}/{url.database or ''}" + (f"?{query}" if query else "")
    if url.username:
        properties["user"] = url.username
    if url.password:
        properties["password"] = str(url.password)
    return jdbc, properties


def _staging_name(table: str) -> str:
    schema, _, name = table.rpartition(".")
    staged = f"{name[:40]}__stage_{uuid.uuid4().hex[:12]}"
    return f"{schema}.{staged}" if schema else staged


def _jdbc_error(exc: Exception, sql: SqlSink, what: str) -> OutputError:
    text = str(exc)
    password = sql.url.password
    if password:
        text = text.replace(str(password), "***")
    driver = _JDBC_DRIVERS[sql.url.get_backend_name()]
    if "ClassNotFoundException" in text or "No suitable driver" in text:
        package = {"postgresql": "libpostgresql-jdbc-java", "sqlite": "libxerial-sqlite-jdbc-java"}[sql.url.get_backend_name()]
        return OutputError(f"{what}: Spark has no JDBC driver {driver}: install Debian's {package} (make system-deps; "
                           f"signals.spark.spark_session adds it) or start Spark with --jars / --packages")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    cause = next((line for line in lines if "Exception:" in line or "ERROR" in line), lines[0] if lines else text)
    return OutputError(f"{what} failed: {cause.strip()[:400]}; the target table was not changed")


def _write_jdbc(frame, sink: SinkSettings, batches: list[dict], count: int, environ) -> SinkResult:
    started = time.perf_counter()
    url = resolve_url(sink, environ)
    sql = SqlSink(url, sink.table, chunk_rows=sink.chunk_rows)
    jdbc, properties = jdbc_target(url)
    staging = _staging_name(sink.table)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    options = {**properties, "batchsize": str(min(sink.chunk_rows, 10_000))}
    if sqlite:
        options["numPartitions"] = "1"  # SQLite has one writer: more would wait on its lock
    try:
        sql.ensure_table()
        sql.create_staging(staging)  # typed by us; Spark only appends (its table probe fails on SQLite)
        try:
            frame.select(*STAGED).write.format("jdbc").mode("append") \
                .options(url=jdbc, dbtable=staging, **options).save()
        except Exception as exc:  # Py4J / Spark errors carry the JVM's exception in their text
            if type(exc).__module__.split(".")[0] not in ("py4j", "pyspark"):
                raise
            raise _jdbc_error(exc, sql, f"writing {count:,} rows to the staging table {staging} of "
                                        f"{sql.destination}") from None
        written = sql.replace_from_staging(staging, batches, scored_at=_scored_at(frame))
    except BaseException:
        with contextlib.suppress(OutputError):  # the first error is the one to report
            sql.drop_table(staging)
        sql.dispose()
        raise
    sql.drop_table(staging)
    sql.dispose()
    if written != count:
        raise OutputError(f"{sql.destination}: {written:,} rows inserted from the staging table, expected {count:,}")
    return SinkResult(rows=count, batches=batches, destination=sql.destination, seconds=time.perf_counter() - started)


def _scored_at(frame) -> pd.Timestamp:
    from pyspark.sql import functions as F

    stamps = frame.select(F.unix_micros("scored_at").alias("us")).distinct().limit(2).collect()
    if len(stamps) != 1:
        raise OutputError("customer_signals rows of one Spark run must share one scored_at")
    return pd.Timestamp(stamps[0]["us"] * 1000, tz="UTC")


def write_signals_spark(frame, sink: SinkSettings, *, environ: Mapping[str, str] | None = None) -> SinkResult:
    """Write the ``customer_signals`` rows of a Spark DataFrame to ``sink``, batch by batch (module docstring).

    ``frame`` has the :data:`~signals.schemas.SIGNAL_COLUMNS` (other columns are not written), one
    ``as_of`` and one ``scored_at``. Re-writing a batch replaces it; other batches stay.

    Raises
    ------
    OutputError
        The destination refuses the rows or the JDBC driver is missing (the target is unchanged).
    ConfigError
        A sink the Spark engine does not write (CSV files, an in-memory SQLite database).
    """
    from pyspark.sql import functions as F

    rows = _clean(frame.select(*[name for name, _, _ in SIGNAL_COLUMNS]))
    missing = frame.select(*[F.sum(F.when(F.col(n).isNull(), 1).otherwise(0)).alias(n)
                             for n, _, nullable in SIGNAL_COLUMNS if not nullable], F.count(F.lit(1)).alias("_rows")) \
        .first().asDict()
    count = int(missing.pop("_rows"))
    empty = {n: v for n, v in missing.items() if v}
    if empty:
        raise OutputError(f"customer_signals rows have empty required column(s) {empty}")
    repeated = rows.groupBy(*SIGNAL_KEY).count().where(F.col("count") > 1).limit(1).collect()
    if repeated:
        first = {k: repeated[0][k] for k in SIGNAL_KEY}
        raise OutputError(f"customer_signals: rows repeat a key {SIGNAL_KEY}, e.g. {first}")
    batches = _batches(rows)
    if len({b["as_of"] for b in batches}) > 1:
        raise OutputError("a Spark scoring run writes one as-of instant at a time")
    if sink.kind == "files":
        return _write_files(rows, sink, batches, count)
    return _write_jdbc(rows, sink, batches, count, environ)
