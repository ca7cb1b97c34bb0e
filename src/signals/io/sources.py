"""Readers for the raw systems that feed ingestion: CSV, Parquet and SQL (through SQLAlchemy).

A reader returns the source's rows untouched; mapping and validation happen in
:func:`signals.ingest.map_source`. CSV is read with every column as text (``"00001"`` keeps its
zeros, an empty field is ``""``, nothing is guessed), with the source's ``encoding`` and
``delimiter``; Parquet comes as stored (tz-aware timestamp columns stay aware); SQL comes as the
driver returns it.

Every user mistake is an :class:`signals.errors.IngestError` whose message names the source, what is
wrong and the configuration key to fix: a file that does not exist, an unreadable file, an
environment variable that is not set, a database URL that is wrong, a query that fails (with the
database's own message).

SQL sources only read. The query must be a single ``SELECT`` (or ``WITH ... SELECT``) statement,
checked before it is sent; it then runs on a read-only connection where the database offers one
(SQLite ``PRAGMA query_only``, PostgreSQL and MySQL read-only transactions), and the transaction is
always rolled back. Database URLs in messages never show the password, whatever characters it
holds (:func:`mask_url`), and any piece of it a driver repeats in its own message is masked too.

Relative paths are read from the working directory; :func:`signals.settings.load_settings` has
already resolved the paths written in a config file against that file's folder.
"""

from __future__ import annotations

import codecs
import os
import re
import urllib.parse
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from signals.errors import IngestError
from signals.settings import SourceSettings

__all__ = ["LineNumbers", "check_read_only_query", "lines_of", "mask_url", "read_source", "source_url"]


def _fail(message: str) -> NoReturn:
    raise IngestError(message)


def _key(source: SourceSettings, field: str) -> str:
    return f"ingest.sources[name={source.name}].{field}"


# --------------------------------------------------------------------------------------------
# line numbers of CSV rows


class LineNumbers:
    """Where each row of a raw frame starts in its file (1-based lines; the header is line 1).

    Kept in ``frame.attrs["signals_lines"]``; pandas deep-copies ``attrs`` on every operation, so
    this object copies as itself.
    """

    def __init__(self, first: int, starts: np.ndarray | None = None) -> None:
        self.first = first
        self.starts = starts  # None: row i starts on line first + i

    def __deepcopy__(self, memo) -> LineNumbers:
        return self

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if self.starts is None:
            return rows + self.first
        return self.starts[rows]


def lines_of(raw: pd.DataFrame, source: SourceSettings) -> LineNumbers:
    """The line numbers of a raw frame's rows: exact for CSV files read by :func:`read_source`.

    A CSV frame from elsewhere is taken to have one header line and one line per row; Parquet
    and SQL rows get their 1-based row number.
    """
    lines = raw.attrs.get("signals_lines")
    if isinstance(lines, LineNumbers):
        return lines
    return LineNumbers(2 if source.reader == "csv" else 1)


_CHUNK = 1 << 24


def _count_newlines(path: Path) -> tuple[int, bool]:
    """(number of ``\\n`` bytes, whether the file ends with one), reading 16 MB at a time."""
    count, last = 0, b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count, last == b"\n"


