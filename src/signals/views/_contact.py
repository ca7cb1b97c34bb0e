"""Seed 000's contact rate (顧客接触率), and where more contact stops helping.

:func:`contact_rate`: for every complete calendar month (local time, ``settings.timezone``), the
share of customers touched at least once, overall, by channel and by initiator (company /
customer). The base of a month is every customer first seen before the month starts; every
touch counts, newsletters included (seed 000 lists the mail magazine as a contact).

:func:`dose_response`: the seed warns that more contact is not always better (接触率が高ければ
高いほど良い、ではない). On out-of-time cutoffs, customers are binned by the company-initiated
contacts they got in the last ``views.contact.dose_window_days`` (mass mailings of
``views.ignore_touchpoints`` excluded: they reach everyone), and each bin's later purchase and
churn rates are shown with intervals. It is an association, not an experiment: sales visits go
to the accounts sales already expects to buy or to lose.

>>> import pandas as pd
>>> from signals.settings import load_settings
>>> events = pd.DataFrame({
...     "customer_id": ["a", "a", "b", "c"],
...     "ts": pd.to_datetime(["2025-01-10", "2025-02-03", "2025-01-20", "2025-02-15"], utc=True),
...     "touchpoint": ["call", "webinar", "newsletter", "webinar"],
... })
>>> rate = contact_rate(events, "2025-03-01", load_settings())
>>> rate[(rate["by"] == "all")][["month", "customers", "touched", "share"]].to_dict("records")
[{'month': '2025-01', 'customers': 0, 'touched': 0, 'share': nan}, {'month': '2025-02', 'customers': 2, 'touched': 1, 'share': 0.5}]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals.cutoffs import cutoff_grid
from signals.settings import Settings
from signals.views._history import History, Rows
from signals.views._rates import outcome_table

__all__ = ["company_contacts", "contact_rate", "contact_rate_table", "dose_bins", "dose_response", "month_bounds"]


def month_bounds(history: History) -> np.ndarray:
    """UTC instants (ns) of the local month starts from the first event's month up to ``as_of``.

    Month ``i`` is ``[bounds[i], bounds[i + 1])``; only complete months (ending by ``as_of``) exist.
    """
    first = pd.Timestamp(int(history.index.ts.min()), tz="UTC").tz_convert(history.settings.timezone)
    start = first.tz_localize(None).to_period("M").to_timestamp()
    grid = cutoff_grid(start, history.as_of.tz_convert(history.settings.timezone), frequency="monthly",
                       timezone=history.settings.timezone)
    return grid.as_unit("ns").asi8


def month_labels(history: History, bounds: np.ndarray) -> list[str]:
    """``YYYY-MM`` of each month start (local)."""
    local = pd.DatetimeIndex(bounds).tz_localize("UTC").tz_convert(history.settings.timezone)
    return [f"{t.year:04d}-{t.month:02d}" for t in local]


def _distinct(keys: np.ndarray, n_cells: int, n_customers: int) -> np.ndarray:
    """How many distinct customers each cell holds, given ``cell * n_customers + customer`` keys."""
    if n_cells * n_customers <= 300_000_000:
        seen = np.zeros(n_cells * n_customers, dtype=bool)
        seen[keys] = True
        return seen.reshape(n_cells, n_customers).sum(axis=1)
    return np.bincount(np.unique(keys) // n_customers, minlength=n_cells)


def contact_rate_table(history: History) -> pd.DataFrame:
    """The contact-rate table of ``history`` (see :func:`contact_rate`)."""
    idx, catalog = history.index, history.catalog
    bounds = month_bounds(history)
    n_months, n_cust = len(bounds) - 1, len(idx.customers)
    labels = month_labels(history, bounds)[:-1] if n_months > 0 else []
    seen = history.first_seen_ns
    base = np.searchsorted(np.sort(seen), bounds[:-1], side="left") if n_months > 0 else np.zeros(0, dtype=np.int64)
    month = np.searchsorted(bounds, idx.ts, side="right") - 1
    counted = (month >= 0) & (month < n_months)
    counted[counted] &= seen[idx.cust[counted]] < bounds[month[counted]]
    cust, month, types = idx.cust[counted], month[counted], idx.type_code[counted]
    channels = list(dict.fromkeys(tp.channel for tp in catalog.values()))
    kinds = {
        "all": (["all"], np.zeros(len(idx.touchpoints), dtype=np.int64)),
        "channel": (channels, np.array([channels.index(catalog[t].channel) for t in idx.touchpoints])),
        "initiator": (["customer", "company"],
                      np.array([0 if catalog[t].initiated_by == "customer" else 1 for t in idx.touchpoints])),
    }
    parts = []
    for by, (groups, group_of_type) in kinds.items():
        cell = group_of_type[types] * n_months + month
        touched = _distinct(cell * n_cust + cust, len(groups) * n_months, n_cust).reshape(len(groups), n_months)
        for g, name in enumerate(groups):
            parts.append(pd.DataFrame({"month": labels, "month_start": pd.DatetimeIndex(bounds[:-1]).tz_localize("UTC"),
                                       "by": by, "group": name, "customers": base, "touched": touched[g]}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["month", "month_start", "by", "group", "customers", "touched"])
    table["customers"] = table["customers"].astype(np.int64)
    table["touched"] = table["touched"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["share"] = np.where(table["customers"] > 0, table["touched"] / table["customers"].clip(lower=1), np.nan)
    return table


def contact_rate(events: pd.DataFrame, as_of, settings: Settings, *, customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Share of customers touched per complete month, overall, by channel and by initiator.

    Returns ``month`` (``YYYY-MM``, local), ``month_start`` (UTC), ``by`` (``all`` / ``channel`` /
    ``initiator``), ``group``, ``customers`` (first seen before the month), ``touched`` (of them,
    touched in the month) and ``share`` (NaN for an empty base).
    """
    return contact_rate_table(History(events, as_of, settings, customers=customers))


