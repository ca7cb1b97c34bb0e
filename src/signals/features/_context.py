"""Shared, cached point-in-time arrays for one (events, cutoffs) pair.

The feature families need the same few things: where each row's windows start and end in the
sorted events, how many events of each type lie before those positions, and decayed sums of
events at the cutoffs. :class:`PointInTime` computes each once, lazily, and caches it, so building
the whole matrix costs about as much as its most expensive family. All arrays are in the row
order of the cutoffs table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from signals.features.window import (
    EventIndex,
    days_to_ns,
    end_of_known,
    index_events,
    index_rows,
    ragged_ranges,
)
from signals.schemas import NS_PER_DAY

__all__ = ["PointInTime", "segment_sums"]


def segment_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo[i]:hi[i]].sum()`` for every ``i``.

    The elements of every segment are gathered and summed left to right (no prefix-sum
    differences, so no cancellation error); the cost is the total length of the segments.
    """
    lengths = np.maximum(hi - lo, 0)
    out = np.zeros(len(lo), dtype=np.float64)
    nonempty = lengths > 0
    if not nonempty.any():
        return out
    packed = values[ragged_ranges(lo[nonempty], lengths[nonempty])].astype(np.float64, copy=False)
    starts = np.cumsum(lengths[nonempty]) - lengths[nonempty]
    out[nonempty] = np.add.reduceat(packed, starts)
    return out


@dataclass(frozen=True, eq=False)
class _DecayPlan:
    """How events feed the cutoff rows, for decayed sums at every half-life.

    The rows of a customer, sorted by cutoff, split its events into consecutive intervals; each
    event feeds the first row after it (events after a customer's last row feed nothing: bin
    ``n_rows``). Rows are laid out *rank-major* (every customer's first row, then every second
    row, ...), so the recurrence over a customer's rows is one vectorised step per rank.
    """

    event_bin: np.ndarray    # per event: layout position of the row it feeds * n_types + type code
    event_age: np.ndarray    # per event: (that row's cutoff - ts) in ns, float64
    gap: np.ndarray          # per layout position: ns since the customer's previous cutoff
    previous: np.ndarray     # per layout position: layout position of the customer's previous row
    rank_bounds: np.ndarray  # layout positions rank_bounds[r]:rank_bounds[r + 1] have rank r
    row_layout: np.ndarray   # per row: its layout position


