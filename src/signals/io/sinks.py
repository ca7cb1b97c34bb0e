"""Write-back: the ``customer_signals`` rows of a scoring run, into the CRM database or files.

A **batch** is every row of one ``(as_of, task, model_name, model_version)``. Writing a batch
replaces that batch and nothing else: re-running the same as-of date with the same model never
duplicates a row, and earlier as-of dates stay in the table as history. The contract of the rows
is :data:`signals.schemas.SIGNAL_COLUMNS` (key :data:`signals.schemas.SIGNAL_KEY`).

:class:`SqlSink` (SQLite by default, PostgreSQL for real, through SQLAlchemy)
    One transaction per :meth:`~SqlSink.write`: delete the batch, insert its rows in chunks of
    ``sink.chunk_rows`` (with a progress bar), commit. A failure part-way rolls everything back,
    so the table holds the old batch or the new one, never a part. Customer ids and reasons are
    always sent as bound data (SQLite parameters, PostgreSQL ``COPY`` in CSV format), never as
    SQL text: quotes, semicolons and non-ASCII characters are stored exactly.
:class:`FileSink` (``sink.kind: files``)
    One Parquet or CSV file per batch, ``<folder>/<table>/as_of=<instant>/<task>__<model>__<version>``,
    written atomically (:func:`signals.io.atomic.atomic_file`).

Credentials come from the environment only: the URL of ``sink.url_env`` (``SIGNALS_CRM_URL``)
replaces ``sink.url`` when set, a config URL with a password is a configuration error, and every
message shows the URL with its password hidden.

>>> import tempfile, pathlib, pandas as pd
>>> db = pathlib.Path(tempfile.mkdtemp()) / "crm.db"
>>> sink = SqlSink(f"sqlite:///{db}")
>>> rows = example_signals(["a'; DROP TABLE customer_signals; --", "顧客-7"])
>>> sink.write(rows, progress=False).rows
2
>>> _ = sink.write(rows, progress=False)          # the same batch again: replaced, not duplicated
>>> sorted(sink.read()["customer_id"])
["a'; DROP TABLE customer_signals; --", '顧客-7']
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from signals._progress import track
from signals.errors import ConfigError, OutputError
from signals.io.atomic import atomic_file
from signals.schemas import CUSTOMER_ID, SIGNAL_BATCH_KEY, SIGNAL_COLUMNS, SIGNAL_KEY
from signals.settings import SinkSettings

__all__ = [
    "FileSink",
    "SinkResult",
    "SqlSink",
    "check_signals",
    "example_signals",
    "open_sink",
    "resolve_url",
    "signals_table",
]

_KINDS = {name: kind for name, kind, _ in SIGNAL_COLUMNS}
_NULLABLE = {name: nullable for name, _, nullable in SIGNAL_COLUMNS}
_NAMES = tuple(_KINDS)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for DateTime on SQLite


@dataclass
class SinkResult:
    """What a write did: rows written, the batches it replaced, where, and how long it took."""

    rows: int
    batches: list[dict] = field(default_factory=list)
    destination: str = ""
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# the rows


def example_signals(customer_ids, *, as_of="2026-01-01", task: str = "purchase", version: str = "1") -> pd.DataFrame:
    """A small valid ``customer_signals`` frame (for examples and tests)."""
    n = len(customer_ids)
    instant = pd.Timestamp(as_of, tz="UTC")
    return pd.DataFrame({
        "customer_id": list(customer_ids),
        "as_of": [instant] * n,
        "task": task,
        "model_name": f"signals-{task}",
        "model_version": version,
        "run_id": None,
        "score": np.linspace(0.9, 0.1, n) if n else [],
        "rank": np.arange(1, n + 1),
        "band": "high",
        "temperature": 10.0,
        "temperature_prior": 12.0,
        "temperature_change_14d": 1.5,
        "temperature_change_30d": np.nan,
        "alarm": None,
        "reason_1": "3 webinars in the last 30 days (usually 0 a month)",
        "reason_2": None,
        "reason_3": None,
        "segment": "nurture",
        "journey_stage": "consideration",
        "scored_at": [pd.Timestamp("2026-01-01 06:00", tz="UTC")] * n,
    })


def check_signals(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a ``customer_signals`` frame and return it normalised (contract columns, in order).

    Text columns hold ``str`` or ``None`` (empty text becomes ``None``); timestamps are UTC;
    the key columns have no nulls and no duplicate key.

    Raises
    ------
    OutputError
        A column is missing, a required value is null, or a key repeats.
    """
    missing = [c for c in _NAMES if c not in frame.columns]
    if missing:
        raise OutputError(f"customer_signals rows are missing column(s) {missing}")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name in _NAMES:
        col = frame[name].reset_index(drop=True)
        kind = _KINDS[name]
        if kind == "text":
            values = col.astype(object).to_numpy(copy=True)
            null = pd.isna(values)
            if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
                text = np.empty(int((~null).sum()), dtype=object)
                text[:] = [str(v) for v in values[~null]]
                values[~null] = text
            values[null] = None
            values[values == ""] = None
            out[name] = pd.Series(values, dtype=object)
        elif kind == "timestamp":
            out[name] = pd.to_datetime(col, utc=True)
        elif kind == "int":
            if col.isna().any():
                raise OutputError(f"customer_signals.{name}: {int(col.isna().sum())} row(s) are empty")
            out[name] = col.astype(np.int64)
        else:
            out[name] = pd.to_numeric(col).astype(np.float64)
        if not _NULLABLE[name]:
            empty = out[name].isna()
            if empty.any():
                raise OutputError(f"customer_signals.{name}: {int(empty.sum())} row(s) are empty "
                                  f"(first at row {int(np.flatnonzero(empty.to_numpy())[0])}); it is required")
    batch = batch_codes(out)
    customer = pd.factorize(out[CUSTOMER_ID])[0].astype(np.int64)
    dupes = pd.Series(batch * (len(out) + 1) + customer).duplicated()
    if dupes.any():
        first = out.loc[dupes, list(SIGNAL_KEY)].iloc[0].to_dict()
        raise OutputError(f"customer_signals: {int(dupes.sum())} row(s) repeat a key {SIGNAL_KEY}, e.g. {first}")
    return out