def _record_lines(data: bytes, quote: int = ord('"')) -> np.ndarray:
    """Start line of every non-empty CSV record (quoted fields may hold line breaks)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newline = np.flatnonzero(buf == 10)
    quotes = np.flatnonzero(buf == quote)
    outside = np.searchsorted(quotes, newline) % 2 == 0  # an even number of quotes before: a record ends
    ends = newline[outside]
    starts = np.concatenate([[0], ends + 1])
    starts = starts[starts < len(buf)]
    blank = (buf[starts] == 10) | ((buf[starts] == 13) & (buf[np.minimum(starts + 1, len(buf) - 1)] == 10))
    starts = starts[~blank]
    return np.searchsorted(newline, starts, side="left").astype(np.int64) + 1


def _csv_lines(path: Path, source: SourceSettings, n_rows: int) -> LineNumbers:
    count, trailing = _count_newlines(path)
    if count + (0 if trailing else 1) == n_rows + 1:  # one line per record: nothing to scan
        return LineNumbers(2)
    data = path.read_bytes()
    encoding = codecs.lookup(source.encoding).name
    if encoding.startswith(("utf-16", "utf-32")):  # not ASCII-compatible: scan the text as UTF-8
        data = data.decode(source.encoding).encode("utf-8")
    starts = _record_lines(data)
    if len(starts) != n_rows + 1:  # the reader saw the file differently: fall back to the simple rule
        return LineNumbers(2)
    return LineNumbers(0, starts[1:])


# --------------------------------------------------------------------------------------------
# files


def _existing_file(source: SourceSettings) -> Path:
    path = Path(source.path)  # type: ignore[arg-type]  # the settings require a path for files
    if not path.exists():
        _fail(
            f"source {source.name!r}: file not found: {path} (from {_key(source, 'path')}; relative paths in a "
            f"config file start at the file's folder, on the command line at the working directory {Path.cwd()})"
        )
    if not path.is_file():
        _fail(f"source {source.name!r}: {path} is not a file (from {_key(source, 'path')})")
    return path


def _read_csv(source: SourceSettings) -> pd.DataFrame:
    path = _existing_file(source)
    try:
        codecs.lookup(source.encoding)
    except LookupError:
        _fail(f"source {source.name!r}: unknown encoding {source.encoding!r} in {_key(source, 'encoding')}")
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,  # "", "NA", "null" stay text; ingestion decides what is missing
            encoding=source.encoding,
            sep=source.delimiter,
            engine="pyarrow",
        )
    except pd.errors.EmptyDataError:
        _fail(f"source {source.name!r}: {path} is empty (not even a header row)")
    except (ValueError, UnicodeError, OSError) as exc:  # pandas' ParserError is a ValueError
        hint = ""
        if "utf" in str(exc).lower() or "decode" in str(exc).lower() or isinstance(exc, UnicodeError):
            hint = (f" (is the file really {source.encoding}? set {_key(source, 'encoding')}, "
                    "e.g. cp932 for Excel in Japan)")
        elif "columns" in str(exc).lower():
            hint = f" (is {source.delimiter!r} the field separator? set {_key(source, 'delimiter')})"
        _fail(f"source {source.name!r}: cannot read CSV {path}: {exc}{hint}")
    frame.attrs["signals_lines"] = _csv_lines(path, source, len(frame))
    return frame


def _read_parquet(source: SourceSettings) -> pd.DataFrame:
    path = _existing_file(source)
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        _fail(f"source {source.name!r}: cannot read Parquet {path}: {exc}")


# --------------------------------------------------------------------------------------------
# databases


def _secret(url: str) -> str | None:
    """The password part of ``scheme://user:password@host/...`` as written (None when there is none).

    The host starts after the *last* ``@``, so a password holding an unescaped ``@``, ``/``, ``:``
    or ``#`` is still taken whole (a URL parser would cut it and show the rest as host or path).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo = rest[: rest.rindex("@")]
    user, colon, password = userinfo.partition(":")
    return password if colon and password else None


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, whatever characters the password holds.

    >>> mask_url("postgresql://crm_admin:p@ss/w0rd#1@db.example:5432/crm")
    'postgresql://crm_admin:***@db.example:5432/crm'
    >>> mask_url("sqlite:///data/raw/support.db")
    'sqlite:///data/raw/support.db'
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    at = rest.rindex("@")
    user, colon, password = rest[:at].partition(":")
    if not colon:
        return url
    return f"{scheme}://{user}:***{rest[at:]}"


def _scrubber(url: str):
    """A function that removes every trace of ``url``'s password from a message."""
    secret = _secret(url)
    if secret is None:
        return lambda text: text
    pieces = {secret, *(p for p in re.split(r"[@/:?#]", secret) if len(p) >= 3)}
    variants = set()
    for piece in pieces:
        variants |= {piece, urllib.parse.quote(piece, safe=""), urllib.parse.quote_plus(piece),
                     urllib.parse.unquote(piece)}
    ordered = sorted((v for v in variants if v), key=len, reverse=True)

    def scrub(text: str) -> str:
        text = text.replace(url, mask_url(url))
        for variant in ordered:
            text = text.replace(variant, "***")
        return text

    return scrub


def source_url(source: SourceSettings) -> str:
    """The database URL of a SQL source: the variable named by ``url_env`` when set, else ``url``.

    Secrets belong in the environment: put the URL (with its password) in the variable and name the
    variable in ``url_env``; ``url`` is the fallback for password-free URLs such as SQLite files.
    Used by ingestion and by the simulator's writer alike.
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


# Words that only a writing statement holds (functions such as replace() and column names such as
# "comment" stay allowed; "into" catches SELECT ... INTO new_table).
_WRITE_WORDS = frozenset({
    "insert", "update", "delete", "merge", "upsert", "drop", "create", "alter", "truncate", "grant", "revoke",
    "attach", "detach", "vacuum", "reindex", "copy", "into", "pragma", "call", "exec", "execute",
})


def _strip_sql(query: str) -> str:
    """The query without comments, string literals and quoted identifiers (so words inside them do not count)."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL)
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]", " x ", text)


