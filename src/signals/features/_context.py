"""Shared, cached point-in-time arrays for one (events, cutoffs) pair.

The feature families need the same few things: where each row's windows start and end in the
sorted events, how many events of each type lie before those positions, and decayed sums of
events at the cutoffs. :class:`PointInTime` computes each once, lazily, and caches it, so building
the whole matrix costs about as much as its most expensive family. All arrays are in the row
order of the cutoffs table.

The work per touchpoint type (prefix counts, decayed sums) runs on a pool of ``threads`` threads:
NumPy releases the GIL inside its loops. Every result is computed by one task with the same
operations whatever the number of threads, so the output is bit-identical for any ``threads``.
:meth:`PointInTime.prepare` announces up front which windows and half-lives the families will
ask for, so that one pass per type serves them all.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from signals.features.window import (
    EventIndex,
    days_to_ns,
    end_of_known,
    index_events,
    index_rows,
    ragged_ranges,
    sort_by_customer_time,
    stable_argsort,
)
from signals.schemas import NS_PER_DAY

__all__ = ["PointInTime", "available_cores", "segment_sums"]

_T = TypeVar("_T")
_R = TypeVar("_R")
_BLOCK_START = -1  # the offset key of "the customer's first event" in the count caches
_ROW_BLOCK = 1 << 17  # rows per task where the work is split by rows


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


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
class _RowPlan:
    """The cutoff rows sorted by ``(customer, cutoff)``, laid out for the decay recurrence.

    Searches and prefix-count lookups run in this sorted order: a customer's queries then touch
    the same few cache lines. For the decay, rows are laid out level by level (every customer's
    first row, then every second row, ...; or one cutoff date after the other), so the
    recurrence over a customer's rows is one vectorised step per level.
    """

    order: np.ndarray | None    # sorted position -> row (None: the rows are sorted already)
    inverse: np.ndarray | None  # row -> sorted position
    cust: np.ndarray            # per sorted position: customer code
    cutoff: np.ndarray          # per sorted position: cutoff (ns)
    first: np.ndarray           # per sorted position: the customer's first row
    layout_of: np.ndarray       # per sorted position: its layout position
    gap: np.ndarray             # per layout position: ns since the customer's previous cutoff (float)
    previous: np.ndarray        # per layout position: the customer's previous row (first rows: n, a zero bin)
    level_bounds: np.ndarray    # layout positions level_bounds[v]:level_bounds[v + 1] form level v
    row_layout: np.ndarray | None  # per row: its layout position (None: the identity)
    cutoff_layout: np.ndarray   # per layout position: the row's cutoff (ns)

    def unsorted(self, values: np.ndarray) -> np.ndarray:
        """Per-sorted-position values (first axis) back in row order."""
        return values if self.inverse is None else np.take(values, self.inverse, axis=0)


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
    threads : int
        Threads for the per-type work (1: everything in the calling thread; 0: one per core).
        The results do not depend on it: the work is cut into the same tasks (one per type, or
        fixed blocks of rows) whatever the number of threads that run them.
    """

    def __init__(self, events: pd.DataFrame | None, cutoffs: pd.DataFrame, touchpoints, *,
                 index: EventIndex | None = None, threads: int = 1) -> None:
        self.threads = available_cores() if threads == 0 else int(threads)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 0 (0 = one per core), got {threads}")
        if index is None:
            index = index_events(events, touchpoints, threads=self.threads)
        self.index, self.rows = index_rows(index, cutoffs)
        self._count_dtype = np.int32 if self.index.n_events < 2**31 - 1 else np.int64
        self._positions: dict[int, np.ndarray] = {}         # offset -> per row
        self._sorted_positions: dict[int, np.ndarray] = {}  # offset -> per sorted position
        self._counts: dict[tuple[int, int], np.ndarray] = {}  # (type, cutoff) per row, (type, start) per customer
        self._within: dict[tuple[int, int], np.ndarray] = {}  # (type, window) -> counts in it
        self._type_positions: dict[int, np.ndarray] = {}
        self._type_ts: dict[int, np.ndarray] = {}
        self._decayed: dict[tuple[float, int], np.ndarray] = {}
        self._half_lives: set[float] = set()
        self._plan: _RowPlan | None = None
        self._local = threading.local()

    # ---- threads ----------------------------------------------------------------------------
    def map(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """``[fn(x) for x in items]``, run on the thread pool (results in the order of ``items``).

        ``fn`` must only write to memory that no other call writes to.
        """
        items = list(items)
        if self.threads == 1 or len(items) < 2:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.threads, len(items))) as pool:
            return list(pool.map(fn, items))

    def _scratch(self, n: int) -> np.ndarray:
        """A per-thread buffer of ``n`` counts (reused across the tasks a thread runs)."""
        buffer = getattr(self._local, "prefix", None)
        if buffer is None or len(buffer) != n:
            buffer = self._local.prefix = np.zeros(n, dtype=self._count_dtype)
        return buffer

    def _row_blocks(self) -> list[slice]:
        """Fixed blocks of rows (the same whatever the number of threads)."""
        return [slice(i, min(i + _ROW_BLOCK, self.n_rows)) for i in range(0, self.n_rows, _ROW_BLOCK)]

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
        if _BLOCK_START not in self._positions:
            self._positions[_BLOCK_START] = self.index.block[self.rows.cust]
            self._sorted_positions[_BLOCK_START] = self.index.block[self._row_plan().cust]
        return self._positions[_BLOCK_START]

    def prepare(self, offsets_days: Sequence[float] = (0,), half_lives_days: Sequence[float] = (),
                counted_days: Sequence[float] | None = None) -> None:
        """Compute up front what the families will ask for, one pass per type serving them all.

        Searches the window ends ``cutoff - d`` for every ``d`` of ``offsets_days``, counts the
        events of every type in the windows of ``counted_days`` (default: all of them), before
        the cutoff and before the block start, and computes the decayed sums at the cutoffs for
        every half-life of ``half_lives_days``. Anything not announced here is still computed
        when asked for, in a pass of its own.
        """
        self._search([days_to_ns(d) for d in (0, *offsets_days)])
        self._half_lives.update(float(h) for h in half_lives_days)
        counted = offsets_days if counted_days is None else counted_days
        self._count_types([days_to_ns(d) for d in counted])
        self._sorted_positions.clear()  # (only the passes need them; they come back on demand)

    def positions(self, days_before: float = 0) -> np.ndarray:
        """For each row, ``end_of_known(cutoff - days_before)``: events known then end here."""
        offset = days_to_ns(days_before)
        if offset not in self._positions:
            self._search([offset])
        return self._positions[offset]

    def _search(self, offsets_ns: list[int]) -> None:
        """:func:`end_of_known` for every row at ``cutoff - offset``, one offset per task.

        The queries run in ``(customer, cutoff)`` order: each customer's searches then touch the
        same few cache lines of the key, several times faster than searching in cutoff order.
        """
        todo = sorted({o for o in offsets_ns if o not in self._positions})
        if not todo:
            return
        plan = self._row_plan()

        def search(offset: int) -> tuple[np.ndarray, np.ndarray]:
            found = end_of_known(self.index, plan.cust, plan.cutoff - offset)
            if plan.order is None:
                return found, found
            per_row = np.empty_like(found)
            per_row[plan.order] = found
            return found, per_row

        for offset, (found, per_row) in zip(todo, self.map(search, todo), strict=True):
            self._sorted_positions[offset], self._positions[offset] = found, per_row

    def _sorted_positions_of(self, offset: int) -> np.ndarray:
        """The positions at ``offset`` (or the block starts) in sorted row order."""
        if offset not in self._sorted_positions:
            per_row = self.block_start() if offset == _BLOCK_START else self.positions(offset / NS_PER_DAY)
            order = self._row_plan().order
            self._sorted_positions[offset] = per_row if order is None else per_row[order]
        return self._sorted_positions[offset]

    def type_positions(self, k: int) -> np.ndarray:
        """Sorted positions of the type-``k`` events."""
        if k not in self._type_positions:
            self._type_positions[k] = np.flatnonzero(self.index.type_code == k)
        return self._type_positions[k]

    def type_ts(self, k: int) -> np.ndarray:
        """Times (ns) of the type-``k`` events, in sorted order: ``index.ts[type_positions(k)]``."""
        if k not in self._type_ts:
            self._count_types()
        return self._type_ts[k]

    def count_before(self, k: int, days_before: float | None = 0) -> np.ndarray:
        """Global count of type-``k`` events before each row's ``cutoff - days_before`` position.

        ``days_before=None`` means the row's customer's block start. Differences of two such
        counts are the type's events in a window of the row's customer; a count is also the index
        of the next type-``k`` event in :meth:`type_positions` and :meth:`type_ts`.
        """
        if (k, 0) not in self._counts:
            self._count_types()
        if days_before is None:  # (kept per customer: the same for all of a customer's rows)
            return self._counts[(k, _BLOCK_START)][self.rows.cust]
        if days_to_ns(days_before) == 0:
            return self._counts[(k, 0)]
        return self._counts[(k, 0)] - self.count_within(k, days_before)

    def count_within(self, k: int, days: float) -> np.ndarray:
        """Type-``k`` events in each row's window ``[cutoff - days, cutoff)`` (int32, cached).

        One prefix count per type serves every window announced with :meth:`prepare`.
        """
        offset = days_to_ns(days)
        if offset == 0:
            return np.zeros(self.n_rows, dtype=self._count_dtype)
        if (k, offset) not in self._within:
            self._count_types([offset])
        return self._within[(k, offset)]

    def _count_types(self, windows_ns: Sequence[int] = ()) -> None:
        """One pass per type: the type's events before the cutoff and the block start, in the
        windows of ``windows_ns`` (those not counted yet), the times of its events, and the
        decayed sums announced.

        A pass builds the type's prefix count over the sorted events and reads it at every row's
        positions in sorted row order (cache-friendly), then puts the counts back in row order,
        all positions of a row at once.
        """
        plan = self._row_plan()
        n_types = len(self.touchpoints)
        fresh = (0, 0) not in self._counts
        windows = [o for o in dict.fromkeys(windows_ns) if o != 0 and (0, o) not in self._within]
        half_lives = sorted(h for h in self._half_lives if (h, 0) not in self._decayed)
        if not fresh and not windows and not half_lives and 0 in self._type_ts:
            return
        self._search(windows)
        # per sorted row: the cutoff's position; the windows' starts side by side
        where = self._sorted_positions_of(0)
        starts = np.stack([self._sorted_positions_of(o) for o in windows], axis=1) if windows else None
        customer_start = self.index.block[:-1]
        decay = _Decay(self, half_lives, 0) if half_lives else None
        type_code, ts = self.index.type_code, self.index.ts

        def scan(k: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray | None, np.ndarray]:
            is_k = type_code == k
            prefix = self._scratch(len(type_code) + 1)  # its values are only gathered
            np.cumsum(is_k, out=prefix[1:])
            positions = self._type_positions.get(k)
            if positions is None:
                positions = np.flatnonzero(is_k)
            del is_k
            before = plan.unsorted(prefix[where])       # read in sorted row order
            within = None
            if starts is not None:  # the windows' counts (features themselves: each one contiguous)
                within = np.subtract(before[:, None], plan.unsorted(prefix[starts]), order="F")
            times = self._type_ts[k] if k in self._type_ts else ts[positions]
            if decay is not None:
                decay.run(k, positions, times)
            return (prefix[customer_start], before), within, times

        for k, (before, within, times) in zip(range(n_types), self.map(scan, range(n_types)), strict=True):
            if fresh:
                self._counts[(k, _BLOCK_START)], self._counts[(k, 0)] = before
            for i, offset in enumerate(windows):
                self._within[(k, offset)] = within[:, i]
            self._type_ts[k] = times
        if decay is not None:
            self._decayed.update(decay.results())

    # ---- decayed sums (temperature) -----------------------------------------------------------
    def decayed(self, half_life_days: float, lag_days: float = 0) -> np.ndarray:
        """Decayed counts per type at each row's ``cutoff - lag``, shape ``(n_rows, n_types)``.

        ``out[r, k] = sum(0.5 ** ((at_r - ts) / half_life))`` over the customer's type-``k``
        events with ``ts < at_r``, ``at_r = cutoff_r - lag``. Each event feeds one row (the
        customer's first cutoff after it); per-row increments come from one ``bincount`` per type
        and are carried forward with the exact recurrence
        ``S_i = S_{i-1} * 0.5 ** (gap_i / half_life) + increment_i``: no prefix-sum cancellation
        and no overflow, however long the history. The array is Fortran-ordered: every type's
        column is contiguous.
        """
        h, lag_ns = float(half_life_days), days_to_ns(lag_days)
        if (h, lag_ns) not in self._decayed:
            self.type_ts(0)  # every type's times (the pass may compute the decayed sums too)
            wanted = {h} | (self._half_lives if lag_ns == 0 else set())
            missing = sorted(x for x in wanted if (x, lag_ns) not in self._decayed)
            if missing:
                decay = _Decay(self, missing, lag_ns)
                self.map(lambda k: decay.run(k, self.type_positions(k), self.type_ts(k)),
                         range(len(self.touchpoints)))
                self._decayed.update(decay.results())
        return self._decayed[(h, lag_ns)]

    def decayed_change(self, half_life_days: float, lag_days: float) -> np.ndarray:
        """Decayed counts per type at the cutoff minus the same ``lag_days`` earlier.

        Fast path (lag up to 8 half-lives): with ``c = 2 ** (L / h)``, the temperature at
        ``T - L`` is ``c * (S(T) - R)`` where ``R`` sums ``0.5 ** ((T - t) / h)`` over the touches
        of ``[T - L, T)``, so only the last ``L`` days of events are visited; its rounding error is
        below ``4 * c * eps * S(T)``. Longer lags would amplify that error, so they are computed
        directly with their own decay plan. Computed in fixed blocks of rows, all types at once.
        """
        h, lag_ns = float(half_life_days), days_to_ns(lag_days)
        rate = math.log(2.0) / (h * NS_PER_DAY)
        now = self.decayed(h)
        if rate * lag_ns > 8 * math.log(2.0):
            return now - self.decayed(h, lag_ns / NS_PER_DAY)
        hi, lo = self.positions(0), self.positions(lag_ns / NS_PER_DAY)
        n_types = len(self.touchpoints)
        out = np.empty((self.n_rows, n_types))
        grow = math.exp(rate * lag_ns)
        ts, type_code, cutoff = self.index.ts, self.index.type_code, self.rows.cutoff

        def change(rows: slice) -> None:
            lengths = hi[rows] - lo[rows]
            event_pos = ragged_ranges(lo[rows], lengths)
            row = np.repeat(np.arange(rows.stop - rows.start), lengths)
            weights = np.exp(-rate * (cutoff[rows][row] - ts[event_pos]))
            row *= n_types
            row += type_code[event_pos]
            part = out[rows]
            part[:] = np.bincount(row, weights=weights, minlength=part.size).reshape(part.shape)
            np.subtract(now[rows], part, out=part)  # S(T) - R: the touches older than the lag ...
            np.maximum(part, 0.0, out=part)         # (rounding must not make it negative)
            part *= grow                            # ... as they were at T - L
            np.subtract(now[rows], part, out=part)

        self.map(change, self._row_blocks())
        return out

    def _row_plan(self) -> _RowPlan:
        if self._plan is not None:
            return self._plan
        rows = self.rows
        n_rows = len(rows)
        order = sort_by_customer_time(rows.cust, rows.cutoff, len(self.index.customers))
        inverse = None
        if order is not None:
            inverse = np.empty(n_rows, dtype=np.int64)
            inverse[order] = np.arange(n_rows)
        cust_s = rows.cust if order is None else rows.cust[order]
        cutoff_s = rows.cutoff if order is None else rows.cutoff[order]
        first = np.ones(n_rows, dtype=bool)
        first[1:] = cust_s[1:] != cust_s[:-1]
        # levels of the recurrence: rows of one level only depend on rows of earlier levels. Either
        # the rank of the row among its customer's rows, or, when that is fewer steps (a grid of
        # cutoff dates shared by the customers), the rank of its cutoff among the distinct ones:
        # rows sorted by (cutoff, customer), as training grids come, then need no reordering.
        rank = np.arange(n_rows) - np.maximum.accumulate(np.where(first, np.arange(n_rows), 0))
        level = rank
        if n_rows:
            instants, instant_rank = np.unique(cutoff_s, return_inverse=True)
            repeated = bool(np.any(~first[1:] & (cutoff_s[1:] == cutoff_s[:-1])))  # (unvalidated input)
            if len(instants) <= int(rank.max()) + 1 and not repeated:
                level = instant_rank.reshape(-1)
        n_levels = int(level.max()) + 1 if n_rows else 0
        layout = stable_argsort(level, n_levels)        # layout position -> sorted position
        layout_of = np.empty(n_rows, dtype=np.int64)
        layout_of[layout] = np.arange(n_rows)           # sorted position -> layout position
        gap = np.zeros(n_rows, dtype=np.float64)
        gap[1:] = np.diff(cutoff_s)
        gap[first] = 0.0
        previous = np.full(n_rows, n_rows, dtype=np.int64)  # (the first row's "previous": bin n_rows, 0)
        has_previous = ~first
        previous[layout_of[has_previous]] = layout_of[np.flatnonzero(has_previous) - 1]
        level_bounds = np.concatenate([[0], np.cumsum(np.bincount(level))]) if n_rows else np.zeros(1, np.int64)
        row_layout = layout_of if inverse is None else layout_of[inverse]
        in_row_order = bool(np.array_equal(row_layout, np.arange(n_rows)))
        self._plan = _RowPlan(order, inverse, cust_s, cutoff_s, first, layout_of, gap[layout], previous,
                              level_bounds, None if in_row_order else row_layout, cutoff_s[layout])
        return self._plan