class PointInTime:
    """Events and cutoff rows indexed together; lazily computed, cached query results.

    Parameters
    ----------
    events : pd.DataFrame or None
        Canonical events (``signals.schemas.check_events``); may be None when ``index`` is given.
    cutoffs : pd.DataFrame
        Validated cutoffs (``signals.schemas.check_cutoffs``).
    touchpoints : sequence of str
        The catalog's types, in catalog order (type codes follow this order).
    index : EventIndex, optional
        A prebuilt index of ``events`` (skips sorting when building for several cutoff sets).
    """

    def __init__(self, events: pd.DataFrame | None, cutoffs: pd.DataFrame, touchpoints, *,
                 index: EventIndex | None = None) -> None:
        if index is None:
            index = index_events(events, touchpoints)
        self.index, self.rows = index_rows(index, cutoffs)
        self._positions: dict[int, np.ndarray] = {}
        self._counts: dict[tuple[int, int], np.ndarray] = {}
        self._type_positions: dict[int, np.ndarray] = {}
        self._plans: dict[int, _DecayPlan] = {}
        self._decayed: dict[tuple[float, int], np.ndarray] = {}
        self._prefix_buffer: np.ndarray | None = None

    # ---- basic quantities -------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def touchpoints(self) -> tuple[str, ...]:
        return self.index.touchpoints

    @property
    def cutoff(self) -> np.ndarray:
        return self.rows.cutoff

    def block_start(self) -> np.ndarray:
        """Position of each row's customer's first event (its block start)."""
        return self.index.block[self.rows.cust]

    def positions(self, days_before: float = 0) -> np.ndarray:
        """For each row, ``end_of_known(cutoff - days_before)``: events known then end here."""
        offset = days_to_ns(days_before)
        if offset not in self._positions:
            self._positions[offset] = end_of_known(self.index, self.rows.cust, self.rows.cutoff - offset)
        return self._positions[offset]

    def type_positions(self, k: int) -> np.ndarray:
        """Sorted positions of the type-``k`` events."""
        if k not in self._type_positions:
            self._type_positions[k] = np.flatnonzero(self.index.type_code == k)
        return self._type_positions[k]

    def count_before(self, k: int, days_before: float | None = 0) -> np.ndarray:
        """Global count of type-``k`` events before each row's ``cutoff - days_before`` position.

        ``days_before=None`` means the row's customer's block start. Differences of two such
        counts are the type's events in a window of the row's customer. One prefix count of the
        type serves every window known so far (register windows early with :meth:`positions`).
        """
        offset = -1 if days_before is None else days_to_ns(days_before)
        if (k, offset) not in self._counts:
            if offset >= 0:
                self.positions(days_before)
            if self._prefix_buffer is None:
                self._prefix_buffer = np.zeros(self.index.n_events + 1, dtype=np.int32)
            prefix = self._prefix_buffer  # reused for every type: its values are only gathered
            np.cumsum(self.index.type_code == k, out=prefix[1:])
            self._counts[(k, -1)] = prefix[self.block_start()]
            for known, pos in self._positions.items():
                self._counts[(k, known)] = prefix[pos]
        return self._counts[(k, offset)]

    # ---- decayed sums (temperature) -----------------------------------------------------------
    def decayed(self, half_life_days: float, lag_days: float = 0) -> np.ndarray:
        """Decayed counts per type at each row's ``cutoff - lag``, shape ``(n_rows, n_types)``.

        ``out[r, k] = sum(0.5 ** ((at_r - ts) / half_life))`` over the customer's type-``k``
        events with ``ts < at_r``, ``at_r = cutoff_r - lag``. Each event feeds one row (the customer's first cutoff
        after it); per-row increments come from one ``bincount`` and are carried forward with
        the exact recurrence ``S_i = S_{i-1} * 0.5 ** (gap_i / half_life) + increment_i``: no
        prefix-sum cancellation and no overflow, however long the history.
        """
        key = (float(half_life_days), days_to_ns(lag_days))
        if key not in self._decayed:
            self._decayed[key] = self._compute_decayed(*key)
        return self._decayed[key]

    def decayed_change(self, half_life_days: float, lag_days: float) -> np.ndarray:
        """Decayed counts per type at the cutoff minus the same ``lag_days`` earlier.

        Fast path (lag up to 8 half-lives): with ``c = 2 ** (L / h)``, the temperature at
        ``T - L`` is ``c * (S(T) - R)`` where ``R`` sums ``0.5 ** ((T - t) / h)`` over the touches
        of ``[T - L, T)``, so only the last ``L`` days of events are visited; its rounding error is
        below ``4 * c * eps * S(T)``. Longer lags would amplify that error, so they are computed
        directly with their own decay plan.
        """
        h, lag_ns = float(half_life_days), days_to_ns(lag_days)
        rate = math.log(2.0) / (h * NS_PER_DAY)
        now = self.decayed(h)
        if rate * lag_ns > 8 * math.log(2.0):
            return now - self.decayed(h, lag_ns / NS_PER_DAY)
        hi, lo = self.positions(0), self.positions(lag_ns / NS_PER_DAY)
        lengths = hi - lo
        event_pos = ragged_ranges(lo, lengths)
        row = np.repeat(np.arange(self.n_rows), lengths)
        weights = np.exp(-rate * (self.rows.cutoff[row] - self.index.ts[event_pos]))
        n_types = len(self.touchpoints)
        row *= n_types
        row += self.index.type_code[event_pos]
        change = np.bincount(row, weights=weights, minlength=self.n_rows * n_types)
        change = change.astype(np.float64, copy=False).reshape(self.n_rows, n_types)  # (int when empty)
        np.subtract(now, change, out=change)          # S(T) - R: the touches older than the lag ...
        np.maximum(change, 0.0, out=change)           # (rounding must not make it negative)
        change *= math.exp(rate * lag_ns)             # ... as they were at T - L
        np.subtract(now, change, out=change)
        return change

    def _decay_plan(self, lag_ns: int) -> _DecayPlan:
        if lag_ns in self._plans:
            return self._plans[lag_ns]
        rows, index = self.rows, self.index
        n_rows, n_events = len(rows), index.n_events
        now = self.positions(lag_ns / NS_PER_DAY)
        at = rows.cutoff - lag_ns
        order = _sort_by_customer_time(rows.cust, at)
        cust_s, cutoff_s, pos_s = rows.cust[order], at[order], now[order]
        first = np.ones(n_rows, dtype=bool)
        first[1:] = cust_s[1:] != cust_s[:-1]
        # tile [0, n_events): before each customer's first row a stretch of events that feed
        # nothing (other customers' late events), then each row's own interval
        previous_end = np.zeros(n_rows, dtype=np.int64)
        previous_end[1:] = pos_s[:-1]
        lo = np.where(first, index.block[cust_s], previous_end)
        gap_before = lo - previous_end                  # 0 unless a new customer starts
        own = pos_s - lo
        rank = np.arange(n_rows) - np.maximum.accumulate(np.where(first, np.arange(n_rows), 0))
        layout = np.argsort(rank, kind="stable")        # layout position -> customer-major position
        layout_of = np.empty(n_rows, dtype=np.int64)
        layout_of[layout] = np.arange(n_rows)           # customer-major position -> layout position
        labels = np.empty(2 * n_rows + 1, dtype=np.int64)
        labels[0:-1:2] = n_rows                         # the "feeds nothing" bin
        labels[1::2] = layout_of
        labels[-1] = n_rows
        lengths = np.empty(2 * n_rows + 1, dtype=np.int64)
        lengths[0:-1:2] = gap_before
        lengths[1::2] = own
        lengths[-1] = n_events - (pos_s[-1] if n_rows else 0)
        event_row = np.repeat(labels, lengths)          # layout position fed by each event
        cutoff_at = np.append(cutoff_s[layout], index.ts.max() if n_events else 0)
        event_age = (cutoff_at[event_row] - index.ts).astype(np.float64)
        event_bin = event_row * len(index.touchpoints) + index.type_code
        gap = np.zeros(n_rows, dtype=np.float64)
        gap[1:] = np.diff(cutoff_s)
        gap[first] = 0.0
        previous = layout_of[np.maximum(layout - 1, 0)]
        rank_bounds = np.concatenate([[0], np.cumsum(np.bincount(rank))]) if n_rows else np.zeros(1, np.int64)
        row_layout = np.empty(n_rows, dtype=np.int64)
        row_layout[order] = layout_of
        self._plans[lag_ns] = _DecayPlan(event_bin, event_age, gap[layout], previous, rank_bounds, row_layout)
        return self._plans[lag_ns]

    def _compute_decayed(self, half_life_days: float, lag_ns: int) -> np.ndarray:
        n_types = len(self.index.touchpoints)
        plan = self._decay_plan(lag_ns)
        n_rows = self.n_rows
        rate = math.log(2.0) / (half_life_days * NS_PER_DAY)
        weights = np.exp(-rate * plan.event_age)
        sums = np.bincount(plan.event_bin, weights=weights, minlength=(n_rows + 1) * n_types)
        sums = sums[: n_rows * n_types].astype(np.float64, copy=False).reshape(n_rows, n_types)
        step = np.exp(-rate * plan.gap)
        for r in range(1, len(plan.rank_bounds) - 1):  # rank r depends on rank r - 1
            block = slice(plan.rank_bounds[r], plan.rank_bounds[r + 1])
            sums[block] += sums[plan.previous[block]] * step[block, None]
        return sums[plan.row_layout]


def _sort_by_customer_time(cust: np.ndarray, instant_ns: np.ndarray) -> np.ndarray:
    """Order by (customer, instant) for whole-second instants, via one int64 key.

    Ties (the same customer and instant twice) may come in any order.
    """
    if len(cust) == 0:
        return np.zeros(0, dtype=np.int64)
    seconds = instant_ns // 1_000_000_000
    low = int(seconds.min())
    span = int(seconds.max()) - low + 1
    if (int(cust.max()) + 1) * span < 2**62:
        return np.argsort(cust * span + (seconds - low))
    return np.lexsort((instant_ns, cust))
