"""The point-in-time rule, in one place.

A feature at a cutoff ``T`` sees only events with ``ts < T``; a window of length ``w`` is
``[T - w, T)``. Every builder gets its events through :func:`end_of_known` on an
:class:`EventIndex`, so the rule is written (and tested) exactly once.

How it is fast: events are sorted once by ``(customer, ts)`` and given an ``int64`` search key
``customer_code * S + seconds_since_origin``. "How many of this customer's events happened
before instant B" is then a single vectorised :func:`numpy.searchsorted` for millions of
(customer, instant) queries. Query instants are whole seconds (cutoffs are validated to be; windows
and lags are whole days), so comparing an event's *floored* second with the instant is exact:
``floor(ts) < B  <=>  ts < B`` when ``B`` is a whole second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from signals.schemas import CUSTOMER_ID, CUTOFF, NS_PER_SECOND, TOUCHPOINT, TS, VALUE

__all__ = [
    "EventIndex",
    "Rows",
    "days_to_ns",
    "end_of_known",
    "index_events",
    "index_rows",
    "ragged_ranges",
]


def days_to_ns(days: float) -> int:
    """A duration in days (a day is exactly 24 h) as integer nanoseconds, rounded to whole seconds."""
    return int(round(float(days) * 86_400)) * NS_PER_SECOND


def _customer_codes(values: pd.Series, categories: pd.Index | None) -> tuple[np.ndarray, pd.Index]:
    """Integer codes for customer ids; with ``categories`` given, ids map onto them (-1 if absent)."""
    if categories is None:
        if isinstance(values.dtype, pd.CategoricalDtype):
            cats = pd.Index(values.cat.categories.astype(str))
            return values.cat.codes.to_numpy().astype(np.int64), cats
        codes, uniques = pd.factorize(values.astype(str), sort=True)
        return codes.astype(np.int64), pd.Index(uniques)
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = categories.get_indexer(values.cat.categories.astype(str))
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, lookup[codes], -1).astype(np.int64), categories
    return categories.get_indexer(values.astype(str)).astype(np.int64), categories


@dataclass(frozen=True, eq=False)
class EventIndex:
    """Events sorted by ``(customer, ts)`` as NumPy arrays, ready for point-in-time queries.

    Attributes
    ----------
    customers : pd.Index
        Customer ids; an id's position is its code. Customers only present in the cutoffs are
        appended by :func:`index_rows` (they own an empty block of events).
    touchpoints : tuple of str
        Touchpoint types; a type's position is its code.
    cust, ts, type_code, value : np.ndarray
        Per event (sorted): customer code, UTC time in ns, type code, value.
    key : np.ndarray
        ``cust * span + second`` (int64), sorted; the search key of :func:`end_of_known`.
    block : np.ndarray
        ``block[c]:block[c + 1]`` are customer ``c``'s events (length ``n_customers + 1``).
    """

    customers: pd.Index
    touchpoints: tuple[str, ...]
    cust: np.ndarray
    ts: np.ndarray
    type_code: np.ndarray
    value: np.ndarray
    key: np.ndarray
    block: np.ndarray
    origin_s: int
    span: int

    @property
    def n_events(self) -> int:
        return len(self.ts)

    def with_customers(self, customers: pd.Index) -> EventIndex:
        """The same events with extra customers (without events) appended to the id list."""
        block = np.concatenate([self.block, np.full(len(customers) - len(self.customers), self.n_events)])
        return EventIndex(customers, self.touchpoints, self.cust, self.ts, self.type_code, self.value,
                          self.key, block, self.origin_s, self.span)


def index_events(events: pd.DataFrame, touchpoints: tuple[str, ...] | list[str]) -> EventIndex:
    """Sort canonical events by ``(customer, ts)`` and build the search key (once per event table).

    ``events`` must follow the canonical contract (``signals.schemas.check_events``); touchpoints
    outside ``touchpoints`` raise ``ValueError``.
    """
    touchpoints = tuple(touchpoints)
    cust, customers = _customer_codes(events[CUSTOMER_ID], None)
    ts = events[TS].to_numpy(dtype="datetime64[ns]").view(np.int64)
    tp = events[TOUCHPOINT]
    if isinstance(tp.dtype, pd.CategoricalDtype) and tuple(tp.cat.categories) == touchpoints:
        type_code = tp.cat.codes.to_numpy().astype(np.int16)
    else:
        type_code = pd.Index(touchpoints).get_indexer(tp.astype(str)).astype(np.int16)
    if (type_code < 0).any():
        unknown = sorted(set(tp.astype(str)[type_code < 0]))
        raise ValueError(f"events have touchpoints not in the catalog: {unknown}")
    value = events[VALUE].to_numpy(dtype=np.float64) if VALUE in events.columns else np.zeros(len(ts))

    in_order = len(ts) < 2 or bool(
        np.all((cust[1:] > cust[:-1]) | ((cust[1:] == cust[:-1]) & (ts[1:] >= ts[:-1])))
    )
    if not in_order:
        by_time = np.argsort(ts, kind="stable")
        order = by_time[np.argsort(cust[by_time], kind="stable")]
        cust, ts, type_code, value = cust[order], ts[order], type_code[order], value[order]

    seconds = ts // NS_PER_SECOND
    origin_s = int(seconds.min()) - 1 if len(seconds) else 0
    span = int(seconds.max() - origin_s) + 2 if len(seconds) else 2
    if len(customers) * span >= np.iinfo(np.int64).max // 2:
        raise ValueError("too many customers x too long a time span for the int64 search key")
    key = cust * span + (seconds - origin_s)
    block = np.searchsorted(cust, np.arange(len(customers) + 1), side="left")
    return EventIndex(customers, touchpoints, cust, ts, type_code, value, key, block, origin_s, span)


@dataclass(frozen=True, eq=False)
class Rows:
    """Cutoff rows as arrays, in the cutoffs' own order: customer code and cutoff (UTC ns)."""

    cust: np.ndarray
    cutoff: np.ndarray

    def __len__(self) -> int:
        return len(self.cust)