class _Decay:
    """Decayed sums at ``cutoff - lag`` for several half-lives, filled one type at a time.

    Every event feeds one row: its customer's first row with ``cutoff - lag`` after it (events
    after a customer's last row feed nothing). That row is found once for all events; each type
    then takes its own events' share.
    """

    def __init__(self, ctx: PointInTime, half_lives: list[float], lag_ns: int) -> None:
        plan = self.plan = ctx._row_plan()
        n_rows, n_types, index = ctx.n_rows, len(ctx.touchpoints), ctx.index
        self.n_rows, self.half_lives, self.lag_ns = n_rows, half_lives, lag_ns
        self.rates = [math.log(2.0) / (h * NS_PER_DAY) for h in half_lives]
        self.steps = [np.exp(-rate * plan.gap) for rate in self.rates]
        self.outs = [np.empty((n_rows, n_types), order="F") for _ in half_lives]
        # tile the sorted events: before each customer's first row a stretch that feeds nothing
        # (other customers' late events), then each row's own interval
        seen, start = ctx._sorted_positions_of(lag_ns), ctx._sorted_positions_of(_BLOCK_START)
        previous_end = np.zeros(n_rows, dtype=np.int64)
        previous_end[1:] = seen[:-1]
        lo = np.where(plan.first, start, previous_end)
        lengths = np.empty(2 * n_rows + 1, dtype=np.int64)
        lengths[0:-1:2] = lo - previous_end
        lengths[1::2] = seen - lo
        lengths[-1] = index.n_events - (seen[-1] if n_rows else 0)
        row_type = np.int32 if n_rows < 2**31 - 1 else np.int64
        labels = np.full(2 * n_rows + 1, n_rows, dtype=row_type)  # bin n_rows: feeds nothing
        labels[1::2] = plan.layout_of
        self.event_row = np.repeat(labels, lengths)       # layout position fed by each event
        # (events that feed no row get an age >= 0 too: their weights are finite and unused)
        self.at = np.append(plan.cutoff_layout - lag_ns, index.ts.max() if index.n_events else 0)

    def run(self, k: int, positions: np.ndarray, times: np.ndarray) -> None:
        """Fill column ``k`` from the sorted positions of the type's events and their times."""
        plan, n_rows = self.plan, self.n_rows
        event_row = self.event_row[positions].astype(np.intp)
        ns = self.at[event_row]
        ns -= times
        age = ns.astype(np.float64)  # (ns before the cutoff of the row fed)
        del ns
        weights = np.empty_like(age)
        for rate, step, out in zip(self.rates, self.steps, self.outs, strict=True):
            np.multiply(age, -rate, out=weights)
            np.exp(weights, out=weights)
            sums = np.bincount(event_row, weights=weights, minlength=n_rows + 1)
            sums = sums.astype(np.float64, copy=False)  # (int when empty)
            sums[n_rows] = 0.0  # (the "previous" of first rows: they start from nothing)
            for v in range(1, len(plan.level_bounds) - 1):  # level v depends on earlier levels
                block = slice(plan.level_bounds[v], plan.level_bounds[v + 1])
                sums[block] += sums[plan.previous[block]] * step[block]
            if plan.row_layout is None:
                out[:, k] = sums[:n_rows]
            else:
                np.take(sums, plan.row_layout, out=out[:, k], mode="clip")

    def results(self) -> dict[tuple[float, int], np.ndarray]:
        return {(h, self.lag_ns): out for h, out in zip(self.half_lives, self.outs, strict=True)}
