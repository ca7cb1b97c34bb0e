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
from signals.schemas import CUSTOMER_ID, CUTOFF, TOUCHPOINT, TS, normalize_ids, to_utc

__all__ = [
    "add_months",
    "anniversary_cutoffs",
    "as_of_instant",
    "custom_cutoffs",
    "cutoff_grid",
    "cutoffs_from_table",
    "first_seen",
    "history_start",
    "periods_of",
    "scoring_cutoffs",
    "training_cutoffs",
]

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
    start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The training grid: ``n_cutoffs`` calendar cutoffs whose label windows are fully observed.

    ``events`` are canonical (``signals.schemas.check_events``).
    A cutoff ``T`` qualifies when ``T + horizon <= data_end`` (default: the last event's time),
    so no label is censored, and ``T`` is after the first event and after ``start`` (an instant,
    see :func:`history_start`). The latest ``n_cutoffs`` qualifying grid points (not after
    ``end``, if given) are used; each gets every customer first seen before it.

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
    first = events[TS].min() if start is None else max(events[TS].min(), start)
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


# --------------------------------------------------------------------------------------------
# custom cutoffs: a table of (customer, cutoff), or renewal-anchored observation dates


def add_months(utc_ns: np.ndarray, months: np.ndarray, timezone: str) -> np.ndarray:
    """Instants moved by whole calendar ``months`` on the wall clock of ``timezone`` (UTC ns in and out).

    The day of the month is kept, clipped to the month's length (January 31 + 1 month is the last
    day of February); a wall-clock time that does not exist (DST) moves forward.

    >>> start = np.array([pd.Timestamp("2025-01-30T15:00Z").value])  # January 31, midnight in Tokyo
    >>> str(pd.Timestamp(add_months(start, np.array([1]), "Asia/Tokyo")[0], tz="UTC").tz_convert("Asia/Tokyo"))
    '2025-02-28 00:00:00+09:00'
    """
    if len(utc_ns) == 0:
        return np.zeros(0, dtype=np.int64)
    local = pd.Series(np.asarray(utc_ns, dtype=np.int64).view("datetime64[ns]")).dt.tz_localize("UTC")
    wall = local.dt.tz_convert(timezone).dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    month0 = wall.astype("datetime64[M]")
    day = (wall.astype("datetime64[D]") - month0.astype("datetime64[D]")).astype(np.int64)
    time_of_day = wall - wall.astype("datetime64[D]")
    target = month0 + np.asarray(months, dtype=np.int64).astype("timedelta64[M]")
    length = ((target + np.timedelta64(1, "M")).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    out = (target.astype("datetime64[D]") + np.minimum(day, length - 1).astype("timedelta64[D]")).astype("datetime64[ns]")
    out = out + time_of_day
    back = pd.Series(out).dt.tz_localize(timezone, nonexistent="shift_forward", ambiguous=np.zeros(len(out), dtype=bool))
    return back.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view(np.int64)


def _local_midnight(utc_ns: np.ndarray, days_back: int, timezone: str) -> np.ndarray:
    """The first moment (in ``timezone``) of the local date ``days_back`` days before each instant."""
    stamps = pd.Series(np.asarray(utc_ns, dtype=np.int64).view("datetime64[ns]")).dt.tz_localize("UTC")
    dates = stamps.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize() - pd.Timedelta(days=days_back)
    local = dates.dt.tz_localize(timezone, nonexistent="shift_forward", ambiguous=np.zeros(len(dates), dtype=bool))
    return local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view(np.int64)


def anniversary_cutoffs(
    events: pd.DataFrame,
    *,
    anchor_types,
    every_months: int = 1,
    days_before: int = 5,
    timezone: str = "UTC",
    start=None,
    end=None,
) -> pd.DataFrame:
    """Renewal-anchored observation dates: ``days_before`` days before each contract anniversary.

    A customer's **anchor** at a cutoff is its latest contract start known then: the latest event
    of ``anchor_types`` (e.g. the catalog's ``purchase`` types, which
    :func:`signals.contracts_from_subscriptions` puts at the start of each active spell) with
    ``ts < cutoff``. Its anniversaries fall every ``every_months`` calendar months after it (local
    wall clock, the day clipped to the month's length), and each gives the cutoff at local midnight
    ``days_before`` days before the anniversary's date. Only the past decides a cutoff (the anchor
    is known at it), so the rule can run at scoring time too: "will this account renew next week?".
    A customer that has cancelled keeps its dates; the labels decide who is in a task's population.

    Parameters
    ----------
    events : DataFrame
        Canonical events (``customer_id``, ``ts``, ``touchpoint``).
    anchor_types : iterable of str
        The touchpoint types that start a contract.
    every_months : int
        Months between anniversaries (1 for monthly plans, 12 for annual contracts).
    days_before : int
        Days between the cutoff and the anniversary.
    timezone : str
        The business time zone (anniversaries and midnights are local).
    start, end : date or instant, optional
        Keep cutoffs in ``[start, end]`` (dates are their first local moment).

    Returns
    -------
    DataFrame
        ``customer_id`` (str), ``cutoff`` (UTC) and ``anchor`` (the contract start it comes from),
        sorted by cutoff then customer.

    Examples
    --------
    >>> events = pd.DataFrame({"customer_id": ["007", "007", "008"],
    ...                        "ts": pd.to_datetime(["2025-01-10", "2025-04-20", "2025-02-28"], utc=True),
    ...                        "touchpoint": ["purchase", "purchase", "purchase"]})
    >>> rows = anniversary_cutoffs(events, anchor_types=["purchase"], days_before=5, end="2025-06-01")
    >>> rows.assign(cutoff=rows["cutoff"].dt.strftime("%m-%d"), anchor=rows["anchor"].dt.strftime("%m-%d"))
      customer_id cutoff anchor
    0         007  02-05  01-10
    1         007  03-05  01-10
    2         008  03-23  02-28
    3         007  04-05  01-10
    4         008  04-23  02-28
    5         007  05-15  04-20
    6         008  05-23  02-28

    ``007`` signed again on April 20: from then on its dates follow the new contract.
    """
    if every_months < 1:
        raise ValueError(f"every_months must be >= 1, got {every_months}")
    if days_before < 0:
        raise ValueError(f"days_before must be >= 0, got {days_before}")
    anchors = events[events[TOUCHPOINT].astype(str).isin([str(t) for t in anchor_types])]
    ids = anchors[CUSTOMER_ID].astype(str).to_numpy()
    ts = to_utc(anchors[TS], what="events.ts").to_numpy(dtype="datetime64[ns]").view(np.int64)
    order = np.lexsort((ts, ids))
    ids, ts = ids[order], ts[order]
    if len(ts):
        keep = np.ones(len(ts), dtype=bool)
        keep[1:] = (ids[1:] != ids[:-1]) | (ts[1:] != ts[:-1])
        ids, ts = ids[keep], ts[keep]
    nxt = np.full(len(ts), np.iinfo(np.int64).max, dtype=np.int64)
    if len(ts) > 1:
        same = ids[1:] == ids[:-1]
        nxt[:-1][same] = ts[1:][same]
    lo = as_of_instant(start, timezone).value if start is not None else np.iinfo(np.int64).min
    if end is not None:
        hi = as_of_instant(end, timezone).value
    else:
        hi = int(to_utc(events[TS], what="events.ts").max().value) if len(events) else 0
    # enough anniversaries to pass `hi` (a month has at least 28 days), then filter exactly
    span_days = np.maximum(np.minimum(nxt, hi) - ts, 0) / (86_400 * 10**9) + days_before
    count = np.floor(span_days / (28 * every_months)).astype(np.int64) + 1
    row = np.repeat(np.arange(len(ts)), count)
    k = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count) + 1
    anniversary = add_months(ts[row], k * every_months, timezone)
    cutoff = _local_midnight(anniversary, days_before, timezone)
    ok = (cutoff > ts[row]) & (cutoff <= nxt[row]) & (cutoff >= lo) & (cutoff <= hi)
    out = pd.DataFrame({
        CUSTOMER_ID: pd.Series(ids[row[ok]], dtype="str"),
        CUTOFF: pd.Series(cutoff[ok].view("datetime64[ns]")).dt.tz_localize("UTC"),
        "anchor": pd.Series(ts[row[ok]].view("datetime64[ns]")).dt.tz_localize("UTC"),
    })
    out = out.drop_duplicates([CUSTOMER_ID, CUTOFF])
    return out.sort_values([CUTOFF, CUSTOMER_ID], kind="stable").reset_index(drop=True)


def cutoffs_from_table(
    table: pd.DataFrame,
    *,
    timezone: str = "UTC",
    columns: dict[str, str] | None = None,
    what: str = "cutoffs table",
) -> pd.DataFrame:
    """A user's cutoffs table -> validated ``(customer_id, cutoff)`` rows, sorted by cutoff then customer.

    Ids are text (``"00042"`` keeps its zeros); a naive time or a date is a wall-clock time in
    ``timezone`` (a date: its first moment); cutoffs must be whole seconds. ``columns`` maps
    ``customer_id`` and ``cutoff`` to the table's column names.

    Raises
    ------
    ValueError
        A column is missing, or rows have no id, an unreadable or non-whole-second cutoff, or
        repeat a (customer, cutoff) pair; the message counts them and shows the first ones.
    """
    cols = {CUSTOMER_ID: CUSTOMER_ID, CUTOFF: CUTOFF} | dict(columns or {})
    missing = [raw for raw in cols.values() if raw not in table.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} not found; it has {[str(c) for c in table.columns]} "
                         f"(map them with cutoffs.table_columns)")
    raw_ids = table[cols[CUSTOMER_ID]].reset_index(drop=True)
    if pd.api.types.is_float_dtype(raw_ids.dtype) and bool((raw_ids.dropna() % 1 == 0).all()):
        raw_ids = raw_ids.astype("Int64")
    ids = raw_ids.astype("str").str.strip().mask(raw_ids.isna())
    ids = ids.mask(ids == "")
    from types import SimpleNamespace

    from signals.ingest import _NAT, _parse_ts  # one timestamp parser for every input

    parsed = _parse_ts(table[cols[CUTOFF]].reset_index(drop=True),
                       SimpleNamespace(name=what, ts_format=None, timezone=timezone))
    ns = np.where(parsed[1] == 0, parsed[0], _NAT)
    cut = pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC")
    problems = {
        "no customer id": ids.isna().to_numpy(),
        "no readable cutoff (or a local time that does not exist or happened twice)": cut.isna().to_numpy(),
    }
    whole = np.zeros(len(cut), dtype=bool)
    whole[cut.notna().to_numpy()] = (cut.dropna().array.asi8 % 10**9) != 0
    problems["a cutoff that is not a whole second"] = whole
    frame = pd.DataFrame({CUSTOMER_ID: ids, CUTOFF: cut})
    problems["a repeated (customer, cutoff) pair"] = (frame.duplicated(keep="first") & frame.notna().all(axis=1)).to_numpy()
    for problem, mask in problems.items():
        if mask.any():
            rows = np.flatnonzero(mask)
            shown = ", ".join(str(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
            raise ValueError(f"{what}: {len(rows)} row(s) with {problem} (rows {shown}, 0-based); fix the table")
    return frame.sort_values([CUTOFF, CUSTOMER_ID], kind="stable").reset_index(drop=True)


def history_start(events: pd.DataFrame, start, *, timezone: str = "UTC") -> pd.Timestamp:
    """The instant training cutoffs must come after (``cutoffs.start``).

    ``"first_event"``: the first event. ``"all_sources"``: the first moment every source (the
    events' ``source`` column) has an event, so no training cutoff sees a system before its
    export begins (a nine-month activity log next to years of subscriptions). A date: one second
    before its first local moment (a cutoff may fall on it).

    >>> events = pd.DataFrame({"ts": pd.to_datetime(["2023-04-01", "2025-03-01", "2025-03-02"], utc=True),
    ...                        "source": ["billing", "activities", "billing"]})
    >>> history_start(events, "all_sources")
    Timestamp('2025-03-01 00:00:00+0000', tz='UTC')
    """
    if len(events) == 0:
        raise DataError("no events: cannot place the start of the history")
    if start == "first_event":
        return events[TS].min()
    if start == "all_sources":
        if "source" not in events.columns:
            return events[TS].min()
        return events.groupby(events["source"].astype(str), sort=False)[TS].min().max()
    return as_of_instant(start, timezone) - pd.Timedelta(seconds=1)


def custom_cutoffs(
    events: pd.DataFrame,
    cutoffs,
    *,
    catalog,
    timezone: str = "UTC",
    table: pd.DataFrame | None = None,
    start=None,
    end=None,
) -> pd.DataFrame:
    """The custom cutoffs of the ``cutoffs`` settings (kind ``table`` or ``anniversary``), for
    training and scoring alike.

    Parameters
    ----------
    events : DataFrame
        Canonical events (anniversaries are read from them).
    cutoffs : CutoffSettings
        The ``cutoffs`` section (``kind``, ``table_columns``, ``anchor_roles``, ``every_months``,
        ``days_before``).
    catalog : mapping
        The touchpoint catalog (the anchor types are those with a role in ``anchor_roles``).
    table : DataFrame, optional
        Kind ``table``: the table as read (the job reads ``cutoffs.table``).
    start, end : optional
        Keep cutoffs in ``[start, end]`` (dates are their first local moment). Scoring as of a
        date passes it as both: the rows due that day.

    Returns
    -------
    DataFrame
        ``(customer_id, cutoff)`` rows sorted by cutoff, then customer.
    """
    if cutoffs.kind == "table":
        if table is None:
            raise DataError(f"cutoffs.kind is table: read {cutoffs.table} and pass it as table=")
        try:
            rows = cutoffs_from_table(table, timezone=timezone, columns=cutoffs.table_columns,
                                      what=f"cutoffs table {cutoffs.table}")
        except ValueError as exc:
            raise DataError(str(exc)) from None
        if start is not None:
            rows = rows[rows[CUTOFF] >= as_of_instant(start, timezone)]
        if end is not None:
            rows = rows[rows[CUTOFF] <= as_of_instant(end, timezone)]
        return rows.reset_index(drop=True)
    if cutoffs.kind == "anniversary":
        anchors = [name for name, tp in catalog.items() if tp.role in cutoffs.anchor_roles]
        if not anchors:
            raise DataError(f"cutoffs.anchor_roles {list(cutoffs.anchor_roles)}: no catalog type has one of these roles")
        rows = anniversary_cutoffs(events, anchor_types=anchors, every_months=cutoffs.every_months,
                                   days_before=cutoffs.days_before, timezone=timezone, start=start, end=end)
        return rows[[CUSTOMER_ID, CUTOFF]]
    raise ValueError(f"cutoffs.kind {cutoffs.kind!r} has no custom cutoffs")


def periods_of(instants: pd.Series, grid: pd.DatetimeIndex, *, frequency: str, timezone: str) -> tuple[np.ndarray, float]:
    """The calendar period of each instant and the longest period in days.

    Period ``i`` is ``[grid[i], grid[i + 1])`` (the last one runs to the next grid point after the
    grid). Returns the period start of each instant (NaT outside the grid's periods) and the longest
    period's length in days (a month of 31 days, plus an hour across a DST change).
    """
    if len(grid) == 0:
        return np.full(len(instants), np.datetime64("NaT"), dtype="datetime64[ns]"), 0.0
    after = cutoff_grid(grid[-1] + pd.Timedelta(hours=1), (grid[-1] + pd.Timedelta(days=40)).tz_convert(timezone),
                        frequency=frequency, timezone=timezone)
    edges = grid.append(after[:1]).asi8
    ns = pd.DatetimeIndex(instants).asi8
    at = np.searchsorted(edges, ns, side="right") - 1
    inside = (at >= 0) & (at < len(grid))
    out = np.full(len(ns), np.iinfo(np.int64).min, dtype=np.int64)
    out[inside] = edges[at[inside]]
    width = float(np.diff(edges).max()) / 86_400e9
    return out.view("datetime64[ns]"), width
