"""Files of a simulated world: its canonical tables, its truth, and its messy raw exports.

* :func:`write_world` writes ``events``, ``customers`` (Parquet) and ``truth`` (JSON) of a
  :class:`~signals.simulate.SimulatedWorld` to the paths of the settings;
* :func:`read_truth` reads the truth back (and checks it is one);
* :func:`write_raw_sources` writes the frames of :func:`~signals.simulate.messy_sources` where
  ``settings.ingest.sources`` says ingestion will read them: CSV and Parquet files, and a table
  of a SQL database (SQLAlchemy; the table is the one the source's query reads).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signals.io.tables import read_json, write_json, write_table
from signals.settings import PathSettings, Settings, SourceSettings
from signals.simulate import SimulatedWorld

__all__ = ["read_truth", "sql_table_of", "write_raw_sources", "write_world"]

_TRUTH_KEYS = ("start", "end", "shift_date", "seed", "n_customers", "true_half_life_days", "weights", "realised")


def write_world(world: SimulatedWorld, paths: PathSettings) -> dict[str, Path]:
    """Write the world's ``events`` and ``customers`` (Parquet or CSV by suffix) and ``truth`` (JSON).

    Returns the written paths keyed ``events``, ``customers``, ``truth``. ``latent`` is not written:
    it is the unobserved part of the world.
    """
    return {
        "events": write_table(world.events, paths.events),
        "customers": write_table(world.customers, paths.customers),
        "truth": write_json(world.truth, paths.truth),
    }


def read_truth(path: str | Path) -> dict[str, Any]:
    """Read a ``truth.json`` written by :func:`write_world`.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a simulator truth (a required key is missing).
    """
    truth = read_json(path)
    missing = [k for k in _TRUTH_KEYS if not isinstance(truth, dict) or k not in truth]
    if missing:
        raise ValueError(f"{path}: not a simulator truth file, missing key(s) {missing}")
    return truth


def sql_table_of(query: str) -> str:
    """The table a source query ``SELECT ... FROM <table>`` reads.

    >>> sql_table_of("SELECT customer, opened_at, category FROM tickets")
    'tickets'
    """
    match = re.search(r"\bfrom\s+([A-Za-z_][A-Za-z0-9_]*)", query, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"cannot find the table in the source query {query!r} (expected SELECT ... FROM <table>)")
    return match.group(1)


def _database_url(source: SourceSettings) -> str:
    if source.url_env and os.environ.get(source.url_env, "").strip():
        return os.environ[source.url_env].strip()
    if source.url is None:
        raise ValueError(f"source {source.name!r}: no database URL (set url, or the variable {source.url_env})")
    return source.url


def _write_sql(frame: pd.DataFrame, source: SourceSettings) -> str:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    url = make_url(_database_url(source))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    try:
        frame.to_sql(sql_table_of(source.query or ""), engine, if_exists="replace", index=False)
    finally:
        engine.dispose()
    return url.render_as_string(hide_password=True)


def write_raw_sources(frames: Mapping[str, pd.DataFrame], settings: Settings) -> dict[str, str]:
    """Write raw source frames where ``settings.ingest.sources`` will read them.

    A ``csv`` source is written with its ``encoding`` (every cell as text, empty for missing), a
    ``parquet`` source as stored, a ``sql`` source into the table its ``query`` reads (replaced if
    it exists) of the database at ``url`` (or the variable ``url_env``); a SQLite file's folder
    is created. Relative paths start at the working directory.

    Returns
    -------
    dict of str to str
        Where each source went (a path, or the database URL without password and the table).

    Raises
    ------
    ValueError
        A frame is given for a source the settings do not define.
    """
    sources = {s.name: s for s in settings.ingest.sources}
    unknown = sorted(set(frames) - set(sources))
    if unknown:
        raise ValueError(f"no ingest.sources entry for frame(s) {unknown}; configured: {sorted(sources)}")
    written: dict[str, str] = {}
    for name, frame in frames.items():
        source = sources[name]
        if source.kind == "csv":
            path = Path(source.path)  # type: ignore[arg-type]  # settings require a path for files
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False, encoding=source.encoding)
            written[name] = str(path)
        elif source.kind == "parquet":
            path = Path(source.path)  # type: ignore[arg-type]
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
            written[name] = str(path)
        else:
            written[name] = f"{_write_sql(frame, source)} (table {sql_table_of(source.query or '')})"
    return written