def _constant(values: pd.Series) -> bool:
    if len(values) == 0:
        return True
    if isinstance(values.array, pd.arrays.DatetimeArray):
        array = values.array.asi8
    else:
        array = values.to_numpy()
    first = array[0]
    if first is None or (isinstance(first, float) and np.isnan(first)):
        return bool(pd.isna(values).all())
    return bool((array == first).all())


def batch_codes(frame: pd.DataFrame) -> np.ndarray:
    """0, 1, ... per distinct ``(as_of, task, model_name, model_version)``, in order of appearance
    (cheap when the columns are constant, as they are within one task)."""
    code = np.zeros(len(frame), dtype=np.int64)
    varying = [k for k in SIGNAL_BATCH_KEY if not _constant(frame[k])]
    if varying:
        code = frame.groupby(varying, sort=False, dropna=False).ngroup().to_numpy(dtype=np.int64)
    return code


def _batches(frame: pd.DataFrame, codes: np.ndarray) -> list[tuple[dict, np.ndarray]]:
    """``(key, row positions)`` of each batch."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(codes.max() + 2 if len(codes) else 1))
    out = []
    for b in range(len(bounds) - 1):
        rows = order[bounds[b]:bounds[b + 1]]
        first = frame.iloc[rows[0]]
        key = {k: (first[k].to_pydatetime() if isinstance(first[k], pd.Timestamp) else first[k])
               for k in SIGNAL_BATCH_KEY}
        out.append((key, rows))
    return out


# --------------------------------------------------------------------------------------------
# SQL


def resolve_url(sink: SinkSettings, environ: Mapping[str, str] | None = None) -> URL:
    """The database URL: ``$<sink.url_env>`` when set (credentials live there), else ``sink.url``.

    ``postgresql://`` gets the psycopg (3) driver. Raises :class:`ConfigError` when the URL does
    not match ``sink.kind``.
    """
    environ = os.environ if environ is None else environ
    text = sink.url
    origin = "sink.url"
    if sink.url_env and environ.get(sink.url_env):
        text, origin = environ[sink.url_env], f"${sink.url_env}"
    try:
        url = make_url(text)
    except sa.exc.ArgumentError:
        raise ConfigError(f"{origin} is not a database URL (e.g. sqlite:///crm.db or "
                          f"postgresql://user@host:5432/crm)") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if sink.kind in ("sqlite", "postgresql") and backend != sink.kind:
        hint = (f"; set {sink.url_env} to the server's URL" if sink.kind == "postgresql" and sink.url_env else "")
        raise ConfigError(f"sink.kind is {sink.kind} but {origin} is a {backend} URL "
                          f"({url.render_as_string(hide_password=True)}){hint}")
    return url


def signals_table(name: str = "customer_signals", metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQLAlchemy table of :data:`~signals.schemas.SIGNAL_COLUMNS` (``name`` may be ``schema.table``)."""
    schema, _, table = name.rpartition(".")
    types = {"text": sa.Text(), "float": sa.Float(precision=53), "int": sa.Integer(),
             "timestamp": sa.DateTime(timezone=True)}
    columns = [sa.Column(n, types[k], nullable=nullable) for n, k, nullable in SIGNAL_COLUMNS]
    # SQLite: the key is the table (no separate rowid tree and key index to keep up to date)
    return sa.Table(table, metadata or sa.MetaData(), *columns,
                    sa.PrimaryKeyConstraint(*SIGNAL_KEY, name=f"{table}_pkey"), schema=schema or None,
                    sqlite_with_rowid=False)


