"""Subscriptions -> contract events: purchases, renewals and cancellations.

A SaaS CRM rarely logs "renewed" or "cancelled" as activities: it keeps a **subscriptions** table,
one row per contract line (customer, start, end, product, MRR or amount, often a status and a
cancellation date). The contractual churn label needs contract *events* (a cancellation in the
horizon for an active subscriber), so :func:`contracts_from_subscriptions` turns the rows into
them. It is pure (no I/O); ingestion calls it for sources of kind ``subscriptions``.

The rules
---------
1. **A row is an active period** ``[start, end)``. A missing end (or one in year 2200 or later,
   such as ``9999-12-31``) is open: still active. With ``end_inclusive``, an end date is the last
   active day, so the period runs to the end of that day. A ``cancelled_at`` before the end is a
   **mid-term cancellation**: the period stops there. A naive time is a wall-clock time in
   ``timezone``; a date is its first moment there.
2. **Periods of one customer merge into active spells** when a period starts at most ``gap_days``
   after the end of the spell so far (any product): consecutive terms, upgrades and product
   switches (touching or overlapping) and short lapses (up to the gap) continue the relationship.
3. **Events**, with the amounts of the rows they come from in ``value`` (summed when several rows
   start, renew or end at one instant):

   * ``purchase`` at the start of each spell (a new customer, or a win-back after a lapse longer
     than the gap);
   * ``renewal`` at each later row start inside the spell (the next term, an upgrade, a product
     switch, a return within the gap), and, with ``term_months``, at each term anniversary of an
     **open-ended** row (no end date: an auto-renewing plan, e.g. monthly, renews every term until it
     is cancelled). A row with an end date is one fixed term: its renewal is the next row;
   * ``cancellation`` at the **end of the spell's last active period**: the churn date is when
     the service stopped, not when notice was given. Its value is the amount of the rows that
     ended there (what was lost). A spell still running at ``as_of`` (open, or ending after it)
     has no cancellation yet.

   No event is after ``as_of``.
4. **Bad rows are rejects with a reason** (first failing check wins, in this order); every row
   read is either accepted or rejected: ``read == accepted + rejected``.

==========================  ========================================================================
reason                      the row is rejected when
==========================  ========================================================================
``missing_customer_id``     the customer id is null or blank
``placeholder_customer_id``  the id is a placeholder for "no id" (``NULL``, ``#N/A``, ...: as in ingestion)
``unparseable_start``       start is null, blank, or not a time (``ts_format`` or ISO 8601)
``placeholder_start``       start falls on a placeholder date (``1900-01-01``, ...: as in ingestion)
``unparseable_end``         end is not a time (blank or a placeholder date means open-ended)
``unparseable_cancelled_at``  cancelled_at is not a time (blank means not cancelled)
``nonexistent_local_time``  a naive start, end or cancelled_at falls in a DST gap of ``timezone``
``ambiguous_local_time``    ... or in a DST overlap (it happened twice)
``unparseable_value``       the amount is not a finite decimal number
``value_out_of_range``      the amount is above 10^15
``negative_value``          the amount is below zero
``unknown_status``          the status is not listed in ``statuses`` (a typo must not read as active)
``ended_without_date``      the status says the subscription ended, but it has no end nor cancelled_at
``end_not_after_start``     end is at or before start (an empty or reversed period)
``cancelled_not_after_start``  cancelled_at is at or before start
``future_start``            start is after ``as_of`` (not known yet at ``as_of``)
==========================  ========================================================================

Example
-------
Four accounts (ids stay text, zeros included): ``00001`` upgrades from Basic to Pro in April,
lapses nine days in July and comes back (one spell with a 14-day gap); ``00002`` signs a year
and cancels mid-term in August; ``00003`` leaves in March and returns in June (two spells);
``00004``'s start is not a date.

>>> subs = pd.DataFrame({
...     "customer_id": ["00001", "00001", "00001", "00002", "00003", "00003", "00004"],
...     "start": ["2025-01-01", "2025-04-01", "2025-07-10", "2025-02-01", "2025-01-15", "2025-06-01", "soon"],
...     "end": ["2025-04-01", "2025-07-01", None, "2026-02-01", "2025-03-15", "2025-09-01", None],
...     "product": ["Basic", "Pro", "Pro", "Pro", "Basic", "Basic", "Basic"],
...     "value": [100, 250, 250, 500, 80, 80, 100],
...     "cancelled_at": [None, None, None, "2025-08-15", None, None, None],
... })
>>> out = contracts_from_subscriptions(subs, gap_days=14, as_of="2025-12-01")
>>> out.events[["customer_id", "ts", "touchpoint", "value"]]  # doctest: +NORMALIZE_WHITESPACE
  customer_id                        ts    touchpoint  value
0       00001 2025-01-01 00:00:00+00:00      purchase  100.0
1       00001 2025-04-01 00:00:00+00:00       renewal  250.0
2       00001 2025-07-10 00:00:00+00:00       renewal  250.0
3       00002 2025-02-01 00:00:00+00:00      purchase  500.0
4       00002 2025-08-15 00:00:00+00:00  cancellation  500.0
5       00003 2025-01-15 00:00:00+00:00      purchase   80.0
6       00003 2025-03-15 00:00:00+00:00  cancellation   80.0
7       00003 2025-06-01 00:00:00+00:00      purchase   80.0
8       00003 2025-09-01 00:00:00+00:00  cancellation   80.0
>>> out.rejects[["row", "reason"]]
   row             reason
0    6  unparseable_start
>>> out.rejects.loc[0, "detail"]
"start 'soon' is not parseable as ISO 8601, or is outside 1678-2261"
>>> out.read, out.accepted, out.rejected
(7, 6, 1)
>>> out.periods[["customer_id", "end", "rows", "products", "cancelled"]]  # doctest: +NORMALIZE_WHITESPACE
  customer_id                       end  rows    products  cancelled
0       00001                       NaT     3  Basic, Pro      False
1       00002 2025-08-15 00:00:00+00:00     1         Pro       True
2       00003 2025-03-15 00:00:00+00:00     1       Basic       True
3       00003 2025-09-01 00:00:00+00:00     1       Basic       True

With ``term_months=1`` the open-ended Pro subscription of ``00001`` would also renew on the 10th of
every month from August to November.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pandas as pd

from signals.cutoffs import add_months
from signals.ingest import (
    _AMBIGUOUS,
    _BAD_TS,
    _BAD_VALUE,
    _NONEXISTENT,
    _OK,
    _OUT_OF_RANGE,
    _as_text,
    _parse_ts,
    _parse_value,
    _placeholder_dates,
    resolve_as_of,
)
from signals.schemas import (
    CUSTOMER_ID,
    EVENT_COLUMNS,
    NS_PER_DAY,
    SOURCE,
    TOUCHPOINT,
    TS,
    VALUE,
    normalize_ids,
)
from signals.settings import PLACEHOLDER_DATES, PLACEHOLDER_IDS, SUBSCRIPTION_COLUMNS

__all__ = [
    "DEFAULT_STATUSES",
    "REASONS",
    "SUBSCRIPTION_COLUMNS",
    "SubscriptionContracts",
    "contracts_from_subscriptions",
]

REQUIRED_COLUMNS = ("customer_id", "start")
#: The contract event kinds, in the order they are listed (and sorted at one instant).
EVENT_KINDS = ("purchase", "renewal", "cancellation")

#: Reject reason codes, in the order the checks run (the first failing check names the reason).
REASONS = (
    "missing_customer_id",
    "placeholder_customer_id",
    "unparseable_start",
    "placeholder_start",
    "unparseable_end",
    "unparseable_cancelled_at",
    "nonexistent_local_time",
    "ambiguous_local_time",
    "unparseable_value",
    "value_out_of_range",
    "negative_value",
    "unknown_status",
    "ended_without_date",
    "end_not_after_start",
    "cancelled_not_after_start",
    "future_start",
)
_CODE = {reason: i + 1 for i, reason in enumerate(REASONS)}

#: Status words understood without configuration (compared after stripping, in lower case).
DEFAULT_STATUSES: dict[str, Literal["active", "ended"]] = {
    **dict.fromkeys(("active", "trialing", "trial", "past_due", "unpaid", "paused", "renewed", "live"), "active"),
    **dict.fromkeys(("cancelled", "canceled", "churned", "ended", "expired", "terminated", "inactive",
                     "incomplete_expired", "closed", "lost"), "ended"),
}

_OPEN = np.iinfo(np.int64).max  # an open end: active beyond any instant
_NAT = np.iinfo(np.int64).min
_OPEN_TEXT_RE = re.compile(r"^\s*(?:2[2-9]\d\d|[3-9]\d\d\d)\D")  # a year of 2200 or later: "9999-12-31"


@dataclass(frozen=True)
class SubscriptionContracts:
    """What :func:`contracts_from_subscriptions` produced.

    Attributes
    ----------
    events : DataFrame
        Canonical contract events (:mod:`signals.schemas`: ``customer_id, ts, touchpoint, value,
        source``), sorted by ``(customer_id, ts, touchpoint)``.
    periods : DataFrame
        One row per active spell: ``customer_id``, ``start``, ``end`` (NaT while still active at
        ``as_of``), ``rows`` (subscription rows merged), ``products`` (distinct, in order of first
        appearance, comma-separated), ``value`` (amount of the rows that started it), ``cancelled``.
    rejects : DataFrame
        ``row`` (0-based position in the input), ``reason`` (a code of :data:`REASONS`) and
        ``detail`` (plain words), in row order.
    read : int
        Rows given; ``read == accepted + rejected``.
    accepted_rows : ndarray
        Positions of the accepted rows in the input.
    event_rows : ndarray
        Per event, the first input row it comes from (the row that starts, renews or ends).
    """

    events: pd.DataFrame
    periods: pd.DataFrame
    rejects: pd.DataFrame
    read: int
    accepted_rows: np.ndarray
    event_rows: np.ndarray

    @property
    def accepted(self) -> int:
        return len(self.accepted_rows)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def rejected_by_reason(self) -> dict[str, int]:
        """Non-zero reject counts by reason code, most frequent first."""
        counts = self.rejects["reason"].value_counts()
        return {str(reason): int(n) for reason, n in counts.items()}


# --------------------------------------------------------------------------------------------
# parsing


def _instants(col: pd.Series | None, n: int, *, timezone: str, ts_format: str | None, open_is_text: bool,
              placeholder_dates) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A date/time column -> (UTC ns with _NAT where missing, status, missing mask, placeholder mask).

    Uses ingestion's parser (the same rules for naive, aware and mixed text). With ``open_is_text``,
    a year of 2200 or later (``9999-12-31``) reads as missing: an open end. A placeholder date
    (``1900-01-01``) is flagged; the caller decides what it means.
    """
    if col is None:
        none = np.zeros(n, dtype=bool)
        return np.full(n, _NAT, dtype=np.int64), np.zeros(n, dtype=np.int8), ~none, none
    col = col.reset_index(drop=True)
    missing = col.isna().to_numpy(copy=True)
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        text = _as_text(col)
        missing = text.isna().to_numpy(copy=True)
        if open_is_text:
            missing |= text.str.match(_OPEN_TEXT_RE.pattern).fillna(False).to_numpy(dtype=bool)
        col = text.mask(missing)
    ns, status, wall = _parse_ts(col, SimpleNamespace(name="subscriptions", ts_format=ts_format, timezone=timezone))
    placeholder = _placeholder_dates(ns, wall, (status != _BAD_TS) & ~missing, tuple(placeholder_dates))
    status = np.where(missing, _OK, status).astype(np.int8)
    ns = np.where(missing, _NAT, ns)
    return ns, status, missing, placeholder


