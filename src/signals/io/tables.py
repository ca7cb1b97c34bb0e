"""Reading and writing the package's own tables (events, customers, features, rejects).

Parquet keeps dtypes (categoricals, UTC timestamps); CSV is for humans and spreadsheets.
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

from signals.io.atomic import atomic_file
from signals.schemas import check_events

__all__ = ["dumps_strict", "read_events", "read_json", "read_table", "strict_json_value", "write_json", "write_table"]

_SUFFIXES = (".parquet", ".csv")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {list(_SUFFIXES)}")
    return suffix


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` (Parquet or CSV by suffix), creating parent folders; returns the path."""
    path = Path(path)
    suffix = _suffix(path)
    with atomic_file(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def read_table(path: str | Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a Parquet or CSV table written by :func:`write_table`; a missing file is a clear error."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    if suffix == ".parquet":
        return pd.read_parquet(path, columns=list(columns) if columns is not None else None)
    return pd.read_csv(path, usecols=list(columns) if columns is not None else None)


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


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as strict JSON (see :func:`dumps_strict`), atomically."""
    path = Path(path)
    text = dumps_strict(obj) + "\n"
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    return json.loads(path.read_text(encoding="utf-8"))