def _hidden(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _scrub(message: str, url: URL) -> str:
    first = message.strip().splitlines()[0] if message.strip() else message
    if url.password:
        first = first.replace(str(url.password), "***")
    return first


def _object_column(values: pd.Series) -> list:
    """Python values for the driver: NaN -> None."""
    if values.dtype == object:
        return values.tolist()
    array = values.to_numpy()
    if array.dtype.kind == "f":
        out = array.astype(object)
        out[np.isnan(array)] = None
        return out.tolist()
    return array.tolist()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """A bigger page cache for the batch's B-tree inserts (per connection, durability unchanged)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size = -262144")  # 256 MB
    cursor.close()


def _send_sqlite(conn: sa.Connection, sql: str, chunk: pd.DataFrame, constants: dict) -> None:
    columns = [itertools.repeat(constants[n]) if n in constants else _object_column(chunk[n]) for n in _NAMES]
    cursor = conn.connection.driver_connection.cursor()  # the DBAPI cursor: no per-row work in SQLAlchemy
    try:
        cursor.executemany(sql, zip(*columns, strict=False))
    finally:
        cursor.close()


def _send_postgresql(conn: sa.Connection, copy_sql, chunk: pd.DataFrame, constants: dict) -> None:
    frame = chunk.copy(deep=False)
    for name, value in constants.items():
        frame[name] = value
    buffer = io.StringIO()
    frame[list(_NAMES)].to_csv(buffer, header=False, index=False, na_rep="", date_format="%Y-%m-%d %H:%M:%S%z")
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
        copy.write(buffer.getvalue().encode("utf-8"))


def _send_generic(conn: sa.Connection, table: sa.Table, chunk: pd.DataFrame, constants: dict) -> None:
    records = chunk.astype(object).where(chunk.notna(), None).to_dict("records")
    for record in records:
        record.update(constants)
        for name in ("as_of", "scored_at"):
            if isinstance(record[name], pd.Timestamp):
                record[name] = record[name].to_pydatetime()
    conn.execute(table.insert(), records)


class SqlSink:
    """Writes ``customer_signals`` batches to a database through SQLAlchemy (see the module docstring).

    Parameters
    ----------
    url : str or sqlalchemy URL
        ``sqlite:///crm.db``, ``postgresql://user@host/db``, ... (use :func:`open_sink` to read
        it from the settings and the environment).
    table : str
        Table name (``schema.table`` allowed); created on first write.
    chunk_rows : int
        Rows per round trip (the progress bar advances per chunk).
    """

    def __init__(self, url: str | URL, table: str = "customer_signals", *, chunk_rows: int = 50_000) -> None:
        url = make_url(url) if isinstance(url, str) else url
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        self.url = url
        self.table_name = table
        self.chunk_rows = chunk_rows
        self.table = signals_table(table)
        self._engine: sa.Engine | None = None

    @property
    def destination(self) -> str:
        """Where the rows go, with any password hidden."""
        return f"{_hidden(self.url)} table {self.table_name}"

    def engine(self) -> sa.Engine:
        if self._engine is None:
            if self.url.get_backend_name() == "sqlite" and self.url.database not in (None, "", ":memory:"):
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._engine = sa.create_engine(self.url)
                if self.url.get_backend_name() == "sqlite":
                    sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            except ModuleNotFoundError as exc:
                raise OutputError(f"no database driver for {_hidden(self.url)} ({exc.name} is not installed); "
                                  "for PostgreSQL: pip install 'signals[postgres]'") from None
        return self._engine

    def _ensure_table(self, conn: sa.Connection) -> None:
        inspector = sa.inspect(conn)
        if not inspector.has_table(self.table.name, schema=self.table.schema):
            self.table.create(conn)
            return
        present = {c["name"] for c in inspector.get_columns(self.table.name, schema=self.table.schema)}
        missing = [c for c in self.table.columns if c.name not in present]
        required = [c.name for c in missing if not c.nullable]
        if required:
            raise OutputError(f"{self.destination} exists without the required column(s) {required}; "
                              "rename the old table or choose another sink.table")
        preparer = conn.dialect.identifier_preparer
        for column in missing:  # an older table: add the newer optional columns
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(self.table)} "
                                 f"ADD COLUMN {preparer.quote(column.name)} {kind}")

    def write(self, frame: pd.DataFrame, *, progress: bool = True,
              on_chunk: Callable[[int, int], None] | None = None) -> SinkResult:
        """Replace the batches of ``frame`` in one transaction; returns what was written.

        ``on_chunk(done_rows, total_rows)`` is called after each chunk (for progress reports).
        Raises :class:`OutputError` (with the transaction rolled back) when the database refuses.
        """
        started = time.perf_counter()
        rows = check_signals(frame)
        batches = _batches(rows, batch_codes(rows))
        backend = self.url.get_backend_name()
        plan = []  # (rows of the batch, their constant columns) in chunks
        for key, positions in batches:
            part = rows.iloc[positions] if len(batches) > 1 else rows
            constants = dict(key)
            for name in ("run_id", "scored_at"):
                if _constant(part[name]):
                    constants[name] = part[name].iloc[0]
            if backend == "sqlite":
                constants = {k: (pd.Timestamp(v).tz_convert("UTC").tz_localize(None).strftime(_SQLITE_TIME)
                                 if isinstance(v, pd.Timestamp | dt.datetime) else v) for k, v in constants.items()}
                if "scored_at" not in constants:
                    part = part.assign(scored_at=part["scored_at"].dt.tz_localize(None).dt.strftime(_SQLITE_TIME))
            elif isinstance(constants.get("run_id"), float):
                constants["run_id"] = None
            variable = [n for n in _NAMES if n not in constants]
            for start in range(0, len(part), self.chunk_rows):
                plan.append((part.iloc[start:start + self.chunk_rows][variable], constants))
        engine = self.engine()
        done = 0
        try:
            with engine.begin() as conn:
                self._ensure_table(conn)
                for key, _ in batches:
                    conn.execute(self.table.delete().where(*self._batch_where(key, backend)))
                send = self._sender(conn, backend)
                for chunk, constants in track(plan, description=f"writing {self.table_name}", total=len(plan),
                                              enabled=progress):
                    send(conn, chunk, constants)
                    done += len(chunk)
                    if on_chunk is not None:
                        on_chunk(done, len(rows))
        except OutputError:
            raise
        except (sa.exc.SQLAlchemyError, OSError, ValueError, TypeError) as exc:
            raise OutputError(f"writing {len(rows):,} rows to {self.destination} failed: "
                              f"{_scrub(str(getattr(exc, 'orig', None) or exc), self.url)}; "
                              "the transaction was rolled back, no row of this run was written") from None
        except Exception as exc:  # the driver's own errors (psycopg.Error, ...)
            if type(exc).__module__.split(".")[0] not in ("psycopg", "sqlite3"):
                raise
            raise OutputError(f"writing {len(rows):,} rows to {self.destination} failed: "
                              f"{_scrub(str(exc), self.url)}; the transaction was rolled back, "
                              "no row of this run was written") from None
        return SinkResult(rows=len(rows), batches=[key for key, _ in batches], destination=self.destination,
                          seconds=time.perf_counter() - started)

    def ensure_table(self) -> None:
        """Create the table, or add the optional columns an older one lacks (its own transaction)."""
        try:
            with self.engine().begin() as conn:
                self._ensure_table(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise OutputError(f"preparing {self.destination} failed: "
                              f"{_scrub(str(getattr(exc, 'orig', None) or exc), self.url)}") from None

    def _batch_where(self, key: Mapping, backend: str) -> list:
        return [self.table.c[k] == (v.replace(tzinfo=None) if backend == "sqlite" and isinstance(v, dt.datetime) else v)
                for k, v in key.items()]

    @staticmethod
    def staging_table(name: str) -> sa.Table:
        """A staging table ``name`` (``schema.table`` allowed): the contract's columns and types
        except ``as_of`` and ``scored_at``, no key (see :meth:`replace_from_staging`)."""
        schema, _, table = name.rpartition(".")
        types = {"text": sa.Text(), "float": sa.Float(precision=53), "int": sa.BigInteger()}
        columns = [sa.Column(n, types[k]) for n, k, _ in SIGNAL_COLUMNS if n not in ("as_of", "scored_at")]
        return sa.Table(table, sa.MetaData(), *columns, schema=schema or None)

    def create_staging(self, name: str) -> None:
        """Create the empty staging table ``name`` (:meth:`staging_table`)."""
        try:
            with self.engine().begin() as conn:
                self.staging_table(name).create(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise OutputError(f"creating the staging table {name} in {self.destination} failed: "
                              f"{_scrub(str(getattr(exc, 'orig', None) or exc), self.url)}") from None

    def replace_from_staging(self, staging: str, batches: list[dict], *, scored_at) -> int:
        """Replace ``batches`` with the rows of the table ``staging``, in one transaction; returns rows inserted.

        ``staging`` (``schema.table`` allowed) holds the contract columns except ``as_of`` and
        ``scored_at`` (e.g. written by Spark's JDBC writer, :mod:`signals.io.spark_io`); each
        batch ``{as_of, task, model_name, model_version}`` is deleted from the table and inserted
        from the staging rows of its task, model name and version, with its ``as_of`` and the
        run's ``scored_at``. The rows never pass through this process. Raises
        :class:`OutputError` (rolled back, the table unchanged) when the database refuses.
        """
        stage = self.staging_table(staging)
        backend = self.url.get_backend_name()

        def instant(value) -> dt.datetime:
            stamp = pd.Timestamp(value).tz_convert("UTC")
            return stamp.tz_localize(None).to_pydatetime() if backend == "sqlite" else stamp.to_pydatetime()

        inserted = 0
        try:
            with self.engine().begin() as conn:
                self._ensure_table(conn)
                for key in batches:
                    key = {k: (pd.Timestamp(v).to_pydatetime() if k == "as_of" else v) for k, v in key.items()}
                    conn.execute(self.table.delete().where(*self._batch_where(key, backend)))
                    columns = [sa.literal(instant(key["as_of"]), self.table.c.as_of.type).label("as_of")
                               if n == "as_of" else
                               sa.literal(instant(scored_at), self.table.c.scored_at.type).label("scored_at")
                               if n == "scored_at" else stage.c[n] for n in _NAMES]
                    select = sa.select(*columns).where(stage.c.task == key["task"],
                                                       stage.c.model_name == key["model_name"],
                                                       stage.c.model_version == key["model_version"])
                    conn.execute(self.table.insert().from_select(list(_NAMES), select))
                    # counted, not rowcount: drivers need not report it for INSERT ... SELECT
                    inserted += conn.execute(sa.select(sa.func.count()).select_from(self.table)
                                             .where(*self._batch_where(key, backend))).scalar_one()
        except (sa.exc.SQLAlchemyError, OSError, ValueError, TypeError) as exc:
            raise OutputError(f"moving the rows of {staging} into {self.destination} failed: "
                              f"{_scrub(str(getattr(exc, 'orig', None) or exc), self.url)}; "
                              "the transaction was rolled back, no row of this run was written") from None
        return inserted

    def drop_table(self, name: str) -> None:
        """Drop the table ``name`` (``schema.table``) if it exists (a staging table)."""
        schema, _, table = name.rpartition(".")
        try:
            with self.engine().begin() as conn:
                sa.Table(table, sa.MetaData(), schema=schema or None).drop(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            raise OutputError(f"dropping the staging table {name} of {self.destination} failed: "
                              f"{_scrub(str(getattr(exc, 'orig', None) or exc), self.url)}") from None

    def _sender(self, conn: sa.Connection, backend: str) -> Callable:
        preparer = conn.dialect.identifier_preparer
        if backend == "sqlite":
            names = ", ".join(preparer.quote(n) for n in _NAMES)
            sql = (f"INSERT INTO {preparer.format_table(self.table)} ({names}) "
                   f"VALUES ({', '.join('?' * len(_NAMES))})")
            return lambda c, chunk, constants: _send_sqlite(c, sql, chunk, constants)
        if backend == "postgresql" and self.url.get_driver_name() == "psycopg":
            from psycopg import sql as pgsql

            target = (pgsql.Identifier(self.table.schema, self.table.name) if self.table.schema
                      else pgsql.Identifier(self.table.name))
            copy_sql = pgsql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                target, pgsql.SQL(", ").join(pgsql.Identifier(n) for n in _NAMES))
            return lambda c, chunk, constants: _send_postgresql(c, copy_sql, chunk, constants)
        return lambda c, chunk, constants: _send_generic(c, self.table, chunk, constants)

    def read(self, *, as_of=None, task: str | None = None) -> pd.DataFrame:
        """The stored rows (all, or of one as-of instant and/or task), timestamps in UTC."""
        query = sa.select(self.table)
        if as_of is not None:
            instant = pd.Timestamp(as_of).tz_convert("UTC").to_pydatetime()
            if self.url.get_backend_name() == "sqlite":
                instant = instant.replace(tzinfo=None)
            query = query.where(self.table.c.as_of == instant)
        if task is not None:
            query = query.where(self.table.c.task == task)
        try:
            with self.engine().connect() as conn:
                if not sa.inspect(conn).has_table(self.table.name, schema=self.table.schema):
                    return pd.DataFrame(columns=list(_NAMES))
                result = conn.execute(query)
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        except sa.exc.SQLAlchemyError as exc:
            raise OutputError(f"reading {self.destination} failed: {_scrub(str(exc), self.url)}") from None
        for name in ("as_of", "scored_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# --------------------------------------------------------------------------------------------
# files


def _safe(text: str) -> str:
    return urllib.parse.quote(str(text), safe="-_.")


class FileSink:
    """One Parquet or CSV file per batch under ``folder/table`` (see the module docstring)."""

    def __init__(self, folder: str | Path, table: str = "customer_signals", *, format: str = "parquet") -> None:
        if format not in ("parquet", "csv"):
            raise ConfigError(f"sink.format must be parquet or csv, got {format!r}")
        self.root = Path(folder) / table
        self.format = format

    @property
    def destination(self) -> str:
        return str(self.root)

    def path_of(self, batch: Mapping) -> Path:
        stamp = pd.Timestamp(batch["as_of"]).tz_convert("UTC").strftime("%Y%m%dT%H%M%SZ")
        name = f"{_safe(batch['task'])}__{_safe(batch['model_name'])}__{_safe(batch['model_version'])}.{self.format}"
        return self.root / f"as_of={stamp}" / name

    def write(self, frame: pd.DataFrame, *, progress: bool = True,
              on_chunk: Callable[[int, int], None] | None = None) -> SinkResult:
        """Write each batch of ``frame`` to its own file, atomically (replacing the same batch)."""
        started = time.perf_counter()
        rows = check_signals(frame)
        batches = _batches(rows, batch_codes(rows))
        done = 0
        for batch, positions in track(batches, description=f"writing {self.root.name}", total=len(batches),
                                      enabled=progress):
            part = rows.iloc[positions] if len(batches) > 1 else rows
            path = self.path_of(batch)
            with atomic_file(path) as tmp:
                if self.format == "parquet":
                    part.to_parquet(tmp, index=False)
                else:
                    part.to_csv(tmp, index=False, encoding="utf-8")
            done += len(part)
            if on_chunk is not None:
                on_chunk(done, len(rows))
        return SinkResult(rows=len(rows), batches=[b for b, _ in batches], destination=self.destination,
                          seconds=time.perf_counter() - started)

    def read(self, *, as_of=None, task: str | None = None) -> pd.DataFrame:
        parts = []
        for path in sorted(self.root.glob(f"as_of=*/*.{self.format}")):
            if self.format == "parquet":
                part = pd.read_parquet(path)
            else:
                text = [n for n, k, _ in SIGNAL_COLUMNS if k == "text"]
                part = pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=False,
                                   na_values={n: [""] for n in _NAMES})
                for name in text:
                    part[name] = part[name].astype(object).where(part[name].notna(), None)
            parts.append(part)
        if not parts:
            return pd.DataFrame(columns=list(_NAMES))
        frame = pd.concat(parts, ignore_index=True)
        for name in ("as_of", "scored_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        if as_of is not None:
            frame = frame[frame["as_of"] == pd.Timestamp(as_of).tz_convert("UTC")]
        if task is not None:
            frame = frame[frame["task"] == task]
        return frame.reset_index(drop=True)

    def dispose(self) -> None:
        pass


def open_sink(sink: SinkSettings, *, environ: Mapping[str, str] | None = None) -> SqlSink | FileSink:
    """The sink the settings describe (the URL from the environment when ``sink.url_env`` is set)."""
    if sink.kind == "files":
        return FileSink(sink.folder, sink.table, format=sink.format)
    return SqlSink(resolve_url(sink, environ), sink.table, chunk_rows=sink.chunk_rows)
