"""Readers for the raw systems that feed ingestion: CSV, Parquet and SQL (through SQLAlchemy).

A reader returns the source's rows untouched; mapping and validation happen in
:func:`signals.ingest.map_source`. CSV is read with every column as text (``"00001"`` keeps its
zeros, an empty field is ``""``, nothing is guessed); Parquet comes as stored (tz-aware timestamp
columns stay aware); SQL comes as the driver returns it.

Every user mistake is an :class:`signals.errors.IngestError` whose message names the source, what is
wrong and the configuration key to fix: a file that does not exist, an unreadable file, an
environment variable that is not set, a database URL that is wrong, a query that fails (with the
database's own message). Database URLs in messages never show a password.

Relative paths are read from the working directory, like every path in the configs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pandas as pd

from signals.errors import IngestError
from signals.settings import SourceSettings

__all__ = ["read_source", "source_url"]


def _fail(message: str) -> NoReturn:
    raise IngestError(message)


def _key(source: SourceSettings, field: str) -> str:
    return f"ingest.sources[name={source.name}].{field}"


def _existing_file(source: SourceSettings) -> Path:
    path = Path(source.path)  # type: ignore[arg-type]  # the settings require a path for files
    if not path.exists():
        _fail(
            f"source {source.name!r}: file not found: {path} (from {_key(source, 'path')}; "
            f"relative paths start at the working directory {Path.cwd()})"
        )
    if not path.is_file():
        _fail(f"source {source.name!r}: {path} is not a file (from {_key(source, 'path')})")
    return path


def _read_csv(source: SourceSettings) -> pd.DataFrame:
    path = _existing_file(source)
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,  # "", "NA", "null" stay text; ingestion decides what is missing
            encoding=source.encoding,
            engine="pyarrow",
        )
    except pd.errors.EmptyDataError:
        _fail(f"source {source.name!r}: {path} is empty (not even a header row)")
    except LookupError:
        _fail(f"source {source.name!r}: unknown encoding {source.encoding!r} in {_key(source, 'encoding')}")
    except (ValueError, UnicodeError, OSError) as exc:  # pandas' ParserError is a ValueError
        hint = ""
        if "utf" in str(exc).lower() or isinstance(exc, UnicodeError):
            hint = f" (is the file really {source.encoding}? set {_key(source, 'encoding')}, e.g. cp932 for Excel in Japan)"
        _fail(f"source {source.name!r}: cannot read CSV {path}: {exc}{hint}")


def _read_parquet(source: SourceSettings) -> pd.DataFrame:
    path = _existing_file(source)
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        _fail(f"source {source.name!r}: cannot read Parquet {path}: {exc}")


def source_url(source: SourceSettings) -> str:
    """The database URL of a SQL source: the variable named by ``url_env`` when set, else ``url``.

    Secrets belong in the environment: put the URL (with its password) in the variable and name the
    variable in ``url_env``; ``url`` is the fallback for password-free URLs such as SQLite files.
    """
    if source.url_env:
        value = os.environ.get(source.url_env, "").strip()
        if value:
            return value
        if source.url is None:
            _fail(
                f"source {source.name!r}: environment variable {source.url_env} is not set "
                f"(named by {_key(source, 'url_env')}); export it with the database URL, "
                f"e.g. {source.url_env}=postgresql+psycopg://user:password@host/db"
            )
    if source.url is None:
        _fail(f"source {source.name!r}: no database URL; set {_key(source, 'url')} or {_key(source, 'url_env')}")
    return source.url


def _read_sql(source: SourceSettings) -> pd.DataFrame:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    text = source_url(source)
    try:
        url = make_url(text)
    except sa.exc.ArgumentError as exc:
        _fail(f"source {source.name!r}: not a database URL ({exc}); fix {_key(source, 'url')} or {_key(source, 'url_env')}")
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not url.database.startswith("file:") and not Path(url.database).is_file():
        # SQLite would silently create an empty database file here
        _fail(f"source {source.name!r}: SQLite database file not found: {url.database} (from {shown})")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        _fail(f"source {source.name!r}: cannot use database {shown}: {exc} (is its driver installed?)")
    try:
        with engine.connect() as connection:
            return pd.read_sql(sa.text(source.query), connection)  # type: ignore[arg-type]
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ is not None else exc
        reason = cause.orig if isinstance(cause, sa.exc.DBAPIError) else cause  # the database's own words
        _fail(f"source {source.name!r}: query failed on {shown}: {reason}\n  query ({_key(source, 'query')}): {source.query}")
    finally:
        engine.dispose()


def read_source(source: SourceSettings) -> pd.DataFrame:
    """Read one source's raw rows (see the module docstring); errors are :class:`~signals.errors.IngestError`."""
    if source.kind == "csv":
        return _read_csv(source)
    if source.kind == "parquet":
        return _read_parquet(source)
    if source.kind == "sql":
        return _read_sql(source)
    _fail(f"source {source.name!r}: unknown kind {source.kind!r}")  # the settings allow none
