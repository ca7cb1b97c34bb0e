"""Baselines the model must beat, scored on the same rows.

Every baseline returns a score where higher means "more likely positive" for the task:

- :func:`prior_temperature`: the article's temperature with the hand-set points (seed 002); for
  churn the score is minus the temperature (a cold customer is at risk);
- :func:`rfm_score`: recency, frequency and monetary value of purchases, each cut into quintiles
  on the *training* rows (1 = worst, 5 = best) and summed; minus for churn;
- :func:`rfm_summary_score`: the classic RFM score of a BG/NBD summary
  (:func:`signals.modeling.bgnbd.rfm_summary`: purchase days, not feature windows), quintiles of
  the scored customers themselves;
- :func:`falling_frequency`: seed 003's rule, touches in the last 90 days over the 90 before; a
  falling ratio signals churn, a rising one a purchase;
- :class:`LogisticBaseline`: logistic regression on the same features (median imputation with
  missing-value flags, standardised, one-hot categoricals, L2; negatives sub-sampled for speed).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from signals.errors import DataError
from signals.features.names import half_life_label, window_label
from signals.features.spec import FeatureSpec

__all__ = ["LogisticBaseline", "falling_frequency", "prior_temperature", "rfm_score", "rfm_summary_score"]

_SIGN = {"purchase": 1.0, "churn": -1.0}


def _closest_half_life(spec: FeatureSpec, target: float) -> float:
    return min(spec.features.half_lives_days, key=lambda h: abs(h - target))


def prior_temperature(X: pd.DataFrame, spec: FeatureSpec, task: str) -> np.ndarray:
    """Prior-points temperature at the trend half-life (or the closest built one)."""
    h = _closest_half_life(spec, spec.features.trend_half_life_days)
    return _SIGN[task] * X[f"temp_prior__all__{half_life_label(h)}"].to_numpy(dtype=np.float64)


def falling_frequency(X: pd.DataFrame, spec: FeatureSpec, task: str) -> np.ndarray:
    """``(touches last 90 days + 1) / (touches the 90 before + 1)``; minus for churn."""
    f = spec.features.falling_window_days
    return _SIGN[task] * X[f"freq_ratio__all__{window_label(f)}"].to_numpy(dtype=np.float64)


def _purchase_type(spec: FeatureSpec) -> str:
    names = [n for n, tp in spec.catalog.items() if tp.role == "purchase"]
    if not names:
        raise ValueError("the RFM baseline needs a touchpoint with role 'purchase'")
    return names[0]


def rfm_score(X_train: pd.DataFrame, X: pd.DataFrame, spec: FeatureSpec, task: str) -> np.ndarray:
    """Sum of R, F and M quintile scores (edges from ``X_train``), 3..15; minus for churn.

    R: days since the last purchase (never = worst); F: purchases in the longest window;
    M: purchase value in the longest window.
    """
    name = _purchase_type(spec)
    w = window_label(max(spec.features.windows_days))
    columns = {
        "R": (f"recency__{name}__days", -1.0),      # fewer days is better
        "F": (f"freq__{name}__{w}", 1.0),
        "M": (f"value__{name}__{w}", 1.0),
    }
    total = np.zeros(len(X))
    for column, direction in columns.values():
        train = direction * X_train[column].to_numpy(dtype=np.float64)
        train = np.where(np.isnan(train), -np.inf, train)
        values = direction * X[column].to_numpy(dtype=np.float64)
        values = np.where(np.isnan(values), -np.inf, values)
        finite = train[np.isfinite(train)]
        edges = np.unique(np.quantile(finite, [0.2, 0.4, 0.6, 0.8])) if len(finite) else np.array([])
        total += 1 + np.searchsorted(edges, values, side="right")
    return _SIGN[task] * total


def _quintile_score(values: pd.Series, *, higher_is_better: bool) -> pd.Series:
    """1..5 by the average-rank percentile: ties share one score; 5 = the best fifth."""
    ranks = values.rank(method="average", ascending=higher_is_better)
    pct = (ranks - 0.5) / len(values)  # in (0, 1)
    return (np.floor(pct * 5).astype("int64") + 1).clip(1, 5)


def rfm_summary_score(summary: pd.DataFrame) -> pd.DataFrame:
    """The classic RFM score of a purchase summary: quintile scores for recency, frequency, money.

    - ``R``: time since the last purchase day, ``T - recency``; the most recent fifth scores 5;
    - ``F``: ``frequency`` (repeat purchase days); the most frequent fifth scores 5;
    - ``M``: ``spend`` (total spend before the cutoff, the first purchase included); the top
      fifth scores 5.

    Unlike :func:`rfm_score` (edges from training rows of a feature matrix), the quintiles come
    from the scored customers themselves: the average rank of each customer gives the percentile
    ``(rank - 0.5) / n`` and the score ``1 + floor(5 * percentile)``, so tied customers always
    share a score; with heavy ties (most retail customers have x = 0) a score can hold more or
    fewer than a fifth of the customers.

    Parameters
    ----------
    summary
        :func:`signals.modeling.bgnbd.rfm_summary` (columns ``frequency``, ``recency``, ``T``,
        ``spend``), one row per customer.

    Returns
    -------
    pandas.DataFrame
        Same index: ``R``, ``F``, ``M`` (1..5) and ``rfm`` = R + F + M (3..15, higher = better).

    Examples
    --------
    >>> summary = pd.DataFrame({"frequency": [0, 2, 5], "recency": [0.0, 3.0, 9.0],
    ...                         "T": [10.0, 10.0, 10.0], "spend": [15.0, 60.0, 40.0]}, index=["a", "b", "c"])
    >>> rfm_summary_score(summary)
       R  F  M  rfm
    a  1  1  1    3
    b  3  3  5   11
    c  5  5  3   13
    """
    missing = [c for c in ("frequency", "recency", "T", "spend") if c not in summary.columns]
    if missing:
        raise DataError(f"rfm_summary_score needs the rfm_summary columns {missing}")
    if len(summary) == 0:
        raise DataError("rfm_summary_score needs at least one customer")
    out = pd.DataFrame(index=summary.index)
    out["R"] = _quintile_score(summary["T"] - summary["recency"], higher_is_better=False)
    out["F"] = _quintile_score(summary["frequency"], higher_is_better=True)
    out["M"] = _quintile_score(summary["spend"], higher_is_better=True)
    out["rfm"] = out["R"] + out["F"] + out["M"]
    return out


class LogisticBaseline:
    """Logistic regression on the same feature matrix (a linear model with the same information).

    Numbers are median-imputed (with a missing-value flag per feature that has gaps) and
    standardised, categories one-hot encoded, and the fit is L2-penalised. To keep the fit fast,
    negatives are sub-sampled (case-control) to at most ``negatives_per_positive`` per positive:
    the slopes stay consistent, and the intercept is shifted back by the log of the sampling
    rate so :meth:`decision_function` stays on the log-odds scale of the full population.

    Parameters
    ----------
    C : float
        Inverse L2 strength.
    negatives_per_positive : float or None
        Sub-sampling of negatives (None: every row).
    seed : int
        Seed of the sub-sample.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 2000, negatives_per_positive: float | None = 10.0,
                 seed: int = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.negatives_per_positive = negatives_per_positive
        self.seed = seed

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.numeric_].to_numpy(dtype=np.float64)
        missing = np.isnan(values)
        values = np.where(missing, self.medians_, values)
        values -= self.means_
        values /= self.scales_
        parts = [values, missing[:, self.flagged_].astype(np.float64)]
        for column, categories in self.categories_.items():
            codes = pd.Categorical(X[column].astype(object), categories=categories).codes
            one_hot = np.zeros((len(X), len(categories)))
            known = codes >= 0
            one_hot[np.flatnonzero(known), codes[known]] = 1.0
            parts.append(one_hot)
        return np.hstack(parts)

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> LogisticBaseline:
        y = np.asarray(y).astype(np.int8)
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        keep = weight > 0
        self.sampling_rate_ = 1.0
        if self.negatives_per_positive is not None:
            positives, negatives = int((y[keep] == 1).sum()), int((y[keep] == 0).sum())
            wanted = int(np.ceil(self.negatives_per_positive * max(positives, 1)))
            if negatives > wanted:
                rng = np.random.default_rng(self.seed)
                self.sampling_rate_ = wanted / negatives
                keep &= (y == 1) | (rng.random(len(y)) < self.sampling_rate_)
        X, y, weight = X[keep], y[keep], weight[keep]
        categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        self.numeric_ = [c for c in X.columns if c not in categorical]
        values = X[self.numeric_].to_numpy(dtype=np.float64)
        missing = np.isnan(values)
        with warnings.catch_warnings():  # a column without any value (a type never seen) imputes 0
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(values, axis=0) if len(values) else np.zeros(values.shape[1])
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        filled = np.where(missing, self.medians_, values)
        self.means_ = filled.mean(axis=0)
        scales = filled.std(axis=0)
        self.scales_ = np.where(scales > 0, scales, 1.0)
        self.flagged_ = np.flatnonzero(missing.any(axis=0))
        self.categories_ = {c: list(X[c].cat.categories) for c in categorical}
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(self._design(X), y, sample_weight=weight)
        self.model_.intercept_ = self.model_.intercept_ + np.log(self.sampling_rate_)
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.decision_function(self._design(X))

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(self._design(X))[:, 1]
