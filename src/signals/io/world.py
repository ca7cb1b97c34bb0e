"""Files of a simulated world: its canonical tables, its truth, and its messy raw exports.

* :func:`write_world` writes ``events``, ``customers`` (Parquet) and ``truth`` (JSON) of a
  :class:`~signals.simulate.SimulatedWorld` to the paths of the settings;
* :func:`read_truth` reads the truth back (and checks it is one);
* :func:`write_raw_sources` writes the frames of :func:`~signals.messy.messy_sources` where
  ``settings.ingest.sources`` says ingestion will read them: CSV and Parquet files, and a table
  of a SQL database (SQLAlchemy; the table is the one the source's query reads).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signals.errors import ConfigError, DataError, OutputError
from signals.io.atomic import atomic_file, atomic_files
from signals.io.sources import mask_url, source_url
from signals.io.tables import dump_json, dump_table, read_json
from signals.settings import PathSettings, Settings, SourceSettings
from signals.simulate import SimulatedWorld

__all__ = ["read_truth", "sql_table_of", "write_raw_sources", "write_world"]

_TRUTH_KEYS = ("start", "end", "shift_date", "seed", "n_customers", "true_half_life_days", "weights", "realised")


def write_world(world: SimulatedWorld, paths: PathSettings) -> dict[str, Path]:
    """Write the world's ``events`` and ``customers`` (Parquet or CSV by suffix) and ``truth`` (JSON).

    Returns the written paths keyed ``events``, ``customers``, ``truth``. ``latent`` is not written:
    it is the unobserved part of the world. The three files are replaced together
    (:func:`signals.io.atomic.atomic_files`): an interrupted write leaves the old world.
    """
    targets = {"events": Path(paths.events), "customers": Path(paths.customers), "truth": Path(paths.truth)}
    with atomic_files(*targets.values()) as (events, customers, truth):
        dump_table(world.events, events, like=targets["events"])
        dump_table(world.customers, customers, like=targets["customers"])
        dump_json(world.truth, truth)
    return targets


def read_truth(path: str | Path) -> dict[str, Any]:
    """Read a ``truth.json`` written by :func:`write_world`.

    Raises
    ------
    DataError
        The file does not exist or is not a simulator truth (a required key is missing).
    """
    truth = read_json(path)
    missing = [k for k in _TRUTH_KEYS if not isinstance(truth, dict) or k not in truth]
    if missing:
        raise DataError(f"{path}: not a simulator truth file, missing key(s) {missing}")
    return truth


def sql_table_of(query: str) -> str:
    """The table a source query ``SELECT ... FROM <table>`` reads.

    >>> sql_table_of("SELECT customer, opened_at, category FROM tickets")
    'tickets'
    """
    match = re.search(r"\bfrom\s+([A-Za-z_][A-Za-z0-9_]*)", query, flags=re.IGNORECASE)
    if match is None:
        raise ConfigError(f"cannot find the table in the source query {query!r} (expected SELECT ... FROM <table>)")
    return match.group(1)


def _write_sql(frame: pd.DataFrame, source: SourceSettings) -> str:
    """Replace the source's table in one transaction: a new table under a temporary name, then a swap."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    text = source_url(source)
    url = make_url(text)
    table = sql_table_of(source.query or "")
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    staging = f"{table}__signals_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as connection:  # all or nothing: an interrupted write leaves the old table
            frame.to_sql(staging, connection, index=False)
            preparer = engine.dialect.identifier_preparer
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {preparer.quote(table)}"))
            connection.execute(sa.text(f"ALTER TABLE {preparer.quote(staging)} RENAME TO {preparer.quote(table)}"))
    except sa.exc.SQLAlchemyError as exc:
        raise OutputError(f"cannot write table {table} of {mask_url(text)}: {getattr(exc, 'orig', exc)}") from None
    finally:
        engine.dispose()
    return mask_url(text)


def write_raw_sources(frames: Mapping[str, pd.DataFrame], settings: Settings) -> dict[str, str]:
    """Write raw source frames where ``settings.ingest.sources`` will read them.

    A ``csv`` source is written with its ``encoding`` and ``delimiter`` (every cell as text, empty
    for missing), a ``parquet`` source as stored, a ``sql`` source into the table its ``query``
    reads (replaced if it exists, in one transaction) of the database at ``url`` (or the variable
    ``url_env``); a SQLite file's folder is created. Files are written whole or not at all
    (:func:`signals.io.atomic.atomic_file`).

    Returns
    -------
    dict of str to str
        Where each source went (a path, or the database URL without password and the table).

    Raises
    ------
    ConfigError
        A frame is given for a source the settings do not define.
    OutputError
        A file or table cannot be written.
    """
    sources = {s.name: s for s in settings.ingest.sources}
    unknown = sorted(set(frames) - set(sources))
    if unknown:
        raise ConfigError(f"no ingest.sources entry for frame(s) {unknown}; configured: {sorted(sources)}")
    written: dict[str, str] = {}
    for name, frame in frames.items():
        source = sources[name]
        if source.kind == "csv":
            path = Path(source.path)  # type: ignore[arg-type]  # settings require a path for files
            with atomic_file(path) as tmp:
                frame.to_csv(tmp, index=False, encoding=source.encoding, sep=source.delimiter)
            written[name] = str(path)
        elif source.kind == "parquet":
            path = Path(source.path)  # type: ignore[arg-type]
            with atomic_file(path) as tmp:
                frame.to_parquet(tmp, index=False)
            written[name] = str(path)
        else:
            written[name] = f"{_write_sql(frame, source)} (table {sql_table_of(source.query or '')})"
    return written
