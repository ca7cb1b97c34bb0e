"""Reading and writing the package's own tables (events, customers, features, rejects).

Parquet keeps dtypes (categoricals, UTC timestamps); CSV is for humans and spreadsheets. Customer
ids are text in both: a CSV written here and read back keeps ``"00042"``, ``"0042"`` and ``"42"``
apart (the ``customer_id`` column is always read as text, never as a number).
The format follows the file suffix. Parent folders are created on write. Every write is atomic
(:func:`signals.io.atomic.atomic_file`): a crash leaves the old file or none, never half a file.
JSON is strict: ``NaN`` and infinities are written as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signals.errors import ConfigError, DataError
from signals.io.atomic import atomic_file
from signals.schemas import CUSTOMER_ID, check_events

__all__ = [
    "dump_json",
    "dump_table",
    "dumps_strict",
    "read_events",
    "read_user_table",
    "read_json",
    "read_table",
    "strict_json_value",
    "write_json",
    "write_table",
]

_SUFFIXES = (".parquet", ".csv")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(f"{path}: unsupported file type {suffix!r}; use one of {list(_SUFFIXES)}")
    return suffix


def dump_table(df: pd.DataFrame, tmp: str | Path, *, like: str | Path) -> None:
    """Write ``df`` to the temporary file ``tmp`` in the format of ``like``'s suffix (not atomic by itself:
    use it inside :func:`signals.io.atomic.atomic_files` to write several tables that belong together)."""
    if _suffix(Path(like)) == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` (Parquet or CSV by suffix), creating parent folders; returns the path."""
    path = Path(path)
    _suffix(path)
    with atomic_file(path) as tmp:
        dump_table(df, tmp, like=path)
    return path


#: Columns read as text from CSV, never guessed as numbers.
TEXT_COLUMNS = (CUSTOMER_ID, "event_id", "kept_source", "source")


def read_table(path: str | Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a Parquet or CSV table written by :func:`write_table`.

    From CSV, the id columns (:data:`TEXT_COLUMNS`) are text, an empty cell being missing; the
    other columns are parsed as pandas does.

    Raises
    ------
    DataError
        The file does not exist or cannot be read as a table.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    usecols = list(columns) if columns is not None else None
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path, columns=usecols)
        from pandas._libs.parsers import STR_NA_VALUES

        header = pd.read_csv(path, nrows=0).columns
        text = [c for c in TEXT_COLUMNS if c in header]
        na_values = {c: ([""] if c in text else sorted(STR_NA_VALUES)) for c in header}
        return pd.read_csv(path, usecols=usecols, dtype=dict.fromkeys(text, "str"),
                           keep_default_na=False, na_values=na_values)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid and pandas' ParserError are ValueErrors
        raise DataError(f"{path}: cannot read the table ({exc})") from None


def read_events(path: str | Path, touchpoints: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a canonical events table and validate it (see :func:`signals.schemas.check_events`)."""
    return check_events(read_table(path), touchpoints)


def strict_json_value(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by ``None`` and NumPy scalars as Python ones.

    >>> strict_json_value({"auc": float("nan"), "n": np.int64(3), "xs": [1.5, float("inf")]})
    {'auc': None, 'n': 3, 'xs': [1.5, None]}
    """
    if isinstance(obj, dict):
        return {str(k): strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json_value(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_strict(obj: Any) -> str:
    """Strict JSON text (no ``NaN``): non-finite floats become ``null``; other objects use ``str``."""
    return json.dumps(strict_json_value(obj), indent=2, ensure_ascii=False, default=str, allow_nan=False)


def dump_json(obj: Any, tmp: str | Path) -> None:
    """Write ``obj`` as strict JSON to the temporary file ``tmp`` (see :func:`dump_table`)."""
    Path(tmp).write_text(dumps_strict(obj) + "\n", encoding="utf-8")


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as strict JSON (see :func:`dumps_strict`), atomically."""
    path = Path(path)
    text = dumps_strict(obj) + "\n"
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing or malformed file is a :class:`~signals.errors.DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def read_user_table(path: str | Path, *, what: str = "table") -> pd.DataFrame:
    """Read a user's CSV or Parquet file as it is: every CSV cell as text (``"00042"`` keeps its
    zeros, an empty cell is ``""``), Parquet columns as stored. ``what`` names the file in errors.

    Raises
    ------
    DataError
        The file does not exist, is neither .csv nor .parquet, or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeError) as exc:
        raise DataError(f"{what}: cannot read {path}: {exc}") from None
    raise DataError(f"{what}: {path} is neither .csv nor .parquet")
