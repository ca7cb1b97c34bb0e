"""Evaluation metrics with bootstrap confidence intervals over customers.

Every metric takes optional row weights, so a bootstrap round is just a weight vector: a
customer drawn twice counts twice. Rank metrics sort the scores once per model and reuse the
order for every round. With unit weights each metric equals scikit-learn's (tests check it):

- ``roc_auc``: area under the ROC curve, ties counted half;
- ``pr_auc``: average precision (scikit-learn's step-wise definition, not the trapezoid);
- ``top_decile_lift``: positive rate among the 10% highest scores over the overall rate; tie-aware:
  the top 10% of the weight is filled group by group of equal scores, and the group that crosses
  the edge counts in proportion to the part of it inside (so row order never matters);
- ``brier``: mean squared error of the probability;
- ``ece``: expected calibration error, ``sum_b (n_b / n) |mean(y_b) - mean(p_b)|`` over 10 bins of
  equal count (quantiles of the probability; equal-count bins suit rare positives).

A rolling-origin backtest (:func:`backtest_metrics`, :func:`backtest_versus`) reports each metric
per origin and pooled (the mean over origins), with intervals from a two-way bootstrap that
resamples origins and customers together: the month-to-month variation enters the interval.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "METRICS",
    "POOLED",
    "backtest_metrics",
    "backtest_versus",
    "bootstrap_metrics",
    "brier",
    "evaluate",
    "expected_calibration_error",
    "paired_auc_difference",
    "pr_auc",
    "roc_auc",
    "top_decile_lift",
]

METRICS = ("roc_auc", "pr_auc", "top_decile_lift", "brier", "ece")


class _Ranked:
    """Scores sorted once (descending) with their tie groups, for repeated weighted metrics."""

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        order = np.argsort(-score, kind="stable")
        self.y = y[order].astype(np.float64)
        self.order = order
        s = score[order]
        self.group_end = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last index of each tie group


def _roc_auc(r: _Ranked, w: np.ndarray) -> float:
    wp, wn = w * r.y, w * (1.0 - r.y)
    pos = np.add.reduceat(wp, np.r_[0, r.group_end[:-1] + 1])
    neg = np.add.reduceat(wn, np.r_[0, r.group_end[:-1] + 1])
    total_p, total_n = pos.sum(), neg.sum()
    if total_p <= 0 or total_n <= 0:
        return float("nan")
    neg_below = total_n - np.cumsum(neg)          # negatives with a strictly lower score
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (total_p * total_n))


def _pr_auc(r: _Ranked, w: np.ndarray) -> float:
    wp = w * r.y
    tp = np.cumsum(wp)[r.group_end]
    seen = np.cumsum(w)[r.group_end]
    total_p = tp[-1] if len(tp) else 0.0
    if total_p <= 0:
        return float("nan")
    recall_step = np.diff(np.r_[0.0, tp]) / total_p
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    return float(np.sum(recall_step * precision))


def _lift(r: _Ranked, w: np.ndarray, fraction: float = 0.1) -> float:
    total_w, total_p = w.sum(), (w * r.y).sum()
    if total_w <= 0 or total_p <= 0:
        return float("nan")
    capacity = fraction * total_w
    cw = np.cumsum(w)[r.group_end]                 # weight up to the end of each group of equal scores
    cp = np.cumsum(w * r.y)[r.group_end]
    edge = min(int(np.searchsorted(cw, capacity, side="left")), len(cw) - 1)  # the group crossing the edge
    w_before = cw[edge - 1] if edge > 0 else 0.0
    p_before = cp[edge - 1] if edge > 0 else 0.0
    w_group, p_group = cw[edge] - w_before, cp[edge] - p_before
    share = (capacity - w_before) / w_group if w_group > 0 else 0.0
    positives = p_before + share * p_group         # the edge group counts in proportion: ties never split by order
    return float((positives / capacity) / (total_p / total_w))


def _ranked(y, score, weight) -> tuple[_Ranked, np.ndarray]:
    ranked = _Ranked(np.asarray(y), np.asarray(score, dtype=np.float64))
    w = np.ones(len(ranked.y)) if weight is None else np.asarray(weight, dtype=np.float64)[ranked.order]
    return ranked, w


def roc_auc(y, score, weight=None) -> float:
    return _roc_auc(*_ranked(y, score, weight))


def pr_auc(y, score, weight=None) -> float:
    return _pr_auc(*_ranked(y, score, weight))


def top_decile_lift(y, score, weight=None, fraction: float = 0.1) -> float:
    return _lift(*_ranked(y, score, weight), fraction)


def brier(y, prob, weight=None) -> float:
    y, prob = np.asarray(y, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    return float(np.sum(w * (prob - y) ** 2) / np.sum(w))


def _calibration_bins(prob: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.unique(np.quantile(prob, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, prob, side="right")


def expected_calibration_error(y, prob, weight=None, n_bins: int = 10, bins: np.ndarray | None = None) -> float:
    y, prob = np.asarray(y, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    b = _calibration_bins(prob, n_bins) if bins is None else bins
    n_b = np.bincount(b, weights=w)
    keep = n_b > 0
    gap = np.abs(np.bincount(b, weights=w * y)[keep] - np.bincount(b, weights=w * prob)[keep])
    return float(gap.sum() / w.sum())


def evaluate(y, score, prob=None) -> dict[str, float]:
    """All metrics for one model: rank metrics on ``score``, calibration metrics on ``prob``."""
    y = np.asarray(y)
    out = {
        "rows": float(len(y)),
        "positives": float(np.sum(y)),
        "roc_auc": roc_auc(y, score),
        "pr_auc": pr_auc(y, score),
        "top_decile_lift": top_decile_lift(y, score),
    }
    if prob is not None:
        out["brier"] = brier(y, prob)
        out["ece"] = expected_calibration_error(y, prob)
    return out


def _customer_weights(groups, rounds: int, seed: int) -> list[np.ndarray]:
    """Row weights of ``rounds`` bootstrap draws of whole groups (customers) with replacement."""
    codes, uniques = pd.factorize(np.asarray(groups))
    rng = np.random.default_rng(seed)
    n = len(uniques)
    return [np.bincount(rng.integers(0, n, n), minlength=n)[codes].astype(np.float64) for _ in range(rounds)]


def paired_auc_difference(y, score, reference, groups, *, rounds: int = 200, seed: int = 0,
                          level: float = 0.95) -> dict[str, float]:
    """ROC AUC of ``score`` minus ROC AUC of ``reference`` on the same rows, with a *paired*
    bootstrap interval over ``groups``: both scores see the same resampled customers in every round,
    so the interval of the difference is much tighter than the two separate intervals suggest.

    Returns ``estimate``, ``low``, ``high`` and ``share_above_0`` (the share of rounds in which
    ``score`` ranks better).
    """
    y = np.asarray(y)
    a = _Ranked(y, np.asarray(score, dtype=np.float64))
    b = _Ranked(y, np.asarray(reference, dtype=np.float64))
    diffs = np.array([_roc_auc(a, w[a.order]) - _roc_auc(b, w[b.order]) for w in _customer_weights(groups, rounds, seed)])
    diffs = diffs[np.isfinite(diffs)]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha]) if len(diffs) else (np.nan, np.nan)
    return {"estimate": _roc_auc(a, np.ones(len(y))) - _roc_auc(b, np.ones(len(y))), "low": float(low),
            "high": float(high), "share_above_0": float(np.mean(diffs > 0)) if len(diffs) else float("nan")}


def bootstrap_metrics(
    y,
    models: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    groups,
    *,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Metrics of several models on the same rows with bootstrap intervals over ``groups``.

    Parameters
    ----------
    y : array of 0/1
    models : mapping name -> (score, probability or None)
        Higher score = more likely positive.
    groups : array
        The resampling unit of each row (the customer id): a round draws customers with
        replacement and weighs each row by how often its customer was drawn, so rows of one
        customer move together.

    Returns
    -------
    pd.DataFrame
        One row per (model, metric): ``estimate`` (on all rows) and the ``low``/``high`` percentile
        interval of the bootstrap distribution.
    """
    y = np.asarray(y)
    draws = _customer_weights(groups, rounds, seed)
    alpha = (1.0 - level) / 2.0
    records = []
    for name, (score, prob) in models.items():
        score = np.asarray(score, dtype=np.float64)
        ranked = _Ranked(y, score)
        point = evaluate(y, score, prob)
        samples: dict[str, list[float]] = {m: [] for m in METRICS}
        bins = _calibration_bins(np.asarray(prob, dtype=np.float64), 10) if prob is not None else None
        for w in draws:
            ws = w[ranked.order]
            samples["roc_auc"].append(_roc_auc(ranked, ws))
            samples["pr_auc"].append(_pr_auc(ranked, ws))
            samples["top_decile_lift"].append(_lift(ranked, ws))
            if prob is not None:
                samples["brier"].append(brier(y, prob, w))
                samples["ece"].append(expected_calibration_error(y, prob, w, bins=bins))
        for metric in METRICS:
            if metric not in point:
                continue
            values = np.asarray(samples[metric], dtype=np.float64)
            values = values[np.isfinite(values)]
            low, high = (np.quantile(values, [alpha, 1 - alpha]) if len(values) else (np.nan, np.nan))
            records.append({"model": name, "metric": metric, "estimate": point[metric], "low": low, "high": high})
    return pd.DataFrame.from_records(records)


