"""Baselines the model must beat, scored on the same rows.

Every baseline returns a score where higher means "more likely positive" for the task:

- :func:`prior_temperature`: the article's temperature with the hand-set points (seed 002); for
  churn the score is minus the temperature (a cold customer is at risk);
- :func:`rfm_score`: recency, frequency and monetary value of purchases, each cut into quintiles
  on the *training* rows (1 = worst, 5 = best) and summed; minus for churn;
- :func:`falling_frequency`: seed 003's rule, touches in the last 90 days over the 90 before; a
  falling ratio signals churn, a rising one a purchase;
- :class:`LogisticBaseline`: logistic regression on the same features (median imputation with
  missing-value flags, standardised, one-hot categoricals, L2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from signals.features.names import half_life_label, window_label
from signals.features.spec import FeatureSpec

__all__ = ["LogisticBaseline", "falling_frequency", "prior_temperature", "rfm_score"]

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


class LogisticBaseline:
    """Logistic regression on the same feature matrix (a linear model with the same information).

    Parameters
    ----------
    C : float
        Inverse L2 strength.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 2000) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: pd.DataFrame, y) -> LogisticBaseline:
        categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        numeric = [c for c in X.columns if c not in categorical]
        steps = [("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                         keep_empty_features=True), StandardScaler()), numeric)]
        if categorical:
            steps.append(("categorical", OneHotEncoder(handle_unknown="ignore"), categorical))
        self.pipeline_ = make_pipeline(
            ColumnTransformer(steps),
            LogisticRegression(C=self.C, max_iter=self.max_iter),
        )
        self.pipeline_.fit(X, np.asarray(y))
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.decision_function(X)

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.predict_proba(X)[:, 1]
