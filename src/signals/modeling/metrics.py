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
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "METRICS",
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
