"""Peers of the feature builders for ``bench_features.py``: the same features, written plainly.

The workload of issue 20: per-type touch counts over 30/90/365 days, days since the last touch of
each type, the 30-day decayed count of each type and the 365-day value of each value-bearing type
(``freq__<type>__{30,90,365}d``, ``recency__<type>__days``, ``temp__<type>__hl30d``,
``value__<type>__365d``), for every ``(customer_id, cutoff)`` row, with ``ts < cutoff``.

- :func:`numpy_peer`: sort the events once by an int64 ``(type, customer, second)`` key and the
  rows once by (customer, cutoff), answer every window with ``np.searchsorted`` on sorted
  queries, carry the decayed counts from each customer's cutoff to the next (exact, no prefix-sum
  cancellation); one task per type on a thread pool. (Touches of one customer and type within
  the same second are not ordered by their sub-second part: exact for whole-second timestamps,
  as simulated.)
- :func:`pandas_peer`: for each cutoff, filter the events to ``ts < cutoff`` and group by
  (customer, type), as a pandas user would.

Both return the :func:`subset_columns` in the cutoffs' row order and agree with
``signals.build_features`` to 1e-9 (``tests/features/test_bench_peers.py``).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from signals.features.spec import FeatureSpec
from signals.features.value import VALUE_ROLES
from signals.schemas import CUSTOMER_ID, CUTOFF, NS_PER_DAY, NS_PER_SECOND, TOUCHPOINT, TS, VALUE

WINDOWS = (30, 90, 365)
HALF_LIFE = 30
VALUE_WINDOW = 365


def subset_spec(spec: FeatureSpec, threads: int | None = 0) -> FeatureSpec:
    """The smallest signals spec that builds the subset (it builds a few more columns too)."""
    update = {"windows_days": WINDOWS, "half_lives_days": (float(HALF_LIFE),), "static_columns": ()}
    if threads is not None:
        update["threads"] = threads
    features = type(spec.features).model_validate(spec.features.model_dump() | update)
    return FeatureSpec(catalog=spec.catalog, features=features,
                       families=("frequency", "recency", "temperature", "value"))


def value_types(spec: FeatureSpec) -> list[str]:
    return [name for name, tp in spec.catalog.items() if tp.role in VALUE_ROLES]


def subset_columns(spec: FeatureSpec) -> list[str]:
    """The subset's feature names, type by type."""
    columns = []
    for name in spec.touchpoints:
        columns += [f"freq__{name}__{w}d" for w in WINDOWS]
        columns += [f"recency__{name}__days", f"temp__{name}__hl{HALF_LIFE}d"]
    columns += [f"value__{name}__{VALUE_WINDOW}d" for name in value_types(spec)]
    return columns


