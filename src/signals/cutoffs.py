"""Cutoff grids: the instants at which features are taken and labels start.

A cutoff is an instant. Calendar cutoffs ("the 1st of each month", "every Monday") start at
local midnight in the business time zone and are stored as UTC instants, so a DST change moves
the UTC time of the cutoff, never its local meaning. A customer enters the grid at a cutoff
only if it existed before it (first seen strictly before the cutoff).

>>> cutoff_grid("2025-01-01", "2025-03-01", frequency="monthly", timezone="Asia/Tokyo")
DatetimeIndex(['2024-12-31 15:00:00+00:00', '2025-01-31 15:00:00+00:00',
               '2025-02-28 15:00:00+00:00'],
              dtype='datetime64[ns, UTC]', freq=None)
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from signals.errors import ConfigError, DataError
from signals.schemas import CUSTOMER_ID, CUTOFF, TS, normalize_ids, to_utc

__all__ = ["as_of_instant", "cutoff_grid", "first_seen", "scoring_cutoffs", "training_cutoffs"]

_FREQUENCIES = {"monthly": "MS", "weekly": "W-MON"}


def as_of_instant(as_of: str | dt.date | dt.datetime | pd.Timestamp, timezone: str = "UTC") -> pd.Timestamp:
    """The UTC instant of an as-of date or time.

    A date (or a date string) means its first moment in ``timezone``; a naive time is local to
    ``timezone``; an aware time is converted. The result is floored to whole seconds.

    >>> as_of_instant("2025-11-01", "Asia/Tokyo")
    Timestamp('2025-10-31 15:00:00+0000', tz='UTC')

    Raises
    ------
    DataError
        ``as_of`` is not a date or time (``"2025-02-30"``), or names no single instant (DST).
    """
    stamp = _timestamp(as_of, "as_of")
    if stamp.tzinfo is None:
        try:
            stamp = stamp.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:
            raise DataError(f"as_of {as_of} does not name one instant in {timezone} (DST): give it a UTC offset") from exc
    return stamp.tz_convert("UTC").floor("s").as_unit("ns")


def _timestamp(value, what: str) -> pd.Timestamp:
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        raise DataError(f"{what} must be a date or timestamp, got the number {value!r}")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{what} {value!r} is not a date or time (use ISO 8601, e.g. 2025-11-01 or "
                        f"2025-11-01T09:00:00+09:00): {exc}") from None
    if stamp is pd.NaT:
        raise DataError(f"{what} is missing (NaT)")
    return stamp


def _local(value, timezone: str) -> pd.Timestamp:
    """A naive local timestamp: naive input is already local, aware input is converted."""
    stamp = _timestamp(value, "cutoff_grid bound")
    return stamp if stamp.tzinfo is None else stamp.tz_convert(timezone).tz_localize(None)


def cutoff_grid(start, end, *, frequency: str = "monthly", timezone: str = "UTC") -> pd.DatetimeIndex:
    """Calendar cutoffs between ``start`` and ``end`` (inclusive), as UTC instants.

    ``monthly``: local midnight of the 1st of each month; ``weekly``: local midnight of each
    Monday. Naive ``start``/``end`` are local times in ``timezone``.
    """
    if frequency not in _FREQUENCIES:
        raise ConfigError(f"frequency must be one of {sorted(_FREQUENCIES)}, got {frequency!r}")
    start_local, end_local = _local(start, timezone), _local(end, timezone)
    local = pd.date_range(start_local.normalize(), end_local, freq=_FREQUENCIES[frequency])
    local = local[local >= start_local]
    utc = local.tz_localize(timezone, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")
    return utc.as_unit("ns")


def first_seen(events: pd.DataFrame, customers: pd.DataFrame | None = None, *,
               timezone: str | None = None) -> pd.Series:
    """When each customer was first seen: the earlier of its first event and ``customers.first_seen``.

    Naive ``customers.first_seen`` values are wall-clock times in ``timezone`` (refused when it is
    not given, see :func:`signals.schemas.to_utc`). Returns a UTC Series indexed by customer id (str).
    """
    seen = events.groupby(CUSTOMER_ID, observed=True, sort=False)[TS].min()  # no per-row string copies
    seen.index = seen.index.astype(str)
    seen = seen.sort_index()  # a stable customer order, whatever the order of the events
    if customers is not None and "first_seen" in customers.columns:
        ids = normalize_ids(customers[CUSTOMER_ID])
        if ids.isna().any():
            raise DataError(f"customers: {int(ids.isna().sum())} row(s) have no customer_id")
        table = pd.Series(to_utc(customers["first_seen"], what="customers.first_seen", timezone=timezone).to_numpy(),
                          index=ids.to_numpy())
        table = table.dropna()
        seen = pd.concat([seen, table]).groupby(level=0).min()
    seen.index.name = CUSTOMER_ID
    return seen


def _rows(seen: pd.Series, instants: pd.DatetimeIndex, min_history_days: float) -> pd.DataFrame:
    """Every (customer, cutoff) pair where the customer was seen before ``cutoff - min_history``."""
    entry = seen.to_numpy(dtype="datetime64[ns]").view(np.int64) + int(min_history_days * 86_400) * 10**9
    stamps = instants.asi8
    exists = entry[:, None] < stamps[None, :]
    cust_idx, cut_idx = np.nonzero(exists)
    order = np.argsort(cut_idx * len(seen) + cust_idx, kind="stable")  # by cutoff, then customer
    return pd.DataFrame({
        CUSTOMER_ID: seen.index.to_numpy()[cust_idx[order]],
        CUTOFF: instants[cut_idx[order]],
    })


def training_cutoffs(
    events: pd.DataFrame,
    *,
    horizon_days: float,
    n_cutoffs: int,
    frequency: str = "monthly",
    timezone: str = "UTC",
    end: str | dt.date | None = None,
    data_end: str | dt.datetime | pd.Timestamp | None = None,
    customers: pd.DataFrame | None = None,
    min_history_days: float = 0,
) -> pd.DataFrame:
    """The training grid: ``n_cutoffs`` calendar cutoffs whose label windows are fully observed.

    ``events`` are canonical (``signals.schemas.check_events``).
    A cutoff ``T`` qualifies when ``T + horizon <= data_end`` (default: the last event's time),
    so no label is censored. The latest ``n_cutoffs`` qualifying grid points (not after ``end``,
    if given) are used; each gets every customer first seen before it.

    Returns
    -------
    pd.DataFrame
        ``(customer_id, cutoff)`` sorted by cutoff, then customer.
    """
    if len(events) == 0:
        raise DataError("no events: cannot build a training grid")
    if data_end is not None:
        last = to_utc(pd.Series([_timestamp(data_end, "data_end")]), what="data_end", timezone=timezone).iloc[0]
    else:
        last = events[TS].max()
    latest = last - pd.Timedelta(days=horizon_days)
    if end is not None:
        latest = min(latest, as_of_instant(end, timezone))
    first = events[TS].min()
    grid = cutoff_grid(first, latest.tz_convert(timezone), frequency=frequency, timezone=timezone)
    grid = grid[(grid > first) & (grid <= latest)]
    if len(grid) == 0:
        raise DataError(
            f"no {frequency} cutoff fits between the first event ({first}) and {latest} "
            f"(data end {last} minus a {horizon_days}-day label horizon): the history is too short"
        )
    grid = grid[-n_cutoffs:]
    return _rows(first_seen(events, customers, timezone=timezone), grid, min_history_days)


def scoring_cutoffs(
    events: pd.DataFrame,
    as_of,
    *,
    timezone: str = "UTC",
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One cutoff at ``as_of`` (see :func:`as_of_instant`) for every customer first seen before it.

    Raises
    ------
    DataError
        No customer was seen before ``as_of`` (it lies before the data starts).
    """
    instant = as_of_instant(as_of, timezone)
    seen = first_seen(events, customers, timezone=timezone)
    rows = _rows(seen, pd.DatetimeIndex([instant]), 0)
    if len(rows) == 0:
        start = f"the first customer appears at {seen.min():%Y-%m-%d %H:%M:%S} UTC" if len(seen) else "there are no events"
        raise DataError(f"as_of {as_of} ({instant:%Y-%m-%d %H:%M:%S} UTC) is before any data: {start}; "
                        "pick a later as-of date")
    return rows
