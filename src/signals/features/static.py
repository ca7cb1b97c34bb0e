"""Static customer attributes from the customers table (``static__<column>__attr``).

Attributes must not change over time in a way that reveals the future (a "churned" flag written
after the fact would leak); only use attributes known when the customer was created. Text
columns become categoricals; numbers stay numbers; datetime columns (``first_seen``) become
``days since`` at each cutoff, NaN when the date is not before the cutoff, so a future date never
shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals.features._context import PointInTime
from signals.features.names import feature_name
from signals.features.spec import FeatureSpec
from signals.schemas import CUSTOMER_ID, NS_PER_DAY, to_utc

__all__ = ["compute_static"]


def compute_static(ctx: PointInTime, spec: FeatureSpec, customers: pd.DataFrame | None) -> dict[str, object]:
    """Static attribute features in ``ctx`` row order (values may be pandas Categoricals)."""
    if not spec.static_columns:
        return {}
    if customers is None:
        raise ValueError(f"the feature spec needs static columns {list(spec.static_columns)}: pass a customers table")
    missing = [c for c in (CUSTOMER_ID, *spec.static_columns) if c not in customers.columns]
    if missing:
        raise ValueError(f"customers table is missing column(s) {missing}")
    table = customers.assign(**{CUSTOMER_ID: customers[CUSTOMER_ID].astype(str)})
    if table[CUSTOMER_ID].duplicated().any():
        raise ValueError("customers table has duplicate customer_id values")
    table = table.set_index(CUSTOMER_ID)
    where = table.index.get_indexer(ctx.index.customers[ctx.rows.cust])
    found = where >= 0
    out: dict[str, object] = {}
    for column in spec.static_columns:
        series = table[column]
        name = feature_name("static", column, "attr")
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            stamp = to_utc(series, what=f"customers.{column}").to_numpy(dtype="datetime64[ns]").view(np.int64)
            days = np.full(ctx.n_rows, np.nan)
            known = found & (stamp[np.where(found, where, 0)] < ctx.cutoff)
            days[known] = (ctx.cutoff[known] - stamp[where[known]]) / NS_PER_DAY
            out[name] = days
        elif pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            values = np.full(ctx.n_rows, np.nan)
            values[found] = series.to_numpy(dtype=np.float64)[where[found]]
            out[name] = values
        else:
            categories = pd.Index(sorted(series.dropna().astype(str).unique()))
            codes = np.full(ctx.n_rows, -1, dtype=np.int64)
            codes[found] = categories.get_indexer(series.astype(str).to_numpy()[where[found]])
            codes[found & series.isna().to_numpy()[np.where(found, where, 0)]] = -1
            out[name] = pd.Categorical.from_codes(codes, categories=categories)
    return out