def _ragged(lo: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    ends = np.cumsum(lengths)
    return np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(lo - (ends - lengths), lengths)


def _row_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo[i]:hi[i]].sum()`` for every ``i`` (exact: the elements are summed in order)."""
    lengths = hi - lo
    out = np.zeros(len(lo))
    some = lengths > 0
    if some.any():
        picked = values[_ragged(lo[some], lengths[some])]
        out[some] = np.add.reduceat(picked, np.cumsum(lengths[some]) - lengths[some])
    return out


def numpy_peer(events: pd.DataFrame, cutoffs: pd.DataFrame, spec: FeatureSpec, *, threads: int = 1) -> pd.DataFrame:
    """The subset with NumPy: one sort, ``searchsorted`` per type and window, decay by recurrence.

    The events are sorted once by an int64 ``(type, customer, second)`` key, so each type is one
    slice; the rows are sorted once by (customer, cutoff), so each type's searches run on sorted
    queries. The decayed count of a row adds the touches since the customer's previous cutoff to
    the previous count decayed by the gap (exact, no prefix-sum cancellation). ``events`` and
    ``cutoffs`` are canonical (``check_events`` / ``check_cutoffs``); the event customer ids are
    categorical.
    """
    types = list(spec.touchpoints)
    ids = events[CUSTOMER_ID].cat.categories.astype(str)
    cust = events[CUSTOMER_ID].cat.codes.to_numpy().astype(np.int64)
    ts = events[TS].to_numpy(dtype="datetime64[ns]").view(np.int64)
    tp = events[TOUCHPOINT].cat.codes.to_numpy().astype(np.int64)
    value = events[VALUE].to_numpy(dtype=np.float64)
    n_cust = len(ids) + 1  # the last code stands for customers without events
    row_cust = pd.Index(ids).get_indexer(cutoffs[CUSTOMER_ID].astype(str))
    row_cust = np.where(row_cust < 0, n_cust - 1, row_cust).astype(np.int64)
    cutoff = cutoffs[CUTOFF].to_numpy(dtype="datetime64[ns]").view(np.int64)

    seconds = ts // NS_PER_SECOND
    origin = int(seconds.min()) - 1
    span = int(seconds.max()) - origin + 2
    key = (tp * n_cust + cust) * span + (seconds - origin)
    order = np.argsort(key)                         # the one sort of the events
    key, ts, value = key[order], ts[order], value[order]
    bounds = np.searchsorted(key, np.arange(len(types) + 1) * n_cust * span)

    rows = np.lexsort((cutoff, row_cust))           # the one sort of the rows
    rc, rt = row_cust[rows], cutoff[rows]
    n_rows = len(rows)
    first = np.ones(n_rows, dtype=bool)
    first[1:] = rc[1:] != rc[:-1]
    rank = np.arange(n_rows) - np.maximum.accumulate(np.where(first, np.arange(n_rows), 0))
    levels = [np.flatnonzero(rank == r) for r in range(1, int(rank.max(initial=0)) + 1)]
    rel = np.clip(rt // NS_PER_SECOND - origin, 0, span - 1)
    rate = math.log(2.0) / (HALF_LIFE * NS_PER_DAY)
    gap = np.zeros(n_rows)
    gap[1:] = np.diff(rt)
    step = np.exp(-rate * gap)
    value_names = set(value_types(spec))

    def one_type(k: int) -> dict[str, np.ndarray]:
        keys, times = key[bounds[k]:bounds[k + 1]], ts[bounds[k]:bounds[k + 1]]
        base = (k * n_cust + rc) * span

        def before(days: int) -> np.ndarray:
            return np.searchsorted(keys, base + np.maximum(rel - days * 86_400, 0))

        start, now = np.searchsorted(keys, base), before(0)
        name = types[k]
        out = {f"freq__{name}__{w}d": now - before(w) for w in WINDOWS}
        has = now > start
        recency = np.full(n_rows, np.nan)
        recency[has] = (rt[has] - times[now[has] - 1]) / NS_PER_DAY
        out[f"recency__{name}__days"] = recency
        previous = np.where(first, start, np.concatenate([[0], now[:-1]]))  # touches since the last row
        lengths = now - previous
        row = np.repeat(np.arange(n_rows), lengths)
        weights = np.exp(-rate * (rt[row] - times[_ragged(previous, lengths)]))
        temp = np.bincount(row, weights=weights, minlength=n_rows).astype(np.float64)
        for level in levels:                        # rows of rank r follow their rank r - 1 row
            temp[level] += temp[level - 1] * step[level]
        out[f"temp__{name}__hl{HALF_LIFE}d"] = temp
        if name in value_names:
            spent = value[bounds[k]:bounds[k + 1]]
            out[f"value__{name}__{VALUE_WINDOW}d"] = _row_sums(spent, before(VALUE_WINDOW), now)
        return out

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(one_type, range(len(types))))
    else:
        parts = [one_type(k) for k in range(len(types))]
    back = np.empty(n_rows, dtype=np.int64)
    back[rows] = np.arange(n_rows)                  # to the cutoffs' row order
    columns = {name: values[back] for part in parts for name, values in part.items()}
    return pd.DataFrame({CUSTOMER_ID: cutoffs[CUSTOMER_ID].array, CUTOFF: cutoffs[CUTOFF].array,
                         **{c: columns[c] for c in subset_columns(spec)}}, copy=False)


def pandas_peer(events: pd.DataFrame, cutoffs: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The subset with pandas: for each cutoff, filter ``ts < cutoff`` and group by (customer, type).

    ``events`` and ``cutoffs`` are canonical (``check_events`` / ``check_cutoffs``).
    """
    types = list(spec.touchpoints)
    valued = value_types(spec)
    frame = pd.DataFrame({
        CUSTOMER_ID: events[CUSTOMER_ID].astype(str).astype("category"),
        TS: events[TS], TOUCHPOINT: events[TOUCHPOINT], VALUE: events[VALUE],
    })
    day = pd.Timedelta(days=1)
    parts = []
    for cutoff, rows in cutoffs.groupby(CUTOFF, sort=True):
        ids = pd.Index(rows[CUSTOMER_ID].astype(str).unique(), name=CUSTOMER_ID)
        past = frame[frame[TS] < cutoff]
        age = cutoff - past[TS]

        def table(subset: pd.DataFrame, column: str | None, how: str, fill, ids=ids) -> pd.DataFrame:
            grouped = subset.groupby([CUSTOMER_ID, TOUCHPOINT], observed=True)
            result = grouped.size() if column is None else getattr(grouped[column], how)()
            return result.unstack(TOUCHPOINT).reindex(index=ids, columns=types).fillna(fill)

        out = {}
        for w in WINDOWS:
            counts = table(past[age <= w * day], None, "size", 0)
            for name in types:
                out[f"freq__{name}__{w}d"] = counts[name].astype(np.int64)
        last = table(past, TS, "max", pd.NaT)
        temp = table(past.assign(weight=0.5 ** ((age / day) / HALF_LIFE)), "weight", "sum", 0.0)
        spent = table(past[(age <= VALUE_WINDOW * day) & past[TOUCHPOINT].isin(valued)], VALUE, "sum", 0.0)
        for name in types:
            out[f"recency__{name}__days"] = (cutoff - last[name]) / day
            out[f"temp__{name}__hl{HALF_LIFE}d"] = temp[name]
        for name in valued:
            out[f"value__{name}__{VALUE_WINDOW}d"] = spent[name]
        parts.append(pd.DataFrame(out, index=ids).reset_index().assign(**{CUTOFF: cutoff}))
    result = pd.concat(parts, ignore_index=True)
    keys = cutoffs[[CUSTOMER_ID, CUTOFF]].assign(**{CUSTOMER_ID: cutoffs[CUSTOMER_ID].astype(str)})
    merged = keys.merge(result, on=[CUSTOMER_ID, CUTOFF], how="left")
    return merged[[CUSTOMER_ID, CUTOFF, *subset_columns(spec)]]