def index_rows(index: EventIndex, cutoffs: pd.DataFrame) -> tuple[EventIndex, Rows]:
    """Map cutoff rows onto the index's customer codes.

    Customers without events get new codes with empty event blocks (the returned index knows
    them). ``cutoffs`` must be validated (``signals.schemas.check_cutoffs``): UTC, whole seconds.
    """
    cust, _ = _customer_codes(cutoffs[CUSTOMER_ID], index.customers)
    if (cust < 0).any():
        new_ids = pd.Index(pd.unique(cutoffs[CUSTOMER_ID].astype(str).to_numpy()[cust < 0]))
        index = index.with_customers(index.customers.append(new_ids))
        cust, _ = _customer_codes(cutoffs[CUSTOMER_ID], index.customers)
    cutoff = cutoffs[CUTOFF].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return index, Rows(cust, cutoff)


def end_of_known(index: EventIndex, cust: np.ndarray, instant_ns: np.ndarray) -> np.ndarray:
    """Global position of the first event of ``cust`` at or after ``instant_ns``.

    Equivalently ``index.block[cust] + (number of cust's events with ts < instant)``: the events
    of customer ``c`` known at instant ``B`` are ``index.block[c]:end_of_known(index, c, B)``.
    This is the point-in-time rule; instants must be whole seconds (exact comparison).
    """
    rel = instant_ns // NS_PER_SECOND - index.origin_s
    np.clip(rel, 0, index.span - 1, out=rel)
    return np.searchsorted(index.key, cust * index.span + rel, side="left")


def ragged_ranges(lo: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[i], lo[i] + lengths[i])`` for all ``i`` (vectorised)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(lo - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + offsets