# ---------------------------------------------------------------------------------------------
# rolling-origin backtests: per origin and pooled, intervals over origins x customers

#: The ``origin`` label of pooled rows.
POOLED = "pooled"


def _two_way_draws(groups, origins, rounds: int, seed: int):
    """Per round: row weights (customers drawn with replacement, one draw shared by every origin)
    and origin multiplicities (origins drawn with replacement)."""
    codes, uniques = pd.factorize(np.asarray(groups))
    origin_codes, origin_values = pd.factorize(np.asarray(origins), sort=True)
    rng = np.random.default_rng(seed)
    n, k = len(uniques), len(origin_values)
    for _ in range(rounds):
        customer = np.bincount(rng.integers(0, n, n), minlength=n)[codes].astype(np.float64)
        origin = np.bincount(rng.integers(0, k, k), minlength=k).astype(np.float64) if k > 1 else np.ones(1)
        yield customer, origin


def _pool(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean over origins of finite per-origin values (NaN if none)."""
    ok = np.isfinite(values) & (weights > 0)
    return float(np.sum(values[ok] * weights[ok]) / np.sum(weights[ok])) if ok.any() else float("nan")


def _interval(samples, level: float) -> tuple[float, float]:
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def backtest_metrics(
    y,
    models: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    groups,
    origins,
    *,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics of several models over the test rows of a rolling-origin backtest.

    Parameters
    ----------
    y : array of 0/1
    models : mapping name -> (score, probability or None), one value per row
    groups : array
        The customer of each row (resampled with replacement, the same draw for every origin).
    origins : array
        The origin of each row (its first test cutoff); origins are resampled with replacement.

    Returns
    -------
    pooled : pd.DataFrame
        One row per (model, metric): ``estimate`` (the mean of the per-origin values), ``low`` /
        ``high`` (percentile interval over rounds that resample origins and customers), ``origins``.
    by_origin : pd.DataFrame
        One row per (origin, model, metric): ``estimate``, ``low`` / ``high`` (customers resampled),
        ``rows`` and ``positives``.
    """
    y = np.asarray(y)
    origins = np.asarray(origins)
    origin_values = np.sort(pd.unique(origins))
    rows_of = [np.flatnonzero(origins == o) for o in origin_values]
    per_origin: dict[tuple[str, str], list[list[float]]] = {}
    point: dict[tuple[str, str], list[float]] = {}
    ranked = {}
    bins = {}
    for name, (score, prob) in models.items():
        score = np.asarray(score, dtype=np.float64)
        prob = None if prob is None else np.asarray(prob, dtype=np.float64)
        for i, rows in enumerate(rows_of):
            ranked[name, i] = _Ranked(y[rows], score[rows])
            bins[name, i] = _calibration_bins(prob[rows], 10) if prob is not None else None
            values = evaluate(y[rows], score[rows], None if prob is None else prob[rows])
            for metric in METRICS:
                if metric in values:
                    point.setdefault((name, metric), []).append(values[metric])
                    per_origin.setdefault((name, metric), [[] for _ in rows_of])
    pooled_samples: dict[tuple[str, str], list[float]] = {key: [] for key in point}
    for customer, origin_weight in _two_way_draws(np.asarray(groups), origins, rounds, seed):
        for name, (_, prob) in models.items():
            prob = None if prob is None else np.asarray(prob, dtype=np.float64)
            values: dict[str, np.ndarray] = {m: np.full(len(rows_of), np.nan) for m in METRICS}
            for i, rows in enumerate(rows_of):
                r = ranked[name, i]
                w = customer[rows]
                ws = w[r.order]
                values["roc_auc"][i] = _roc_auc(r, ws)
                values["pr_auc"][i] = _pr_auc(r, ws)
                values["top_decile_lift"][i] = _lift(r, ws)
                if prob is not None and w.sum() > 0:
                    values["brier"][i] = brier(y[rows], prob[rows], w)
                    values["ece"][i] = expected_calibration_error(y[rows], prob[rows], w, bins=bins[name, i])
            for metric in METRICS:
                if (name, metric) not in point:
                    continue
                for i in range(len(rows_of)):
                    per_origin[name, metric][i].append(values[metric][i])
                pooled_samples[name, metric].append(_pool(values[metric], origin_weight))
    pooled_records, origin_records = [], []
    for (name, metric), estimates in point.items():
        low, high = _interval(pooled_samples[name, metric], level)
        pooled_records.append({"model": name, "metric": metric, "estimate": float(np.nanmean(estimates))
                               if np.isfinite(estimates).any() else float("nan"),
                               "low": low, "high": high, "origins": len(rows_of)})
        for i, rows in enumerate(rows_of):
            o_low, o_high = _interval(per_origin[name, metric][i], level)
            origin_records.append({"origin": origin_values[i], "model": name, "metric": metric,
                                   "estimate": estimates[i], "low": o_low, "high": o_high,
                                   "rows": len(rows), "positives": int(y[rows].sum())})
    return pd.DataFrame.from_records(pooled_records), pd.DataFrame.from_records(origin_records)


def backtest_versus(y, score, baselines: Mapping[str, np.ndarray], groups, origins, *, rounds: int = 200,
                    seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """ROC AUC of ``score`` minus each baseline's, per origin then pooled, with a *paired* two-way
    bootstrap (both scores see the same resampled origins and customers in every round).

    Returns one row per baseline: ``estimate`` (mean over origins of the per-origin difference),
    ``low``, ``high`` and ``share_above_0`` (the share of rounds in which ``score`` ranks better).
    """
    y = np.asarray(y)
    origins = np.asarray(origins)
    rows_of = [np.flatnonzero(origins == o) for o in np.sort(pd.unique(origins))]
    score = np.asarray(score, dtype=np.float64)
    mine = [_Ranked(y[rows], score[rows]) for rows in rows_of]
    theirs = {name: [_Ranked(y[rows], np.asarray(b, dtype=np.float64)[rows]) for rows in rows_of]
              for name, b in baselines.items()}
    point = {name: np.array([_roc_auc(a, np.ones(len(a.y))) - _roc_auc(b, np.ones(len(b.y)))
                             for a, b in zip(mine, ranked, strict=True)]) for name, ranked in theirs.items()}
    samples: dict[str, list[float]] = {name: [] for name in baselines}
    for customer, origin_weight in _two_way_draws(np.asarray(groups), origins, rounds, seed):
        weights = [customer[rows] for rows in rows_of]
        auc_mine = np.array([_roc_auc(a, w[a.order]) for a, w in zip(mine, weights, strict=True)])
        for name, ranked in theirs.items():
            auc_theirs = np.array([_roc_auc(b, w[b.order]) for b, w in zip(ranked, weights, strict=True)])
            samples[name].append(_pool(auc_mine - auc_theirs, origin_weight))
    records = []
    for name in baselines:
        values = np.asarray(samples[name])
        values = values[np.isfinite(values)]
        low, high = _interval(values, level)
        records.append({"baseline": name, "estimate": float(np.nanmean(point[name])), "low": low, "high": high,
                        "share_above_0": float(np.mean(values > 0)) if len(values) else float("nan")})
    return pd.DataFrame.from_records(records)
