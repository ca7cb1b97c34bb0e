"""Learned points on a hand-made model whose answer is known; reasons in stable plain words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.features.spec import FeatureSpec
from signals.modeling.explain import describe, group_of, reasons
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


def test_reason_wording_is_stable():
    catalog = SETTINGS.catalog
    assert describe("freq__webinar__30d", 2, catalog=catalog) == "2 webinars in the last 30 days"
    assert describe("freq__inquiry__90d", 3, catalog=catalog) == "3 inquiries in the last 90 days"
    assert describe("freq__doc_request__7d", 0, catalog=catalog) == "no document request in the last 7 days"
    assert describe("recency__sales_visit__days", 120.4, catalog=catalog) == "no sales visit for 120 days"
    assert describe("recency__seminar__days", float("nan"), catalog=catalog) == "never had a seminar"
    assert describe("temp_delta__webinar__14d", -1.25, catalog=catalog) == "webinar temperature down 1.2 over 14 days"
    assert describe("temp_delta__call__30d", 0.01, catalog=catalog) == "call temperature flat over 30 days"
    assert describe("temp__all__hl90d", 18.46, catalog=catalog) == "touch temperature 18.5 (90-day half-life)"
    assert describe("value__purchase__365d", 12000.0, catalog=catalog) == "12,000 spent on purchases in the last 365 days"
    assert describe("overdue__all__ratio", 3.0, catalog=catalog) == "quiet for 3.0x the usual gap between touches"
    assert describe("static__segment__attr", "Enterprise", catalog=catalog) == "segment is Enterprise"
    assert group_of("temp__webinar__hl30d") == group_of("freq__webinar__7d") == "webinar"
    assert group_of("freq__all__30d") == "overall" and group_of("static__region__attr") == "attribute:region"


class FixedContributions:
    """A model stand-in with given per-feature contributions."""

    def __init__(self, contributions: pd.DataFrame) -> None:
        self.values = contributions

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.values.assign(bias=0.0)


def test_reasons_group_contributions_by_touchpoint_and_skip_what_lowers_the_score():
    X = pd.DataFrame({"customer_id": ["a"], "cutoff": [T], "freq__webinar__30d": [2], "temp__webinar__hl30d": [1.5],
                      "recency__sales_visit__days": [130.0], "freq__call__30d": [0]})
    contributions = pd.DataFrame({"freq__webinar__30d": [0.2], "temp__webinar__hl30d": [0.3],
                                  "recency__sales_visit__days": [0.4], "freq__call__30d": [-0.1]})
    out = reasons(FixedContributions(contributions), X, catalog=SETTINGS.catalog)
    assert out.loc[0, "reason_group_1"] == "webinar"          # 0.2 + 0.3 beats 0.4
    assert out.loc[0, "reason_1"] == "webinar temperature 1.5 (30-day half-life)"
    assert out.loc[0, "reason_2"] == "no sales visit for 130 days"
    assert out.loc[0, "reason_3"] == ""                        # the call lowers the score: not a reason
    assert out.loc[0, "reason_logodds_1"] == pytest.approx(0.5)