def _statuses(col: pd.Series | None, n: int, statuses: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Status column -> (0 none / 1 active / 2 ended, unknown mask)."""
    kind = np.zeros(n, dtype=np.int8)
    if col is None:
        return kind, np.zeros(n, dtype=bool)
    lookup = {str(k).strip().lower(): v for k, v in {**DEFAULT_STATUSES, **statuses}.items()}
    bad_targets = sorted({v for v in lookup.values() if v not in ("active", "ended")})
    if bad_targets:
        raise ValueError(f"statuses must map to 'active' or 'ended', got {bad_targets}")
    text = _as_text(col)
    codes, uniques = pd.factorize(text.str.lower())
    table = np.array([{"active": 1, "ended": 2}.get(lookup.get(u, ""), -1) for u in uniques] + [0], dtype=np.int8)
    kind = table[codes]
    unknown = kind < 0
    kind[unknown] = 0
    return kind, unknown


def _shown(col: pd.Series | None, rows: np.ndarray) -> pd.Series:
    if col is None:
        return pd.Series([""] * len(rows), dtype="str")
    sub = _as_text(col.reset_index(drop=True).iloc[rows]).reset_index(drop=True)
    return ("'" + sub.str.slice(0, 80) + "'").fillna("''").astype("str")


def _iso(ns: np.ndarray) -> pd.Series:
    return pd.Series(ns.view("datetime64[ns]")).dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("str")


# --------------------------------------------------------------------------------------------
# anniversaries


def _anniversaries(start: np.ndarray, stop: np.ndarray, term_months: int, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Term anniversaries ``start + k * term`` (k >= 1) strictly before ``stop``: (row index, instant)."""
    span_days = np.maximum(stop - start, 0) / NS_PER_DAY
    bound = np.floor(span_days / (28 * term_months)).astype(np.int64) + 1  # a month has at least 28 days
    bound[stop <= start] = 0
    rows = np.repeat(np.arange(len(start)), bound)
    k = np.arange(len(rows)) - np.repeat(np.cumsum(bound) - bound, bound) + 1
    when = add_months(start[rows], k * term_months, timezone)
    keep = when < stop[rows]
    return rows[keep], when[keep]


# --------------------------------------------------------------------------------------------
# the function


def contracts_from_subscriptions(
    subscriptions: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    gap_days: float = 0,
    term_months: int | None = None,
    end_inclusive: bool = False,
    as_of: dt.datetime | pd.Timestamp | str | None = None,
    timezone: str = "UTC",
    ts_format: str | None = None,
    statuses: Mapping[str, Literal["active", "ended"]] | None = None,
    touchpoints: Mapping[str, str] | None = None,
    source: str = "subscriptions",
    placeholder_ids=PLACEHOLDER_IDS,
    placeholder_dates=PLACEHOLDER_DATES,
) -> SubscriptionContracts:
    """Turn subscription rows into contract events (see the module docstring for the rules).

    Parameters
    ----------
    subscriptions : DataFrame
        One row per subscription (contract line), as read (text from CSV, typed from Parquet / SQL).
    columns : mapping, optional
        Canonical column -> column of ``subscriptions`` (canonical names: :data:`SUBSCRIPTION_COLUMNS`;
        ``customer_id`` and ``start`` are required). Default: the canonical names that are present.
    gap_days : float
        A period starting at most this many days after the end of the spell so far continues it.
        0 merges touching and overlapping periods only.
    term_months : int, optional
        Term of open-ended (auto-renewing) rows in months: such a row renews at each anniversary of
        its start until it stops. None: renewals only where a new row starts.
    end_inclusive : bool
        End dates are the last active day (``2025-03-31`` for a term ending with March).
    as_of : datetime, optional
        The instant the table describes: rows starting later are rejected, no event is after it,
        a spell ending after it is still active. Naive = wall-clock in ``timezone``; None = now.
    timezone : str
        Time zone of naive times and dates, and of term anniversaries.
    ts_format : str, optional
        strftime format of the date columns (ISO 8601 always works too).
    statuses : mapping, optional
        Extra status words -> ``"active"`` or ``"ended"`` (added to :data:`DEFAULT_STATUSES`).
    touchpoints : mapping, optional
        Event kind (``purchase``, ``renewal``, ``cancellation``) -> catalog type name; default the
        kind's own name.
    source : str
        The ``source`` of the events.
    placeholder_ids, placeholder_dates : iterables
        Ids that mean "no id" (rejected, any letter case) and dates that mean "no date" (a start on
        one is rejected; an end or cancelled_at on one is blank), as in ingestion.

    Returns
    -------
    SubscriptionContracts
        ``events``, ``periods``, ``rejects`` and the row counts.

    Raises
    ------
    ValueError
        A required column is not mapped or missing, or a parameter is out of range.
    """
    if gap_days < 0:
        raise ValueError(f"gap_days must be >= 0, got {gap_days}")
    if term_months is not None and term_months < 1:
        raise ValueError(f"term_months must be a whole number of months >= 1, got {term_months}")
    cols = _column_map(subscriptions, columns)
    kinds = {kind: kind for kind in EVENT_KINDS} | dict(touchpoints or {})
    unknown_kinds = sorted(set(kinds) - set(EVENT_KINDS))
    if unknown_kinds:
        raise ValueError(f"touchpoints keys must be event kinds {list(EVENT_KINDS)}, got {unknown_kinds}")
    as_of_ns = resolve_as_of(as_of, timezone).value
    n = len(subscriptions)
    raw = subscriptions.reset_index(drop=True)

    def column(name: str) -> pd.Series | None:
        return raw[cols[name]] if name in cols else None

    customer = normalize_ids(raw[cols["customer_id"]].reset_index(drop=True))
    placeholder_id = customer.str.lower().isin({str(p).strip().lower() for p in placeholder_ids}).to_numpy()
    dates = {"timezone": timezone, "ts_format": ts_format, "placeholder_dates": placeholder_dates}
    start, start_status, start_missing, start_placeholder = _instants(column("start"), n, open_is_text=False, **dates)
    end, end_status, end_open, end_placeholder = _instants(column("end"), n, open_is_text=True, **dates)
    cancel, cancel_status, cancel_missing, cancel_placeholder = _instants(column("cancelled_at"), n, open_is_text=True,
                                                                          **dates)
    end_open |= end_placeholder
    cancel_missing |= cancel_placeholder
    values, value_status = _parse_value(column("value"), n)
    status_kind, status_unknown = _statuses(column("status"), n, statuses or {})

    reason = np.zeros(n, dtype=np.int8)

    def flag(mask: np.ndarray, name: str) -> None:
        reason[(reason == 0) & mask] = _CODE[name]

    flag(customer.isna().to_numpy(), "missing_customer_id")
    flag(placeholder_id, "placeholder_customer_id")
    flag(start_missing | (start_status == _BAD_TS), "unparseable_start")
    flag(start_placeholder, "placeholder_start")
    flag(~end_open & (end_status == _BAD_TS), "unparseable_end")
    flag(~cancel_missing & (cancel_status == _BAD_TS), "unparseable_cancelled_at")
    for status, name in ((_NONEXISTENT, "nonexistent_local_time"), (_AMBIGUOUS, "ambiguous_local_time")):
        flag((start_status == status) | (~end_open & (end_status == status)) | (~cancel_missing & (cancel_status == status)),
             name)
    flag(value_status == _BAD_VALUE, "unparseable_value")
    flag(value_status == _OUT_OF_RANGE, "value_out_of_range")
    flag(np.nan_to_num(values) < 0, "negative_value")
    flag(status_unknown, "unknown_status")
    flag((status_kind == 2) & end_open & cancel_missing, "ended_without_date")
    end = np.where(end_open, _OPEN, end)
    if end_inclusive:
        end = np.where(end_open, _OPEN, end + NS_PER_DAY)
    flag(~end_open & (end <= start), "end_not_after_start")
    flag(~cancel_missing & (cancel <= start), "cancelled_not_after_start")
    flag(start > as_of_ns, "future_start")

    good = reason == 0
    idx = np.flatnonzero(~good)
    rejects = pd.DataFrame({
        "row": idx.astype(np.int64),
        "reason": pd.Series(np.asarray(REASONS, dtype=object)[reason[idx] - 1], dtype="str"),
        "detail": _details(reason, idx, raw=raw, cols=cols, start=start, as_of_ns=as_of_ns, ts_format=ts_format,
                           timezone=timezone),
    })
    stop = np.where(cancel_missing, end, np.minimum(end, cancel))  # mid-term cancellation ends the period early
    products = column("product")
    product_text = _as_text(products).fillna("").to_numpy(dtype=object) if products is not None else None
    events, periods, event_rows = _events(
        customer[good].to_numpy(dtype=object).astype(str), start[good], stop[good], values[good],
        product_text[good] if product_text is not None else None, end_open[good],
        gap_ns=int(round(gap_days * 86_400)) * 10**9, term_months=term_months, as_of_ns=as_of_ns,
        timezone=timezone, kinds=kinds, source=source, row_id=np.flatnonzero(good),
    )
    return SubscriptionContracts(events=events, periods=periods, rejects=rejects, read=n,
                                 accepted_rows=np.flatnonzero(good), event_rows=event_rows)


def _column_map(frame: pd.DataFrame, columns: Mapping[str, str] | None) -> dict[str, str]:
    if columns is None:
        cols = {c: c for c in SUBSCRIPTION_COLUMNS if c in frame.columns}
    else:
        unknown = sorted(set(columns) - set(SUBSCRIPTION_COLUMNS))
        if unknown:
            raise ValueError(f"unknown subscription column(s) {unknown}; canonical names: {list(SUBSCRIPTION_COLUMNS)}")
        cols = dict(columns)
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"subscriptions need the column(s) {missing} (map them in columns); "
                         f"the table has {[str(c) for c in frame.columns]}")
    absent = {canon: raw for canon, raw in cols.items() if raw not in frame.columns}
    if absent:
        raise ValueError(f"mapped subscription column(s) not found: {absent}; the table has "
                         f"{[str(c) for c in frame.columns]}")
    return cols


