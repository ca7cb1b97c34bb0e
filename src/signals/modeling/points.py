"""Learned points (配点): what one more touch of each type, happening now, is worth.

For each reference row (a customer at a cutoff) and each touchpoint type, one touch of that type
is added one second before the cutoff and **every feature is rebuilt by the same builders** (counts,
recency, decayed sums, trend, value all move together, consistently by construction). The
model's log-odds change is that touch's effect on that customer; the average over the reference
rows is the type's effect now.

Scale rule (to the priors' human scale): ``points_k = sign * effect_k * s`` with
``s = sum_k |prior_k| / sum_k |effect_k|``, so the learned table has the same total absolute
points as the hand-set one and reads in the same units (a seminar worth 10, ...). ``sign`` is +1
for purchase (a touch that raises the chance to buy earns points) and -1 for churn (a touch that
lowers churn risk earns points: the article's temperature falls before churn). The intervals
resample reference customers (the model is held fixed: they show how much the effect varies
across customers, not refitting noise).

Temperature with the learned points, ``sum_k points_k * temp_k(h)``, is a score of its own; its
half-life ``h`` is chosen on validation rows (:func:`choose_half_life`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals.features.matrix import build_features
from signals.features.names import half_life_label
from signals.features.spec import FeatureSpec
from signals.features.window import (
    EventIndex,
    end_of_known,
    index_events,
    index_rows,
    ragged_ranges,
)
from signals.modeling.estimators import SignalModel
from signals.modeling.metrics import roc_auc
from signals.schemas import CUSTOMER_ID, CUTOFF, NS_PER_SECOND, SOURCE, TOUCHPOINT, TS, VALUE

__all__ = ["TASK_SIGN", "choose_half_life", "learned_temperature", "points_table", "touch_effects"]

TASK_SIGN = {"purchase": 1.0, "churn": -1.0}
INJECT_BEFORE_NS = NS_PER_SECOND


def _typical_values(events: pd.DataFrame, spec: FeatureSpec) -> dict[str, float]:
    """The median positive value of each value-bearing type (the amount an injected touch carries)."""
    out = {}
    for name, tp in spec.catalog.items():
        if tp.role in ("purchase", "renewal"):
            values = events.loc[(events[TOUCHPOINT] == name) & (events[VALUE] > 0), VALUE]
            out[name] = float(values.median()) if len(values) else 0.0
    return out


def touch_effects(
    model: SignalModel,
    events: pd.DataFrame,
    reference: pd.DataFrame,
    spec: FeatureSpec,
    *,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Log-odds change of ``model`` when one touch of each type is added just before the cutoff.

    Parameters
    ----------
    events : canonical events
    reference : ``(customer_id, cutoff)`` rows to average over
    spec : the model's feature spec

    Returns
    -------
    pd.DataFrame
        One row per reference row, one column per touchpoint type (raw log-odds change).
    """
    types = list(spec.touchpoints)
    index, rows = index_rows(index_events(events, types), reference[[CUSTOMER_ID, CUTOFF]])
    start = index.block[rows.cust]
    end = end_of_known(index, rows.cust, rows.cutoff)
    lengths = end - start
    history = ragged_ranges(start, lengths)
    owner = np.repeat(np.arange(len(rows)), lengths)
    values = _typical_values(events, spec)
    n_ref, n_var = len(rows), len(types) + 1

    parts, ids, cutoffs = [], [], []
    for variant in range(n_var):  # variant 0: as is; variant v: one more touch of types[v - 1]
        vid = owner * n_var + variant
        frame = {CUSTOMER_ID: vid, TS: index.ts[history], TOUCHPOINT: index.type_code[history], VALUE: index.value[history]}
        if variant:
            name = types[variant - 1]
            extra = {CUSTOMER_ID: np.arange(n_ref) * n_var + variant, TS: rows.cutoff - INJECT_BEFORE_NS,
                     TOUCHPOINT: np.full(n_ref, variant - 1), VALUE: np.full(n_ref, values.get(name, 0.0))}
            frame = {k: np.concatenate([frame[k], extra[k]]) for k in frame}
        parts.append(frame)
        ids.append(np.arange(n_ref) * n_var + variant)
        cutoffs.append(rows.cutoff)
    code = np.concatenate([p[CUSTOMER_ID] for p in parts])
    what_if = pd.DataFrame({
        CUSTOMER_ID: pd.Categorical.from_codes(code, categories=[str(i) for i in range(n_ref * n_var)]),
        TS: pd.to_datetime(np.concatenate([p[TS] for p in parts]), utc=True),
        TOUCHPOINT: pd.Categorical.from_codes(np.concatenate([p[TOUCHPOINT] for p in parts]).astype(np.int16), categories=types),
        VALUE: np.concatenate([p[VALUE] for p in parts]),
        SOURCE: pd.Categorical(["what-if"])[np.zeros(len(code), dtype=int)],
    })
    what_if_cutoffs = pd.DataFrame({
        CUSTOMER_ID: np.concatenate(ids).astype(str),
        CUTOFF: pd.to_datetime(np.concatenate(cutoffs), utc=True),
    })
    what_if_customers = None
    if customers is not None and spec.static_columns:
        original = index.customers[rows.cust]
        table = customers.assign(**{CUSTOMER_ID: customers[CUSTOMER_ID].astype(str)}).set_index(CUSTOMER_ID)
        picked = table.reindex(np.tile(np.asarray(original), n_var)).reset_index(drop=True)
        picked[CUSTOMER_ID] = np.concatenate(ids).astype(str)
        what_if_customers = picked
    X = build_features(what_if, what_if_cutoffs, spec, customers=what_if_customers)
    raw = model.decision_function(X).reshape(n_var, n_ref)
    effects = raw[1:] - raw[0]
    return pd.DataFrame(effects.T, columns=types, index=reference.index)


