"""Reasons in plain words: which touchpoints pushed a customer's score up.

Per-row LightGBM contributions (TreeSHAP, in log-odds) are grouped by the touchpoint slot of
the feature name (``freq__webinar__30d`` and ``temp__webinar__hl30d`` both belong to
``webinar``; account attributes to their column). The groups that raise the score most become
the reasons, each worded from the group's strongest feature and its value:

>>> describe("freq__webinar__30d", 2, catalog=load_settings().catalog)
'2 webinars in the last 30 days'
>>> describe("recency__sales_visit__days", 120.4, catalog=load_settings().catalog)
'no sales visit for 120 days'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from signals.features.names import parse_feature_name
from signals.modeling.estimators import SignalModel
from signals.schemas import CUSTOMER_ID, CUTOFF
from signals.settings import Touchpoint, load_settings  # noqa: F401  (load_settings: doctest)

__all__ = ["describe", "group_of", "reasons"]

_GROUP_WORDS = {
    "all": "touches",
    "customer": "customer-initiated touches",
    "company": "touches by us",
    "prior": "touches",
    "learned": "touches",
}


def group_of(feature: str) -> str:
    """The reason group of a feature: its touchpoint, ``overall`` for the all-type families,
    or ``attribute:<column>`` for static attributes."""
    name = parse_feature_name(feature)
    if name.family == "static":
        return f"attribute:{name.touchpoint}"
    if name.touchpoint in _GROUP_WORDS:
        return "overall"
    return name.touchpoint


def _days(value: float) -> str:
    return f"{value:.0f}"


def describe(feature: str, value, *, catalog: Mapping[str, Touchpoint]) -> str:
    """One feature and its value in plain words (stable wording, tested)."""
    family, touchpoint, window = parse_feature_name(feature)
    tp = catalog.get(touchpoint)

    def noun(count: float = 1) -> str:
        if tp is not None:
            return tp.noun(touchpoint, count)
        return _GROUP_WORDS.get(touchpoint, touchpoint.replace("_", " "))

    days = window[:-1] if window.endswith("d") and not window.startswith("hl") else window
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if family == "static":
        return f"{touchpoint.replace('_', ' ')} is {value}" if not missing else f"{touchpoint.replace('_', ' ')} unknown"
    if family == "freq":
        n = int(value)
        what = noun(n) if tp is not None else _GROUP_WORDS.get(touchpoint, touchpoint)
        return f"no {noun()} in the last {days} days" if n == 0 and tp is not None else f"{n} {what} in the last {days} days"
    if family == "recency":
        if missing:
            return f"never had a {noun()}" if tp is not None else "never touched"
        if value < 1:
            return f"a {noun()} today" if tp is not None else "touched today"
        return f"no {noun()} for {_days(value)} days" if tp is not None else f"no touch for {_days(value)} days"
    if family == "tenure":
        return "no touch yet" if missing else f"first touch {_days(value)} days ago"
    if family == "overdue":
        return "no usual rhythm yet" if missing else f"quiet for {value:.1f}x the usual gap between touches"
    if family in ("temp", "temp_prior", "temp_learned"):
        half_life = window[2:-1]
        subject = f"{noun()} temperature" if tp is not None else {
            "temp": "touch temperature", "temp_prior": "temperature (prior points)",
            "temp_learned": "temperature (learned points)"}[family]
        return f"{subject} {value:.1f} ({half_life}-day half-life)"
    if family in ("temp_delta", "temp_prior_delta"):
        subject = f"{noun()} temperature" if tp is not None else "touch temperature"
        if abs(value) < 0.05:
            return f"{subject} flat over {days} days"
        return f"{subject} {'up' if value > 0 else 'down'} {abs(value):.1f} over {days} days"
    if family == "surge":
        return f"touch rate in the last {days} days {math.exp(value):.1f}x the usual"
    if family == "freq_change":
        return f"{int(value):+d} touches in the last {days} days vs the {days} days before"
    if family == "freq_ratio":
        return f"touches in the last {days} days at {value:.1f}x the {days} days before"
    if family == "value":
        period = "in total" if window == "total" else f"in the last {days} days"
        return f"{value:,.0f} spent on {noun(2)} {period}"
    return f"{feature} = {value}"


def reasons(
    model: SignalModel,
    X: pd.DataFrame,
    *,
    catalog: Mapping[str, Touchpoint],
    top: int = 3,
) -> pd.DataFrame:
    """The ``top`` reasons that raise each row's score, strongest first.

    Returns ``customer_id``, ``cutoff`` (when ``X`` has them), ``reason_1..top`` (text, empty when
    fewer groups raise the score), ``reason_group_1..top`` and ``reason_logodds_1..top`` (the
    group's summed contribution).
    """
    contrib = model.contributions(X).drop(columns="bias")
    features = list(contrib.columns)
    groups = pd.Index([group_of(f) for f in features])
    unique_groups, group_code = np.unique(groups, return_inverse=True)
    values = contrib.to_numpy()
    membership = np.zeros((len(features), len(unique_groups)))
    membership[np.arange(len(features)), group_code] = 1.0
    by_group = values @ membership
    order = np.argsort(-by_group, axis=1)[:, :top]
    out: dict[str, object] = {}
    if CUSTOMER_ID in X.columns:
        out[CUSTOMER_ID] = X[CUSTOMER_ID].to_numpy()
    if CUTOFF in X.columns:
        out[CUTOFF] = X[CUTOFF].to_numpy()
    raw = X[features]
    for rank in range(top):
        texts, names, logodds = [], [], []
        for i in range(len(X)):
            g = order[i, rank] if rank < order.shape[1] else -1
            if g < 0 or by_group[i, g] <= 0:
                texts.append("")
                names.append("")
                logodds.append(0.0)
                continue
            members = np.flatnonzero(group_code == g)
            best = members[np.argmax(values[i, members])]
            texts.append(describe(features[best], raw.iat[i, best], catalog=catalog))
            names.append(unique_groups[g])
            logodds.append(float(by_group[i, g]))
        out[f"reason_{rank + 1}"] = texts
        out[f"reason_group_{rank + 1}"] = names
        out[f"reason_logodds_{rank + 1}"] = logodds
    return pd.DataFrame(out, index=X.index)
