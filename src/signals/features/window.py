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

Sorting costs nothing for events already in ``(customer, ts)`` order (detected, used without a
copy) and one ``np.sort`` of a packed int64 key ``customer << bits | position`` for events in time
order, as logs are exported (:func:`stable_argsort`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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
    "sort_by_customer_time",
    "stable_argsort",
]


def days_to_ns(days: float) -> int:
    """A duration in days (a day is exactly 24 h) as integer nanoseconds, rounded to whole seconds."""
    return int(round(float(days) * 86_400)) * NS_PER_SECOND


def _customer_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes for customer ids and the ids they stand for (categorical codes are used as is)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), pd.Index(values.cat.categories.astype(str))
    codes, uniques = pd.factorize(values.astype(str), sort=True)
    return codes, pd.Index(uniques)


# Sortedness is checked in chunks, so unsorted input is usually told apart after the first chunk.
_CHUNK = 1 << 18


def _in_order(cust: np.ndarray, ts: np.ndarray | None) -> bool:
    """Whether ``cust`` is non-decreasing (and ``ts`` within equal ``cust``; ``cust`` alone if None)."""
    for start in range(0, max(len(cust) - 1, 0), _CHUNK):
        c = cust[start:start + _CHUNK + 1]
        if ts is None:
            if not bool(np.all(c[1:] >= c[:-1])):
                return False
            continue
        t = ts[start:start + _CHUNK + 1]
        if not bool(np.all((c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & (t[1:] >= t[:-1])))):
            return False
    return True


def _map(fn, items: list, threads: int) -> list:
    if threads <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


