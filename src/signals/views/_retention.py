"""Seed 004's retention and stickiness: cohort tables and the retention rate per month.

A customer's **cohort** is the local calendar month it became a customer: its first purchase or
renewal (the churn label's ``activity_roles``; ``views.retention.cohort: first_seen`` uses the
first touch instead). Its status is read at the end of each later month, with the churn label's
meaning of *active* (:meth:`signals.views._history.History.active`):

- **contractual**: an active subscriber (the last purchase / renewal / cancellation before the
  instant is a purchase or renewal);
- **non-contractual**: at least one activity event in the lookback before the instant
  (``views.retention.lookback_days``, default ``labels.churn.lookback_days``).

:func:`cohort_table` gives, for cohort ``c`` and ``k`` months since (``k = 0`` is the cohort's own
month), the customers of ``c`` active at the end of month ``c + k`` over the cohort's size;
cells whose month has not ended by ``as_of`` are NaN. :func:`retention_by_month` gives, for each
complete calendar month, the share of the customers active at its start that are still active
at its end.

>>> import pandas as pd
>>> from signals.settings import load_settings
>>> events = pd.DataFrame({
...     "customer_id": ["a", "a", "b", "b", "c"],
...     "ts": pd.to_datetime(["2025-01-05", "2025-02-10", "2025-01-20", "2025-03-03", "2025-02-01"], utc=True),
...     "touchpoint": ["purchase", "cancellation", "purchase", "cancellation", "purchase"],
... })
>>> table = cohort_table(events, "2025-04-01", load_settings())
>>> table.pivot(index="cohort", columns="months_since", values="retained").fillna(-1).astype(int).to_dict("index")
{'2025-01': {0: 2, 1: 1, 2: 0}, '2025-02': {0: 1, 1: 1, 2: -1}}
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from signals.features.window import ragged_ranges
from signals.settings import Settings
from signals.views._contact import month_bounds, month_labels
from signals.views._history import History, Rows

__all__ = ["MODES", "cohort_retention", "cohort_table", "retention_by_month", "retention_months", "status_by_month"]

MODES: tuple[str, ...] = ("contractual", "non_contractual")
Mode = Literal["contractual", "non_contractual"]


def status_by_month(history: History, mode: Mode) -> tuple[np.ndarray, np.ndarray]:
    """``(bounds, active)``: local month starts up to ``as_of`` (UTC ns) and, per bound and customer
    code, whether the customer is active then (False before it was first seen)."""
    cache = history.__dict__.setdefault("_status", {})
    if mode not in cache:
        bounds = month_bounds(history)
        n_cust = len(history.customer_ids)
        cust = np.tile(np.arange(n_cust), len(bounds))
        at = np.repeat(bounds, n_cust)
        active = history.active(Rows(cust, at), mode=mode).reshape(len(bounds), n_cust)
        cache[mode] = (bounds, active)
    return cache[mode]


def _cohort_instants(history: History) -> np.ndarray:
    """When each customer joins its cohort (UTC ns; int64 max = never before ``as_of``)."""
    if history.settings.views.retention.cohort == "first_seen":
        return history.first_seen_ns
    paying = history.events_of(history.role_types(*history.settings.labels.churn.activity_roles))
    has = paying.block[1:] > paying.block[:-1]
    first = paying.ts[np.minimum(paying.block[:-1], max(paying.n_events - 1, 0))] if paying.n_events else \
        np.zeros(len(has), dtype=np.int64)
    return np.where(has, first, np.iinfo(np.int64).max)


def cohort_retention(history: History, mode: Mode) -> pd.DataFrame:
    """The cohort table of ``history`` (see :func:`cohort_table`)."""
    bounds, active = status_by_month(history, mode)
    n_months = len(bounds) - 1
    labels = month_labels(history, bounds)
    joined = _cohort_instants(history)
    cohort = np.searchsorted(bounds, joined, side="right") - 1
    member = (cohort >= 0) & (cohort < n_months)
    cust, cohort = np.flatnonzero(member), cohort[member]
    max_k = history.settings.views.retention.max_months
    sizes = np.bincount(cohort, minlength=max(n_months, 0))
    cells = np.minimum(n_months - cohort, max_k + 1)          # observed months since, per customer
    k = ragged_ranges(np.zeros(len(cust), dtype=np.int64), cells)
    c_rep, cust_rep = np.repeat(cohort, cells), np.repeat(cust, cells)
    retained = active[c_rep + k + 1, cust_rep]
    width = min(max_k, max(n_months - 1, 0)) + 1
    counts = np.bincount(c_rep * width + k, weights=retained, minlength=max(n_months, 0) * width)
    records = []
    for c in np.flatnonzero(sizes):
        for kk in range(width):
            observed = c + kk < n_months
            records.append({"cohort": labels[c], "cohort_size": int(sizes[c]), "months_since": kk,
                            "retained": int(counts[c * width + kk]) if observed else np.nan})
    table = pd.DataFrame(records, columns=["cohort", "cohort_size", "months_since", "retained"])
    table["rate"] = table["retained"] / table["cohort_size"]
    table["mode"] = mode
    return table


def cohort_table(events: pd.DataFrame, as_of, settings: Settings, *, mode: Mode | None = None,
                 customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cohort retention: one row per (cohort month, months since), ``mode`` default ``labels.churn.mode``.

    Columns: ``cohort`` (``YYYY-MM``, local), ``cohort_size``, ``months_since`` (0 ..
    ``views.retention.max_months``), ``retained`` (active at the end of that month; NaN when the
    month has not ended by ``as_of``), ``rate``, ``mode``.
    """
    history = History(events, as_of, settings, customers=customers)
    return cohort_retention(history, mode or settings.labels.churn.mode)


def retention_months(history: History, mode: Mode) -> pd.DataFrame:
    """Per complete calendar month: active at its start, still active at its end, and the rate."""
    bounds, active = status_by_month(history, mode)
    labels = month_labels(history, bounds)
    start, end = active[:-1], active[1:]
    at_start = start.sum(axis=1)
    kept = (start & end).sum(axis=1)
    table = pd.DataFrame({"month": labels[:-1], "active_at_start": at_start, "still_active": kept,
                          "active_at_end": end.sum(axis=1)})
    with np.errstate(invalid="ignore", divide="ignore"):
        table["rate"] = np.where(at_start > 0, kept / np.maximum(at_start, 1), np.nan)
    table["mode"] = mode
    return table


def retention_by_month(events: pd.DataFrame, as_of, settings: Settings, *, mode: Mode | None = None,
                       customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Monthly retention rate: of the customers active at a month's start, the share still active at its end.

    Columns: ``month``, ``active_at_start``, ``still_active``, ``active_at_end``, ``rate``, ``mode``.
    """
    history = History(events, as_of, settings, customers=customers)
    return retention_months(history, mode or settings.labels.churn.mode)