def _details(reason: np.ndarray, idx: np.ndarray, *, raw: pd.DataFrame, cols: dict[str, str], start: np.ndarray,
             as_of_ns: int, ts_format: str | None, timezone: str) -> pd.Series:
    """Plain-words detail for the rejected rows ``idx``."""
    out = pd.Series([""] * len(idx), dtype="str")
    codes = reason[idx]
    fmt = f"ts_format {ts_format!r} nor as ISO 8601" if ts_format else "ISO 8601"

    def col(name: str) -> pd.Series | None:
        return raw[cols[name]] if name in cols else None

    def dates(rows: np.ndarray) -> pd.Series:
        parts = [f"{name} " + _shown(col(name), rows) for name in ("start", "end", "cancelled_at") if name in cols]
        text = parts[0]
        for part in parts[1:]:
            text = text + ", " + part
        return text

    for code in np.unique(codes):
        where = np.flatnonzero(codes == code)
        rows = idx[where]
        name = REASONS[code - 1]
        if name == "missing_customer_id":
            text = pd.Series(["customer_id is missing or blank"] * len(rows), dtype="str")
        elif name == "placeholder_customer_id":
            text = "customer_id " + _shown(col("customer_id"), rows) + " is a placeholder for 'no id'"
        elif name == "placeholder_start":
            text = "start " + _shown(col("start"), rows) + " is a placeholder date for 'no date'"
        elif name == "value_out_of_range":
            text = "value " + _shown(col("value"), rows) + " is above 10^15"
        elif name.startswith("unparseable_") and name != "unparseable_value":
            field = name.removeprefix("unparseable_")
            shown = _shown(col(field), rows)
            text = (f"{field} " + shown + f" is not parseable as {fmt}, or is outside 1678-2261").where(
                shown != "''", f"{field} is missing or blank")
        elif name == "nonexistent_local_time":
            text = dates(rows) + f": a local time does not exist in {timezone} (clocks jump forward: DST gap)"
        elif name == "ambiguous_local_time":
            text = dates(rows) + f": a local time happened twice in {timezone} (DST overlap); give it a UTC offset"
        elif name == "unparseable_value":
            text = "value " + _shown(col("value"), rows) + " is not a finite decimal number"
        elif name == "negative_value":
            text = "value " + _shown(col("value"), rows) + " is negative"
        elif name == "unknown_status":
            text = ("status " + _shown(col("status"), rows)
                    + " is not a known status; map it to active or ended (statuses)")
        elif name == "ended_without_date":
            text = "status " + _shown(col("status"), rows) + " says it ended, but there is no end nor cancelled_at"
        elif name == "end_not_after_start":
            text = dates(rows) + ": the period ends at or before it starts"
        elif name == "cancelled_not_after_start":
            text = dates(rows) + ": cancelled at or before it starts"
        else:  # future_start
            text = "start " + _iso(start[rows]) + " is after as_of " + _iso(np.array([as_of_ns]))[0]
        out.iloc[where] = text.to_numpy()
    return out