def _take(values: np.ndarray, positions: np.ndarray, threads: int = 1) -> np.ndarray:
    """``values[positions]``, in chunks on ``threads`` threads for long arrays."""
    if threads <= 1 or len(positions) < _CHUNK * 4:
        return values[positions]
    out = np.empty(len(positions), dtype=values.dtype)
    step = -(-len(positions) // threads)
    chunks = [slice(i, i + step) for i in range(0, len(positions), step)]
    _map(lambda part: np.take(values, positions[part], out=out[part], mode="clip"), chunks, threads)
    return out


def stable_argsort(codes: np.ndarray, n_codes: int, *, threads: int = 1) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` for codes in ``[0, n_codes)``, with plain ``np.sort``.

    The position of each element is packed into the low bits of its int64 sort key
    (``code << bits | position``), so the unstable but fast ``np.sort`` yields the stable order;
    when the two do not fit in 63 bits it falls back to the stable argsort. With ``threads``,
    the codes are split into that many ranges, sorted side by side (the result is the same).
    """
    n = len(codes)
    bits = max(int(n - 1).bit_length(), 1)
    if (max(int(n_codes) - 1, 1)).bit_length() + bits > 62:
        return np.argsort(codes, kind="stable")

    def packed_sort(positions: np.ndarray | None) -> np.ndarray:
        packed = codes.astype(np.int64) if positions is None else codes[positions].astype(np.int64)
        packed <<= bits
        packed |= np.arange(n, dtype=np.int64) if positions is None else positions
        packed.sort()
        packed &= (1 << bits) - 1
        return packed

    parts = min(threads, 255, max(int(n_codes), 1))
    if parts < 2 or n < _CHUNK * 4:
        return packed_sort(None)
    part = (codes.astype(np.int64) * parts // n_codes).astype(np.uint8)
    by_part = np.argsort(part, kind="stable")  # (a radix sort: one pass)
    ends = np.cumsum(np.bincount(part, minlength=parts))
    slices = [by_part[end - size:end] for end, size in zip(ends, np.diff(ends, prepend=0), strict=True)]
    return np.concatenate(_map(packed_sort, slices, threads))


def sort_by_customer_time(cust: np.ndarray, ts: np.ndarray, n_customers: int, *, threads: int = 1) -> np.ndarray | None:
    """The stable permutation that sorts ``(customer code, time)`` pairs; None when they already are.

    Pairs in time order (as logs are exported, or a cutoff grid one date after the other) need
    one stable sort by customer, which :func:`stable_argsort` does with ``np.sort`` of an int64
    key. Pairs in no particular order are first put in time order (a stable argsort of ``ts``).
    ``cust`` must lie in ``[0, n_customers)``.
    """
    if _in_order(cust, ts):
        return None
    if _in_order(ts, None):
        return stable_argsort(cust, n_customers, threads=threads)
    by_time = np.argsort(ts, kind="stable")
    return by_time[stable_argsort(cust[by_time], n_customers, threads=threads)]


class EventIndex:
    """Events sorted by ``(customer, ts)`` as NumPy arrays, ready for point-in-time queries.

    Built by :func:`index_events`; read-only. ``cust`` and ``value`` may be given as None: they
    are then computed on first use (most builds need neither for every event; :meth:`values_at`
    reads just the values asked for).

    Attributes
    ----------
    customers : pd.Index
        Customer ids; an id's position is its code. Customers only present in the cutoffs are
        appended by :func:`index_rows` (they own an empty block of events).
    touchpoints : tuple of str
        Touchpoint types; a type's position is its code.
    cust, ts, type_code, value : np.ndarray
        Per event (sorted): customer code, UTC time in ns (int64), type code, value.
    key : np.ndarray
        ``cust * span + second`` (int64), sorted; the search key of :func:`end_of_known`.
    block : np.ndarray
        ``block[c]:block[c + 1]`` are customer ``c``'s events (length ``n_customers + 1``).
    order : np.ndarray or None
        ``order[i]`` is the input row of sorted event ``i``; None when the input was already
        sorted by ``(customer, ts)`` (then nothing was copied).
    """

    def __init__(self, customers: pd.Index, touchpoints, cust: np.ndarray | None, ts: np.ndarray,
                 type_code: np.ndarray, value: np.ndarray | None, key: np.ndarray, block: np.ndarray,
                 origin_s: int, span: int, *, order: np.ndarray | None = None,
                 input_value: np.ndarray | None = None) -> None:
        if value is None and input_value is None:
            raise ValueError("EventIndex needs the values: value (sorted) or input_value (with order)")
        self.customers, self.touchpoints = customers, tuple(touchpoints)
        self.ts, self.type_code, self.key, self.block = ts, type_code, key, block
        self.origin_s, self.span, self.order = origin_s, span, order
        self._cust, self._value, self._input_value = cust, value, input_value

    @property
    def n_events(self) -> int:
        return len(self.ts)

    @property
    def cust(self) -> np.ndarray:
        if self._cust is None:
            self._cust = np.repeat(np.arange(len(self.block) - 1, dtype=np.int64), np.diff(self.block))
        return self._cust

    @property
    def value(self) -> np.ndarray:
        if self._value is None:
            self._value = self._input_value if self.order is None else self._input_value[self.order]
        return self._value

    def values_at(self, positions: np.ndarray) -> np.ndarray:
        """The values of the sorted events at ``positions`` (without sorting every value)."""
        if self._value is not None:
            return self._value[positions]
        return self._input_value[positions if self.order is None else self.order[positions]]

    def with_customers(self, customers: pd.Index) -> EventIndex:
        """The same events with extra customers (without events) appended to the id list."""
        block = np.concatenate([self.block, np.full(len(customers) - len(self.customers), self.n_events)])
        return EventIndex(customers, self.touchpoints, self._cust, self.ts, self.type_code, self._value,
                          self.key, block, self.origin_s, self.span, order=self.order,
                          input_value=self._input_value)


def index_events(events: pd.DataFrame, touchpoints: tuple[str, ...] | list[str], *, threads: int = 1) -> EventIndex:
    """Sort canonical events by ``(customer, ts)`` and build the search key (once per event table).

    ``events`` must follow the canonical contract (``signals.schemas.check_events``); touchpoints
    outside ``touchpoints`` raise ``ValueError``. Events already sorted by ``(customer, ts)``
    are detected and used without a copy; events in time order cost one ``np.sort`` (split
    over ``threads`` threads; the index is the same for any number).
    """
    touchpoints = tuple(touchpoints)
    cust, customers = _customer_codes(events[CUSTOMER_ID])
    ts = events[TS].to_numpy(dtype="datetime64[ns]").view(np.int64)
    tp = events[TOUCHPOINT]
    if isinstance(tp.dtype, pd.CategoricalDtype) and tuple(tp.cat.categories) == touchpoints:
        type_code = tp.cat.codes.to_numpy()
    else:
        type_code = pd.Index(touchpoints).get_indexer(tp.astype(str)).astype(np.int16)
    if (type_code < 0).any():
        unknown = sorted(set(tp.astype(str)[type_code < 0]))
        raise ValueError(f"events have touchpoints not in the catalog: {unknown}")
    value = events[VALUE].to_numpy(dtype=np.float64) if VALUE in events.columns else np.zeros(len(ts))

    n_customers = len(customers)
    order = sort_by_customer_time(cust, ts, n_customers, threads=threads)
    if order is not None:
        ts, type_code = _take(ts, order, threads), _take(type_code, order, threads)
        if len(order) < 2**31:
            order = order.astype(np.int32)  # (kept only to read values: half the memory)
    per_customer = np.bincount(cust, minlength=n_customers) if len(cust) else np.zeros(n_customers, np.int64)
    block = np.zeros(n_customers + 1, dtype=np.int64)
    np.cumsum(per_customer, out=block[1:])

    origin_s = int(ts.min()) // NS_PER_SECOND - 1 if len(ts) else 0
    span = int(ts.max()) // NS_PER_SECOND - origin_s + 2 if len(ts) else 2
    if n_customers * span >= np.iinfo(np.int64).max // 2:
        raise ValueError("too many customers x too long a time span for the int64 search key")
    key = np.floor_divide(ts, NS_PER_SECOND)
    key += np.repeat(np.arange(n_customers, dtype=np.int64) * span - origin_s, per_customer)
    return EventIndex(customers, touchpoints, None, ts, type_code, None, key, block, origin_s, span,
                      order=order, input_value=value)


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
    Each distinct id is looked up once.
    """
    ids = cutoffs[CUSTOMER_ID]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        codes, uniques = ids.cat.codes.to_numpy(), pd.Index(ids.cat.categories.astype(str))
    else:
        codes, uniques = pd.factorize(ids.astype(str))
        uniques = pd.Index(uniques)
    if uniques.equals(index.customers):
        lookup = np.arange(len(uniques), dtype=np.int64)
    else:
        lookup = index.customers.get_indexer(uniques).astype(np.int64)
    new = lookup < 0
    if new.any():  # (unused categories are appended too: they own empty blocks, like every id)
        lookup[new] = len(index.customers) + np.arange(int(new.sum()))
        index = index.with_customers(index.customers.append(uniques[new]))
    cust = lookup[codes]
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