def points_table(
    effects: pd.DataFrame,
    groups,
    spec: FeatureSpec,
    *,
    task: str,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """The learned points table next to the priors (see the module docstring for the scale rule).

    Returns one row per touchpoint: channel, initiated_by, prior_points, learned_points, the
    bootstrap interval (``low``, ``high``), ``effect_logodds`` (the raw mean log-odds change) and
    ``scale`` (points per unit of signed log-odds).
    """
    sign = TASK_SIGN[task]
    types = list(effects.columns)
    priors = np.array([spec.catalog[t].prior_points for t in types])
    mean = effects.mean().to_numpy()
    signed = sign * mean
    total = np.abs(signed).sum()
    scale = np.abs(priors).sum() / total if total > 0 else 0.0
    codes, uniques = pd.factorize(np.asarray(groups))
    rng = np.random.default_rng(seed)
    matrix = effects.to_numpy()
    draws = np.empty((rounds, len(types)))
    for b in range(rounds):
        weights = np.bincount(rng.integers(0, len(uniques), len(uniques)), minlength=len(uniques))[codes]
        draws[b] = weights @ matrix / weights.sum()
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(sign * draws * scale, [alpha, 1.0 - alpha], axis=0)
    return pd.DataFrame({
        "touchpoint": types,
        "channel": [spec.catalog[t].channel for t in types],
        "initiated_by": [spec.catalog[t].initiated_by for t in types],
        "prior_points": priors,
        "learned_points": signed * scale,
        "low": low,
        "high": high,
        "effect_logodds": mean,
        "scale": scale,
    })


def learned_temperature(temps: pd.DataFrame, points: dict[str, float], half_life_days: float) -> np.ndarray:
    """``sum_k points_k * temp__k__hl<h>d`` from a frame that has the per-type temperatures."""
    label = half_life_label(half_life_days)
    total = np.zeros(len(temps))
    for name, value in points.items():
        total += value * temps[f"temp__{name}__{label}"].to_numpy()
    return total


def choose_half_life(
    events: pd.DataFrame | None,
    rows: pd.DataFrame,
    y,
    points: dict[str, float],
    spec: FeatureSpec,
    *,
    task: str,
    grid: tuple[float, ...],
    index: EventIndex | None = None,
) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """The half-life of the grid whose learned temperature ranks ``rows`` best (ROC AUC on ``y``).

    For churn the risk score is minus the temperature. Returns the best half-life, the table of
    (half_life_days, roc_auc) for every candidate, and the per-type temperatures of ``rows`` at
    every candidate (to score them without rebuilding). ``index`` reuses a prebuilt event index.
    """
    temps = build_features(events, rows[[CUSTOMER_ID, CUTOFF]], spec.temperature_only(tuple(grid)), index=index)
    sign = TASK_SIGN[task]
    table = pd.DataFrame({
        "half_life_days": list(grid),
        "roc_auc": [roc_auc(y, sign * learned_temperature(temps, points, h)) for h in grid],
    })
    best = float(table.loc[table["roc_auc"].idxmax(), "half_life_days"])
    return best, table, temps