def company_contacts(history: History, rows: Rows, days: float | None = None) -> np.ndarray:
    """Company-initiated contacts (``views.ignore_touchpoints`` excluded) in ``[T - days, T)`` per row."""
    days = days if days is not None else history.settings.views.contact.dose_window_days
    company = [t for t in history.contact_types if history.catalog[t].initiated_by == "company"]
    return history.count(company, rows, days)


def dose_bins(edges: tuple[int, ...]) -> list[str]:
    """Names of the bins with these lower edges: ``(0, 1, 3, 5) -> ['0', '1-2', '3-4', '5+']``."""
    names = []
    for lo, hi in zip(edges, (*edges[1:], None), strict=True):
        names.append(f"{lo}+" if hi is None else (f"{lo}" if hi == lo + 1 else f"{lo}-{hi - 1}"))
    return names


def dose_response(history: History, rows: Rows, outcomes: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Later purchase and churn rates by bins of company-initiated contacts in the last days.

    ``rows`` should be out-of-time cutoffs (:func:`signals.views.evidence_split`). Returns one row
    per bin: ``contacts`` (the bin), ``rows, customers, share`` and ``purchase_*`` / ``churn_*`` rates
    with 95% intervals (see :func:`signals.views._rates.outcome_table`).
    """
    edges = history.settings.views.contact.dose_bins
    counts = company_contacts(history, rows)
    code = np.searchsorted(np.asarray(edges), counts, side="right") - 1
    outcomes = outcomes if outcomes is not None else history.outcomes(rows)
    table = outcome_table(code, dose_bins(edges), rows.cust, outcomes).rename(columns={"group": "contacts"})
    table.insert(1, "mean_contacts", [counts[code == i].mean() if (code == i).any() else np.nan
                                      for i in range(len(edges))])
    return table
