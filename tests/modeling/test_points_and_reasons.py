"""Learned points on a hand-made model whose answer is known; reasons in stable plain words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.features.spec import FeatureSpec
from signals.modeling.explain import group_of, reasons
from signals.modeling.points import points_table, touch_effects
from signals.settings import load_settings

SETTINGS = load_settings()
SPEC = FeatureSpec.from_settings(SETTINGS)
T = pd.Timestamp("2025-06-01", tz="UTC")
DAY = pd.Timedelta(days=1)


class LinearInCounts:
    """A 'model' whose log-odds is sum_k c_k * freq__k__7d + 0.5 * recency__all__days (known effects)."""

    def __init__(self, coefficients: dict[str, float]) -> None:
        self.coefficients = coefficients

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(X))
        for name, c in self.coefficients.items():
            out += c * X[f"freq__{name}__7d"].to_numpy()
        return out + 0.5 * np.nan_to_num(X["recency__all__days"].to_numpy())


def _events():
    return pd.DataFrame({
        "customer_id": ["a", "a", "b", "c"],
        "ts": [T - 3 * DAY, T - 40 * DAY, T - 10 * DAY, T + DAY],
        "touchpoint": ["webinar", "purchase", "call", "seminar"],
        "value": [0.0, 1200.0, 0.0, 0.0],
    })


def test_touch_effects_recover_a_known_model_with_consistent_feature_updates():
    coefficients = {"webinar": 2.0, "seminar": -1.0, "sales_visit": 0.25}
    reference = pd.DataFrame({"customer_id": ["a", "b", "c"], "cutoff": [T, T, T]})
    effects = touch_effects(LinearInCounts(coefficients), _events(), reference, SPEC)
    assert list(effects.columns) == list(SPEC.catalog)
    # one more touch one second before the cutoff: its 7-day count +1, and the last touch is now
    # (recency 1 s) instead of 3 / 10 days ago, or never (c has only a future event: recency NaN -> 0)
    recency_change = 0.5 * (1 / 86_400 - np.array([3.0, 10.0, 0.0]))
    for name in SPEC.catalog:
        expected = coefficients.get(name, 0.0) + recency_change
        np.testing.assert_allclose(effects[name].to_numpy(), expected, atol=1e-9, err_msg=name)


def test_points_table_scale_rule_and_sign():
    effects = pd.DataFrame({name: np.full(4, 0.0) for name in SPEC.catalog})
    effects["webinar"] = [0.2, 0.2, 0.2, 0.2]
    effects["seminar"] = [-0.1, -0.1, -0.1, -0.1]
    total_prior = sum(abs(tp.prior_points) for tp in SPEC.catalog.values())
    purchase = points_table(effects, ["x", "y", "x", "z"], SPEC, task="purchase", rounds=20).set_index("touchpoint")
    assert purchase.loc["webinar", "learned_points"] == pytest.approx(total_prior * 2 / 3)
    assert purchase.loc["seminar", "learned_points"] == pytest.approx(-total_prior / 3)
    assert purchase["learned_points"].abs().sum() == pytest.approx(total_prior)
    churn = points_table(effects, ["x", "y", "x", "z"], SPEC, task="churn", rounds=20).set_index("touchpoint")
    assert churn.loc["webinar", "learned_points"] == pytest.approx(-total_prior * 2 / 3)  # raises churn: negative
    assert (purchase["low"] <= purchase["learned_points"] + 1e-9).all()
    assert (purchase["high"] >= purchase["learned_points"] - 1e-9).all()


def test_reason_groups():
    assert group_of("temp__webinar__hl30d") == group_of("freq__webinar__7d") == "webinar"
    assert group_of("freq__all__30d") == "overall" and group_of("static__region__attr") == "attribute:region"


class FixedContributions:
    """A model stand-in with given per-feature contributions and directions."""

    def __init__(self, contributions: pd.DataFrame, direction: list[float]) -> None:
        self.values = contributions
        self.feature_names_ = list(contributions.columns)
        self.direction = np.array(direction)

    def tree_shap(self):
        return self

    def map_chunks(self, X, fn, **_):
        fn(0, self.values.to_numpy())


def test_reasons_group_contributions_by_touchpoint_and_skip_what_lowers_the_score():
    X = pd.DataFrame({"customer_id": ["a"], "cutoff": [T], "freq__webinar__30d": [2], "temp__webinar__hl30d": [1.5],
                      "recency__sales_visit__days": [130.0], "freq__call__30d": [0], "freq__all__30d": [4],
                      "freq__all__365d": [10], "freq__webinar__365d": [2], "tenure__all__days": [400.0]})
    contributions = pd.DataFrame({"freq__webinar__30d": [0.2], "temp__webinar__hl30d": [0.3],
                                  "recency__sales_visit__days": [0.4], "freq__call__30d": [-0.1]})
    out = reasons(FixedContributions(contributions, [1, 1, 1, 1]), X, catalog=SETTINGS.catalog)
    assert out.loc[0, "reason_group_1"] == "webinar"          # 0.2 + 0.3 beats 0.4
    assert out.loc[0, "reason_1"] == "2 webinars in the last 30 days (usually 0 a month)"
    assert out.loc[0, "reason_2"] == "no sales visit for 130 days"
    assert out.loc[0, "reason_3"] is None                      # the call lowers the score: not a reason
    assert out.loc[0, "reason_logodds_1"] == pytest.approx(0.5)
    # the same recency read the other way: a recent visit raising the score
    out = reasons(FixedContributions(contributions, [1, 1, -1, 1]), X.assign(recency__sales_visit__days=[3.5]),
                  catalog=SETTINGS.catalog)
    assert out.loc[0, "reason_2"] == "sales visit 3 days ago"
