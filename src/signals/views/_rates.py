"""Outcome rates per group with intervals that respect repeated customers.

The evidence tables count rows (a customer at a cutoff); one customer appears at several cutoffs,
and its rows are not independent. :func:`rates_by_group` therefore gives each rate a **Wilson
score interval at the effective sample size** ``n / deff``, where the design effect ``deff`` of a
ratio estimator over customer clusters is

    deff = sum_i (y_i - p * n_i) ** 2 / (p * (1 - p) * sum_i n_i)      (at least 1)

with ``n_i`` the customer's rows and ``y_i`` its positives in the group (Kish). With one row per
customer ``deff = 1`` and the interval is the plain Wilson interval; zero or all positives still
give a sensible interval (Wilson never collapses to a point).

>>> wilson_interval(5, 10)
(0.5, 0.2366, 0.7634)
>>> table = rates_by_group(np.array([0, 0, 0, 1, 1]), ["a", "b"], np.array([0, 1, 2, 3, 4]),
...                        np.array([1.0, 0.0, np.nan, 0.0, 0.0]))
>>> table[["group", "rows", "positives", "rate"]].to_dict("records")
[{'group': 'a', 'rows': 2, 'positives': 1, 'rate': 0.5}, {'group': 'b', 'rows': 2, 'positives': 0, 'rate': 0.0}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["Z95", "outcome_table", "rates_by_group", "wilson_interval"]

Z95 = 1.959963984540054


def _wilson(p: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        z2n = z * z / n
        center = (p + z2n / 2) / (1 + z2n)
        half = z * np.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    return center - half, center + half


def wilson_interval(positives: float, n: float, z: float = Z95) -> tuple[float, float, float]:
    """Rate and Wilson score interval of ``positives`` out of ``n`` independent trials (rounded to 4 places)."""
    p = positives / n
    low, high = _wilson(np.array([p]), np.array([float(n)]), z)
    return round(float(p), 4), round(float(low[0]), 4), round(float(high[0]), 4)


def rates_by_group(
    group: np.ndarray,
    names: Sequence[str],
    customer: np.ndarray,
    outcome: np.ndarray,
    *,
    z: float = Z95,
) -> pd.DataFrame:
    """Rate of ``outcome`` per group with a customer-clustered Wilson interval (see the module docstring).

    Parameters
    ----------
    group : int array
        Group code of each row (``-1``: in no group).
    names : sequence of str
        The group names, by code.
    customer : int array
        Customer code of each row (rows of one customer are one cluster).
    outcome : float array
        1 / 0, or NaN where the row is not in the outcome's population (not eligible).

    Returns
    -------
    pd.DataFrame
        One row per group, in code order: ``group, rows, customers, positives, rate, low, high,
        deff`` (rate and interval NaN for a group without eligible rows).
    """
    group = np.asarray(group, dtype=np.int64)
    customer = np.asarray(customer, dtype=np.int64)
    outcome = np.asarray(outcome, dtype=np.float64)
    use = (group >= 0) & ~np.isnan(outcome)
    n_groups = len(names)
    span = int(customer.max()) + 1 if len(customer) else 1
    clusters, inverse = np.unique(group[use] * span + customer[use], return_inverse=True)
    n_i = np.bincount(inverse, minlength=len(clusters)).astype(np.float64)
    y_i = np.bincount(inverse, weights=outcome[use], minlength=len(clusters))
    g_i = clusters // span
    rows = np.bincount(g_i, weights=n_i, minlength=n_groups)
    positives = np.bincount(g_i, weights=y_i, minlength=n_groups)
    customers = np.bincount(g_i, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = positives / rows
        resid = np.bincount(g_i, weights=(y_i - p[g_i] * n_i) ** 2, minlength=n_groups)
        deff = np.where((p > 0) & (p < 1), resid / (p * (1 - p) * rows), 1.0)
    deff = np.maximum(np.nan_to_num(deff, nan=1.0), 1.0)
    low, high = _wilson(p, rows / deff, z)
    return pd.DataFrame({
        "group": list(names),
        "rows": rows.astype(np.int64),
        "customers": customers.astype(np.int64),
        "positives": positives.astype(np.int64),
        "rate": p,
        "low": low,
        "high": high,
        "deff": deff,
    })


def outcome_table(
    group: np.ndarray,
    names: Sequence[str],
    customer: np.ndarray,
    outcomes: Mapping[str, np.ndarray],
    *,
    z: float = Z95,
) -> pd.DataFrame:
    """Rows, customers and, for every outcome, its eligible rows, rate and interval per group.

    Columns: ``group, rows, customers, share`` (of all grouped rows), then per outcome ``o``:
    ``o_rows`` (eligible rows), ``o_rate``, ``o_low``, ``o_high`` (see :func:`rates_by_group`).
    """
    group = np.asarray(group, dtype=np.int64)
    everyone = rates_by_group(group, names, customer, np.zeros(len(group)), z=z)
    table = everyone[["group", "rows", "customers"]].copy()
    table["share"] = table["rows"] / max(int(table["rows"].sum()), 1)
    for name, values in outcomes.items():
        rates = rates_by_group(group, names, customer, values, z=z)
        table[f"{name}_rows"] = rates["rows"].to_numpy()
        for column in ("rate", "low", "high"):
            table[f"{name}_{column}"] = rates[column].to_numpy()
    return table