def check_read_only_query(query: str) -> str | None:
    """Why ``query`` may write (None when it is one plain ``SELECT`` / ``WITH ... SELECT``).

    >>> check_read_only_query("SELECT customer, opened_at FROM tickets -- drop later")
    >>> check_read_only_query("DROP TABLE tickets")
    'it starts with DROP, not SELECT or WITH'
    >>> check_read_only_query("SELECT 1; DELETE FROM tickets")
    'it holds more than one statement'
    """
    text = _strip_sql(query).strip().rstrip(";").strip()
    if not text:
        return "it is empty"
    if ";" in text:
        return "it holds more than one statement"
    first = text.split(None, 1)[0].lower().lstrip("(")
    if first not in ("select", "with"):
        return f"it starts with {text.split(None, 1)[0].upper()}, not SELECT or WITH"
    words = set(re.findall(r"[a-z_]+", text.lower()))
    writes = sorted(words & _WRITE_WORDS)
    if writes:
        return f"it contains {', '.join(w.upper() for w in writes)}"
    return None


def _read_only(connection, backend: str) -> None:
    """Make the open transaction read-only where the database offers a way."""
    import sqlalchemy as sa

    if backend == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")
    elif backend == "postgresql":
        connection.execute(sa.text("SET TRANSACTION READ ONLY"))
    elif backend in ("mysql", "mariadb"):
        connection.execute(sa.text("SET SESSION TRANSACTION READ ONLY"))


def _read_sql(source: SourceSettings) -> pd.DataFrame:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    text = source_url(source)
    shown = mask_url(text)
    scrub = _scrubber(text)
    where = _key(source, "url_env" if source.url_env and os.environ.get(source.url_env, "").strip() else "url")

    def fail(message: str) -> NoReturn:
        _fail(scrub(message))

    why = check_read_only_query(source.query or "")
    if why is not None:
        fail(f"source {source.name!r}: {_key(source, 'query')} must be one read-only SELECT statement, "
             f"and {why}: {source.query!r}")
    secret = _secret(text)
    if secret is not None and re.search(r"[@/#?]", secret):
        fail(f"source {source.name!r}: the password in the database URL holds '@', '/', '#' or '?': "
             f"percent-encode it (@ -> %40, / -> %2F, # -> %23, ? -> %3F) in {where} ({shown})")
    try:
        url = make_url(text)
    except sa.exc.ArgumentError as exc:
        fail(f"source {source.name!r}: not a database URL ({exc}); fix {where} ({shown})")
    backend = url.get_backend_name()
    if url.drivername in ("postgres", "postgres+psycopg", "postgres+psycopg2"):
        fixed = "postgresql" + url.drivername[len("postgres"):]
        fail(f"source {source.name!r}: {where} starts with {url.drivername}://, which SQLAlchemy does not "
             f"accept: write {fixed}:// (e.g. postgresql+psycopg://user:password@host/db)")
    if backend == "sqlite" and url.database not in (None, "", ":memory:") \
            and not url.database.startswith("file:") and not Path(url.database).is_file():
        # SQLite would silently create an empty database file here
        fail(f"source {source.name!r}: SQLite database file not found: {url.database} (from {where}: {shown})")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        fail(f"source {source.name!r}: cannot use database {shown}: {exc} (is its driver installed? "
             "e.g. pip install 'psycopg[binary]' for postgresql+psycopg://)")
    try:
        with engine.connect() as connection:
            try:
                _read_only(connection, backend)
                return pd.read_sql(sa.text(source.query), connection)  # type: ignore[arg-type]
            finally:
                connection.rollback()  # never commit anything
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ is not None else exc
        reason = cause.orig if isinstance(cause, sa.exc.DBAPIError) else cause  # the database's own words
        fail(f"source {source.name!r}: query failed on {shown}: {reason}\n  query ({_key(source, 'query')}): "
             f"{source.query}")
    finally:
        engine.dispose()


def read_source(source: SourceSettings) -> pd.DataFrame:
    """Read one source's raw rows (see the module docstring); errors are :class:`~signals.errors.IngestError`."""
    if source.reader == "csv":
        return _read_csv(source)
    if source.reader == "parquet":
        return _read_parquet(source)
    if source.reader == "sql":
        return _read_sql(source)
    _fail(f"source {source.name!r}: unknown kind {source.kind!r}")  # the settings allow none
