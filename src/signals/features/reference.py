"""A plain, obviously-correct reference implementation of every feature (slow on purpose).

For each distinct cutoff it filters the events to ``ts < cutoff`` and groups them by customer and
touchpoint with ordinary pandas operations. It shares no code with the fast builders except the
naming helpers, and exists to check them: tests compare the two on random data to 1e-9, and
``benchmarks/bench_features.py`` reports how much faster the fast path is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals.features.names import feature_name, half_life_label, window_label
from signals.features.spec import FeatureSpec
from signals.schemas import CUSTOMER_ID, CUTOFF, TOUCHPOINT, TS, VALUE, check_cutoffs, check_events

__all__ = ["reference_features"]

DAY = pd.Timedelta(days=1)


def _per_customer(past: pd.DataFrame, ids: pd.Index, fn) -> pd.Series:
    """Apply ``fn`` to the events of each customer (grouped), aligned on ``ids``."""
    if past.empty:
        return pd.Series(np.nan, index=ids)
    return past.groupby(CUSTOMER_ID, observed=True).apply(fn, include_groups=False).reindex(ids)


def _reference_at(events: pd.DataFrame, ids: pd.Index, cutoff: pd.Timestamp, spec: FeatureSpec) -> pd.DataFrame:
    fs = spec.features
    past = events[(events[TS] < cutoff) & events[CUSTOMER_ID].isin(ids)].copy()
    past["age"] = cutoff - past[TS]  # a Timedelta, > 0
    out: dict[str, pd.Series] = {}
    types = list(spec.catalog)
    initiator = {name: tp.initiated_by for name, tp in spec.catalog.items()}

    def count(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby(CUSTOMER_ID, observed=True).size().reindex(ids, fill_value=0)

    def in_window(frame: pd.DataFrame, newest_days: float, oldest_days: float) -> pd.DataFrame:
        """Events with cutoff - oldest <= ts < cutoff - newest."""
        return frame[(frame["age"] <= oldest_days * DAY) & (frame["age"] > newest_days * DAY)]

    if "frequency" in spec.families:
        for w in fs.windows_days:
            window = in_window(past, 0, w)
            out[feature_name("freq", "all", window_label(w))] = count(window)
            for name in types:
                out[feature_name("freq", name, window_label(w))] = count(window[window[TOUCHPOINT] == name])
            for group in ("customer", "company"):
                members = [n for n in types if initiator[n] == group]
                out[feature_name("freq", group, window_label(w))] = count(window[window[TOUCHPOINT].isin(members)])

    if "recency" in spec.families:
        for name in types:
            of_type = past[past[TOUCHPOINT] == name]
            out[feature_name("recency", name, "days")] = of_type.groupby(CUSTOMER_ID, observed=True)["age"].min().reindex(ids) / DAY
        by_customer = past.groupby(CUSTOMER_ID, observed=True)
        recency = by_customer["age"].min().reindex(ids) / DAY
        out[feature_name("recency", "all", "days")] = recency
        out[feature_name("tenure", "all", "days")] = by_customer["age"].max().reindex(ids) / DAY

        def usual_gap(frame: pd.DataFrame) -> float:
            if len(frame) < 2:
                return np.nan
            span = (frame[TS].max() - frame[TS].min()) / DAY
            return span / (len(frame) - 1) if span > 0 else np.nan

        out[feature_name("overdue", "all", "ratio")] = recency / _per_customer(past, ids, usual_gap)

    def decayed(frame: pd.DataFrame, at: pd.Timestamp, half_life: float) -> pd.DataFrame:
        """Decayed counts per (customer, type) at instant ``at``."""
        before = frame[frame[TS] < at]
        if before.empty:
            return pd.DataFrame(0.0, index=ids, columns=types)
        weight = 0.5 ** (((at - before[TS]) / DAY) / half_life)
        table = weight.groupby([before[CUSTOMER_ID].astype(str), before[TOUCHPOINT].astype(str)]).sum()
        return table.unstack(fill_value=0.0).reindex(index=ids, columns=types, fill_value=0.0).fillna(0.0)

    priors = pd.Series({name: tp.prior_points for name, tp in spec.catalog.items()})
    if "temperature" in spec.families:
        for h in fs.half_lives_days:
            table = decayed(past, cutoff, h)
            for name in types:
                out[feature_name("temp", name, half_life_label(h))] = table[name]
            out[feature_name("temp", "all", half_life_label(h))] = table.sum(axis=1)
            out[feature_name("temp_prior", "all", half_life_label(h))] = (table * priors[types]).sum(axis=1)
        if spec.learned_points is not None:
            h = spec.learned_half_life_days
            table = decayed(past, cutoff, h)
            learned = pd.Series({n: spec.learned_points.get(n, 0.0) for n in types})
            out[feature_name("temp_learned", "all", half_life_label(h))] = (table * learned).sum(axis=1)

    if "trend" in spec.families:
        h = fs.trend_half_life_days
        now = decayed(past, cutoff, h)
        for lag in fs.trend_lags_days:
            delta = now - decayed(past, cutoff - lag * DAY, h)
            for name in types:
                out[feature_name("temp_delta", name, window_label(lag))] = delta[name]
            out[feature_name("temp_delta", "all", window_label(lag))] = delta.sum(axis=1)
            out[feature_name("temp_prior_delta", "all", window_label(lag))] = (delta * priors[types]).sum(axis=1)
        r, b = fs.surge_recent_days, fs.surge_baseline_days
        customer_types = [n for n in types if initiator[n] == "customer"]
        for group, frame in (("all", past), ("customer", past[past[TOUCHPOINT].isin(customer_types)])):
            recent = count(in_window(frame, 0, r))
            earlier = count(in_window(frame, r, b))
            rate_recent = (recent + r / b) / r
            rate_earlier = (earlier + (b - r) / b) / (b - r)
            out[feature_name("surge", group, window_label(r))] = np.log(rate_recent) - np.log(rate_earlier)
        f = fs.falling_window_days
        last = count(in_window(past, 0, f))
        before = count(in_window(past, f, 2 * f))
        out[feature_name("freq_change", "all", window_label(f))] = last - before
        out[feature_name("freq_ratio", "all", window_label(f))] = (last + 1.0) / (before + 1.0)

    if "value" in spec.families:
        for name, tp in spec.catalog.items():
            if not (tp.role in ("purchase", "renewal", "refund") if tp.valued is None else tp.valued):
                continue  # no value features (valued: false, or not set and no money role)
            of_type = past[past[TOUCHPOINT] == name]
            for w in (*fs.windows_days, None):
                label = "total" if w is None else window_label(w)
                window = of_type if w is None else in_window(of_type, 0, w)
                grouped = window.groupby(CUSTOMER_ID, observed=True)[VALUE]
                out[feature_name("value", name, label)] = grouped.sum().reindex(ids, fill_value=0.0)
                if tp.valued is not True:  # sums only (a money role, valued not set)
                    continue
                out[feature_name("value_mean", name, label)] = grouped.mean().reindex(ids)
                # the last moment's touches (the same second): the largest value
                second = window[TS].dt.floor("s")
                latest = window[second == second.groupby(window[CUSTOMER_ID], observed=True).transform("max")]
                out[feature_name("value_last", name, label)] = (
                    latest.groupby(CUSTOMER_ID, observed=True)[VALUE].max().reindex(ids))
        roles = {name: tp.role for name, tp in spec.catalog.items()}
        if "refund" in roles.values():  # money kept: purchases and renewals minus refunds
            money = past[past[TOUCHPOINT].astype(str).map(roles).isin(["purchase", "renewal", "refund"])].copy()
            money["signed"] = np.where(money[TOUCHPOINT].astype(str).map(roles) == "refund", -money[VALUE], money[VALUE])
            for w in fs.windows_days:
                window = in_window(money, 0, w)
                out[feature_name("value_net", "all", window_label(w))] = (
                    window.groupby(CUSTOMER_ID, observed=True)["signed"].sum().reindex(ids, fill_value=0.0))
            out[feature_name("value_net", "all", "total")] = (
                money.groupby(CUSTOMER_ID, observed=True)["signed"].sum().reindex(ids, fill_value=0.0))
    return pd.DataFrame(out, index=ids)


def reference_features(events: pd.DataFrame, cutoffs: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The features of :func:`signals.features.build_features` (without ``static``), computed plainly.

    Same rows (the cutoffs' order) and the same columns; use it on small data.
    """
    if "static" in spec.families:
        raise ValueError("the reference implementation does not cover the static family")
    events = check_events(events, spec.touchpoints)
    events[CUSTOMER_ID] = events[CUSTOMER_ID].astype(str)
    cutoffs = check_cutoffs(cutoffs)
    cutoffs[CUSTOMER_ID] = cutoffs[CUSTOMER_ID].astype(str)
    parts = []
    for cutoff, group in cutoffs.groupby(CUTOFF, sort=True):
        ids = pd.Index(group[CUSTOMER_ID].unique(), name=CUSTOMER_ID)
        features = _reference_at(events, ids, cutoff, spec)
        parts.append(features.reset_index().assign(**{CUTOFF: cutoff}))
    result = pd.concat(parts, ignore_index=True)
    return cutoffs[[CUSTOMER_ID, CUTOFF]].merge(result, on=[CUSTOMER_ID, CUTOFF], how="left")
