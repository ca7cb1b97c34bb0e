"""Learned points on a hand-made model whose answer is known (own / shared split, where points are
defined, the scale, the refit intervals); reasons in stable plain words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from signals.features.spec import FeatureSpec
from signals.modeling.explain import group_of, reasons
from signals.modeling.points import (
    NA_POPULATION,
    NA_SUPPORT,
    points_table,
    summarize_effects,
    touch_effects,
    what_if,
)
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


def _design(**kwargs):
    reference = pd.DataFrame({"customer_id": ["a", "b", "c"], "cutoff": [T, T, T]})
    return what_if(_events(), reference, SPEC, **kwargs)


def test_own_and_shared_effects_split_a_known_model_exactly():
    coefficients = {"webinar": 2.0, "seminar": -1.0, "sales_visit": 0.25}
    design = _design()
    effects = touch_effects(LinearInCounts(coefficients), design)
    assert list(effects.total.columns) == list(SPEC.catalog)
    # one more touch one second before the cutoff: its own 7-day count +1 (own), and the last touch
    # of any type is now (recency 1 s, shared) instead of 3 / 10 days ago, or never (c: NaN -> 0)
    recency_change = 0.5 * (1 / 86_400 - np.array([3.0, 10.0, 0.0]))
    for name in SPEC.catalog:
        own = coefficients.get(name, 0.0)
        np.testing.assert_allclose(effects.own[name].to_numpy(), own, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(effects.shared[name].to_numpy(), recency_change, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(effects.total[name].to_numpy(), own + recency_change, atol=1e-9, err_msg=name)


def test_a_type_the_model_ignores_gets_no_own_effect_however_much_any_touch_is_worth():
    """The leak of issue 14: 'a touch happened' (here: recency of any touch) is worth a lot, the
    newsletter nothing; the old total effect gave the newsletter the shared effect as its points."""
    design = _design()
    effects = touch_effects(LinearInCounts({"webinar": 1.0}), design)
    summary = summarize_effects(effects, design)
    assert summary.loc["newsletter", "own_logodds"] == pytest.approx(0.0, abs=1e-12)
    assert abs(summary.loc["newsletter", "total_logodds"]) > 1.0  # what the old table showed
    table = points_table(summary, design, SPEC, task="purchase")
    newsletter = table.set_index("touchpoint").loc["newsletter"]
    assert newsletter["own_points"] == pytest.approx(0.0, abs=1e-9)
    assert newsletter["total_points"] == pytest.approx(newsletter["own_points"] + newsletter["shared_points"])


def test_points_scale_rule_sign_and_interval_columns():
    summary = pd.DataFrame({"own_logodds": 0.0, "shared_logodds": 0.1, "total_logodds": 0.1}, index=list(SPEC.catalog))
    summary.loc["webinar", "own_logodds"] = 0.2
    summary.loc["seminar", "own_logodds"] = -0.1
    design = _design()
    total_prior = sum(abs(tp.prior_points) for tp in SPEC.catalog.values())
    purchase = points_table(summary, design, SPEC, task="purchase").set_index("touchpoint")
    assert purchase.loc["webinar", "own_points"] == pytest.approx(total_prior * 2 / 3)
    assert purchase.loc["seminar", "own_points"] == pytest.approx(-total_prior / 3)
    assert purchase["own_points"].abs().sum() == pytest.approx(total_prior)
    churn = points_table(summary, design, SPEC, task="churn").set_index("touchpoint")
    assert churn.loc["webinar", "own_points"] == pytest.approx(-total_prior * 2 / 3)  # raises churn: negative
    # no refits, no interval; the column names say what the intervals are
    assert purchase["own_points_refit_low"].isna().all() and (purchase["interval"] == "none").all()
    rng = np.random.default_rng(0)
    draws = [summary + rng.normal(0, 0.01, summary.shape) for _ in range(8)]
    refitted = points_table(summary, design, SPEC, task="purchase", draws=draws, interval="test").set_index("touchpoint")
    spread = np.std([d.loc["webinar", "own_logodds"] for d in draws], ddof=1)
    half = refitted.loc["webinar", "own_logodds_refit_high"] - refitted.loc["webinar", "own_logodds"]
    assert half == pytest.approx(student_t.ppf(0.975, 7) * spread)
    assert (refitted["refits"] == 8).all() and (refitted["own_points_refit_low"] < refitted["own_points"]).all()


def test_points_only_where_defined_and_the_scale_ignores_the_rest():
    """A purchase just before the cutoff makes a customer ineligible for the purchase task: no
    points, the reason, and a huge effect there does not rescale the other types (issue 14, 1)."""
    calm = _design(task="purchase", labels=SETTINGS.labels)
    assert calm.status["purchase"] == NA_POPULATION and "purchase task's population" in calm.reason["purchase"]
    assert calm.status["webinar"] == "defined"
    small = touch_effects(LinearInCounts({"webinar": 1.0, "purchase": 0.1}), calm)
    huge = touch_effects(LinearInCounts({"webinar": 1.0, "purchase": 50.0}), calm)
    a = points_table(summarize_effects(small, calm), calm, SPEC, task="purchase").set_index("touchpoint")
    b = points_table(summarize_effects(huge, calm), calm, SPEC, task="purchase").set_index("touchpoint")
    assert np.isnan(a.loc["purchase", "own_points"]) and a.loc["purchase", "status"] == NA_POPULATION
    pd.testing.assert_series_equal(a["own_points"], b["own_points"])
    defined = [t for t in SPEC.catalog if t != "purchase"]
    assert a.loc[defined, "own_points"].abs().sum() == pytest.approx(sum(abs(SPEC.catalog[t].prior_points) for t in defined))
    # contractual churn: a cancellation takes an active subscriber out of the population
    events = pd.DataFrame({"customer_id": ["a", "a"], "ts": [T - 100 * DAY, T - 3 * DAY],
                           "touchpoint": ["purchase", "webinar"], "value": [1000.0, 0.0]})
    churn = what_if(events, pd.DataFrame({"customer_id": ["a"], "cutoff": [T]}), SPEC, task="churn",
                    labels=SETTINGS.labels)
    assert churn.status["cancellation"] == NA_POPULATION and churn.status["renewal"] == "defined"


def test_types_outside_the_training_support_get_no_points():
    design = _design()
    training = design.X.copy()
    training["recency__seminar__days"] = 400.0  # no training row had a recent seminar
    supported = what_if(_events(), pd.DataFrame({"customer_id": ["a", "b", "c"], "cutoff": [T] * 3}), SPEC,
                        training=pd.concat([training] * 20, ignore_index=True))
    assert supported.status["seminar"] == NA_SUPPORT and "training row" in supported.reason["seminar"]


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
