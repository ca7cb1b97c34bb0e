"""Column names and the data contracts between stages.

The canonical **events** table (one row per contact) is the only input every stage needs:

=============  ==========================  =================================================
column         dtype                       meaning
=============  ==========================  =================================================
customer_id    category (of str)           the CRM's account / customer id
ts             datetime64[ns, UTC]         when the contact happened
touchpoint     category (catalog names)    canonical type from the catalog
value          float64 (0 if none)         amount, for purchases and renewals
source         category (of str)           the system it came from
=============  ==========================  =================================================

**Cutoffs** are ``(customer_id, cutoff)`` rows; a cutoff is an instant (UTC, whole seconds).
Features at a cutoff only see events with ``ts < cutoff``.

The ``check_*`` functions validate at the edges (ingestion, jobs, public entry points) and return
a normalised copy; code inside the package trusts the contracts afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = [
    "CUSTOMER_ID",
    "CUTOFF",
    "EVENT_COLUMNS",
    "SOURCE",
    "TOUCHPOINT",
    "TS",
    "VALUE",
    "check_cutoffs",
    "check_events",
    "to_utc",
]

CUSTOMER_ID = "customer_id"
TS = "ts"
TOUCHPOINT = "touchpoint"
VALUE = "value"
SOURCE = "source"
CUTOFF = "cutoff"
EVENT_COLUMNS = (CUSTOMER_ID, TS, TOUCHPOINT, VALUE, SOURCE)
CUTOFF_COLUMNS = (CUSTOMER_ID, CUTOFF)

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND


def to_utc(values: pd.Series | pd.DatetimeIndex | Iterable, *, what: str = "timestamps") -> pd.Series:
    """Convert timestamps to ``datetime64[ns, UTC]``.

    Time-zone aware values are converted to UTC; naive values are taken to be UTC already.
    Unparseable values raise ``ValueError`` naming ``what``.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        out = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        out = series.dt.tz_localize("UTC")
    else:
        try:
            out = pd.to_datetime(series, utc=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{what}: cannot parse as timestamps ({exc})") from exc
    return out.astype("datetime64[ns, UTC]")


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; it has {list(df.columns)}")


def check_events(events: pd.DataFrame, touchpoints: Iterable[str] | None = None) -> pd.DataFrame:
    """Validate and normalise a canonical events table.

    Returns a copy with the canonical dtypes (``source`` and ``value`` are added when absent, with
    ``"unknown"`` and 0). ``touchpoint`` becomes a categorical whose categories are ``touchpoints``
    (the catalog order) when given.

    Raises
    ------
    ValueError
        A required column is missing, a customer id or timestamp is null, a value is negative or
        not finite, or a touchpoint is not in ``touchpoints``.
    """
    _require_columns(events, (CUSTOMER_ID, TS, TOUCHPOINT), "events")
    out = pd.DataFrame(index=pd.RangeIndex(len(events)))
    cid = events[CUSTOMER_ID].reset_index(drop=True)
    if cid.isna().any():
        raise ValueError(f"events: {int(cid.isna().sum())} row(s) have no customer_id")
    out[CUSTOMER_ID] = cid if isinstance(cid.dtype, pd.CategoricalDtype) else cid.astype(str).astype("category")
    ts = to_utc(events[TS].reset_index(drop=True), what="events.ts")
    if ts.isna().any():
        raise ValueError(f"events: {int(ts.isna().sum())} row(s) have no timestamp")
    out[TS] = ts
    tp = events[TOUCHPOINT].reset_index(drop=True)
    if touchpoints is not None:
        allowed = list(touchpoints)
        if isinstance(tp.dtype, pd.CategoricalDtype):
            present = tp.cat.categories[np.unique(tp.cat.codes[tp.cat.codes >= 0])].astype(str)
        else:
            present = pd.Index(tp.dropna().astype(str).unique())
        unknown = sorted(set(present) - set(allowed))
        if unknown or tp.isna().any():
            raise ValueError(
                f"events: touchpoint(s) not in the catalog: {unknown or ['<null>']}; catalog: {allowed}"
            )
        if isinstance(tp.dtype, pd.CategoricalDtype) and list(tp.cat.categories) == allowed:
            out[TOUCHPOINT] = tp
        else:
            out[TOUCHPOINT] = pd.Categorical(tp.astype(str), categories=allowed)
    else:
        out[TOUCHPOINT] = tp if isinstance(tp.dtype, pd.CategoricalDtype) else tp.astype(str).astype("category")
    if VALUE in events.columns:
        value = pd.to_numeric(events[VALUE].reset_index(drop=True), errors="raise").astype("float64").fillna(0.0)
        bad = ~np.isfinite(value.to_numpy()) | (value.to_numpy() < 0)
        if bad.any():
            raise ValueError(f"events: {int(bad.sum())} row(s) have a negative or non-finite value")
        out[VALUE] = value
    else:
        out[VALUE] = 0.0
    if SOURCE in events.columns:
        source = events[SOURCE].reset_index(drop=True)
        out[SOURCE] = source if isinstance(source.dtype, pd.CategoricalDtype) else source.astype(str).astype("category")
    else:
        out[SOURCE] = pd.Categorical(["unknown"] * len(events))
    return out


def check_cutoffs(cutoffs: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise a cutoffs table of ``(customer_id, cutoff)`` rows.

    Cutoffs are converted to UTC (naive values are taken as UTC) and must be whole seconds:
    the point-in-time comparisons are exact at that resolution. Extra columns (e.g. labels
    travelling with their cutoffs) are kept. Duplicate ``(customer_id, cutoff)`` pairs are an error.
    """
    _require_columns(cutoffs, CUTOFF_COLUMNS, "cutoffs")
    out = cutoffs.reset_index(drop=True).copy()
    if out[CUSTOMER_ID].isna().any():
        raise ValueError("cutoffs: some rows have no customer_id")
    if not isinstance(out[CUSTOMER_ID].dtype, pd.CategoricalDtype):
        out[CUSTOMER_ID] = out[CUSTOMER_ID].astype(str)
    out[CUTOFF] = to_utc(out[CUTOFF], what="cutoffs.cutoff")
    if out[CUTOFF].isna().any():
        raise ValueError("cutoffs: some rows have no cutoff")
    ns = out[CUTOFF].array.asi8
    if (ns % NS_PER_SECOND).any():
        raise ValueError("cutoffs must be whole seconds (floor them, e.g. cutoff.dt.floor('s'))")
    if out.duplicated([CUSTOMER_ID, CUTOFF]).any():
        raise ValueError("cutoffs: duplicate (customer_id, cutoff) rows")
    return out
