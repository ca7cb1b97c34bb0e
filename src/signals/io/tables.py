"""Reading and writing the package's own tables (events, customers, features, rejects).

Parquet keeps dtypes (categoricals, UTC timestamps); CSV is for humans and spreadsheets.
The format follows the file suffix. Parent folders are created on write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from signals.schemas import check_events

__all__ = ["read_events", "read_json", "read_table", "write_json", "write_table"]

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
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
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


def write_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    return json.loads(path.read_text(encoding="utf-8"))