def _events(customer: np.ndarray, start: np.ndarray, stop: np.ndarray, value: np.ndarray,
            product: np.ndarray | None, open_end: np.ndarray, *, gap_ns: int, term_months: int | None, as_of_ns: int, timezone: str,
            kinds: Mapping[str, str], source: str, row_id: np.ndarray
            ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Spells, their events and each event's first input row, from the accepted rows
    (``stop`` = end of the active period, _OPEN if open)."""
    codes, ids = pd.factorize(pd.Series(customer, dtype="str"), sort=True)
    order = np.lexsort((stop, start, codes))
    cust, start, stop, value, row_id = codes[order], start[order], stop[order], value[order], row_id[order]
    n = len(order)
    # a period joins the spell when it starts at most gap_ns after everything before it has ended
    reach = np.where(stop >= _OPEN - gap_ns, _OPEN, stop + gap_ns)
    reach_before = pd.Series(reach).groupby(cust).cummax().shift(1).to_numpy()
    first = np.ones(n, dtype=bool)
    first[1:] = cust[1:] != cust[:-1]
    new_spell = first.copy()
    new_spell[~first] = start[~first] > reach_before[~first]
    spell = np.cumsum(new_spell) - 1
    n_spells = int(spell[-1]) + 1 if n else 0
    heads = np.flatnonzero(new_spell)
    spell_start = start[heads]
    spell_stop = np.full(n_spells, _NAT, dtype=np.int64)
    np.maximum.at(spell_stop, spell, stop)
    spell_cust = cust[heads]

    # purchases and renewals at row starts: one event per (spell, start instant)
    kind = np.where(start == spell_start[spell], 0, 1)
    parts = [(spell, start, kind, value, row_id)]
    if term_months is not None:
        limit = np.minimum(stop, as_of_ns + 1)  # anniversaries strictly before the stop, at or before as_of
        limit[~open_end[order]] = start[~open_end[order]]  # a row with an end date is one term
        rows, when = _anniversaries(start, limit, term_months, timezone)
        parts.append((spell[rows], when, np.ones(len(rows), dtype=np.int64), value[rows], row_id[rows]))
    # cancellations at the end of each spell over by as_of: the rows that ended there
    ended = (spell_stop != _OPEN) & (spell_stop <= as_of_ns)
    at_end = ended[spell] & (stop == spell_stop[spell])
    parts.append((spell[at_end], stop[at_end], np.full(int(at_end.sum()), 2), value[at_end], row_id[at_end]))
    e_spell, e_ts, e_kind, e_value, e_row = (np.concatenate(p) for p in zip(*parts, strict=True))
    # one event per (spell, instant, kind): a row start and an anniversary at one instant are one renewal
    order_e = np.lexsort((e_kind, e_ts, e_spell))
    e_spell, e_ts, e_kind, e_value, e_row = (a[order_e] for a in (e_spell, e_ts, e_kind, e_value, e_row))
    first_e = np.ones(len(e_ts), dtype=bool)
    first_e[1:] = (e_spell[1:] != e_spell[:-1]) | (e_ts[1:] != e_ts[:-1]) | (e_kind[1:] != e_kind[:-1])
    heads_e = np.flatnonzero(first_e)
    if len(heads_e):
        e_value = np.add.reduceat(e_value.astype(np.float64), heads_e)
        e_row = np.minimum.reduceat(e_row, heads_e)
    e_spell, e_ts, e_kind = e_spell[heads_e], e_ts[heads_e], e_kind[heads_e]
    # spells are in (customer, start) order and do not overlap: events come out sorted by customer, then time
    type_names = [kinds[k] for k in EVENT_KINDS]
    categories = list(dict.fromkeys(type_names))
    type_code = np.array([categories.index(t) for t in type_names], dtype=np.int8)
    events = pd.DataFrame({
        CUSTOMER_ID: pd.Categorical.from_codes(spell_cust[e_spell], categories=pd.Index(ids, dtype="str")),
        TS: pd.Series(e_ts.view("datetime64[ns]")).dt.tz_localize("UTC"),
        TOUCHPOINT: pd.Categorical.from_codes(type_code[e_kind], categories=categories),
        VALUE: e_value + 0.0,
        SOURCE: pd.Categorical.from_codes(np.zeros(len(e_ts), dtype=np.int8), categories=[source]),
    }, columns=list(EVENT_COLUMNS))
    event_rows = e_row.astype(np.int64)

    start_value = np.zeros(n_spells)
    np.add.at(start_value, spell[kind == 0], value[kind == 0])
    if product is not None:
        prod = product[order]
        products = pd.DataFrame({"spell": spell, "product": prod})
        products = products[products["product"] != ""].drop_duplicates()
        listed = products.groupby("spell", sort=True)["product"].agg(", ".join).reindex(range(n_spells), fill_value="")
    else:
        listed = pd.Series([""] * n_spells)
    periods = pd.DataFrame({
        CUSTOMER_ID: pd.Series(ids[spell_cust], dtype="str") if n_spells else pd.Series([], dtype="str"),
        "start": pd.Series(spell_start.view("datetime64[ns]")).dt.tz_localize("UTC"),
        "end": pd.Series(np.where(ended, spell_stop, _NAT).view("datetime64[ns]")).dt.tz_localize("UTC"),
        "rows": np.bincount(spell, minlength=n_spells).astype(np.int64),
        "products": listed.to_numpy(dtype=object).astype(str),
        "value": start_value,
        "cancelled": ended,
    })
    return events, periods, event_rows
