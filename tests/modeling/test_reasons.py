"""Reasons in plain words on a hand-made history: exact wording, direction and counts; the fast
TreeSHAP equals LightGBM's pred_contrib."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.features.matrix import build_features
from signals.features.spec import FeatureSpec
from signals.modeling.estimators import SignalModel
from signals.modeling.explain import group_of, reasons, word_count, word_recency
from signals.modeling.shap import TreeShap
from signals.settings import LightGBMSettings, load_settings

SETTINGS = load_settings()
CATALOG = SETTINGS.catalog
SPEC = FeatureSpec.from_settings(SETTINGS)
AS_OF = pd.Timestamp("2026-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)
PURCHASE_FEATURES = ["freq__webinar__30d", "temp__webinar__hl30d", "recency__webinar__days",
                     "recency__doc_request__days", "freq__doc_request__30d"]
CHURN_FEATURES = ["recency__sales_visit__days", "freq__sales_visit__90d", "temp__sales_visit__hl30d"]


def _world(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Random histories of webinars, document requests and sales visits over the year before AS_OF."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, scale in (("webinar", 6), ("doc_request", 10), ("sales_visit", 8)):
        counts = rng.poisson(rng.gamma(1.0, scale, n))
        cust = np.repeat(np.arange(n), counts)
        age = rng.uniform(0, 400, len(cust)) * rng.choice([1.0, 0.1], len(cust), p=[0.8, 0.2])
        rows.append(pd.DataFrame({"customer_id": [f"c{i:05d}" for i in cust],
                                  "ts": (AS_OF - pd.to_timedelta(age, unit="D")).floor("s"), "touchpoint": kind}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def models():
    events = _world()
    cutoffs = pd.DataFrame({"customer_id": sorted(events["customer_id"].unique()), "cutoff": AS_OF})
    X = build_features(events, cutoffs, SPEC)
    rng = np.random.default_rng(0)
    flip = rng.random(len(X)) < 0.03
    buys = ((X["freq__webinar__30d"] >= 2) | (X["recency__doc_request__days"] <= 7)).to_numpy() ^ flip
    churns = (X["recency__sales_visit__days"].fillna(1e9) > 90).to_numpy() ^ flip
    params = LightGBMSettings(num_threads=1, min_child_samples=20, feature_fraction=1.0, n_estimators=60,
                              learning_rate=0.2, early_stopping_rounds=20)
    half = len(X) // 2
    fitted = {}
    for task, features, y in (("purchase", PURCHASE_FEATURES, buys), ("churn", CHURN_FEATURES, churns)):
        fitted[task] = SignalModel(params, seed=1).fit(X[features].iloc[:half], y[:half].astype(int),
                                                       X[features].iloc[half:], y[half:].astype(int))
    return fitted, X


def hand_made() -> pd.DataFrame:
    """A: three webinars in the last 30 days, none before; B: a document request 2 days ago;
    C: four sales visits in the year, the last 140 days ago; D: one sales visit 3 days ago,
    else quiet; E: nothing at all but a newsletter (never a webinar, request or visit)."""
    at = lambda days, hours=0: AS_OF - days * DAY - pd.Timedelta(hours=hours)  # noqa: E731
    events = [("A", at(27), "webinar"), ("A", at(15), "webinar"), ("A", at(3), "webinar"),
              ("A", at(380), "newsletter"),
              ("B", at(2, 4), "doc_request"), ("B", at(380), "newsletter"),
              ("C", at(140, 5), "sales_visit"), ("C", at(200), "sales_visit"), ("C", at(260), "sales_visit"),
              ("C", at(320), "sales_visit"), ("C", at(390), "newsletter"),
              ("D", at(3), "sales_visit"), ("D", at(390), "newsletter"),
              ("E", at(390), "newsletter")]
    frame = pd.DataFrame(events, columns=["customer_id", "ts", "touchpoint"])
    cutoffs = pd.DataFrame({"customer_id": list("ABCDE"), "cutoff": AS_OF})
    return build_features(frame, cutoffs, SPEC)


def test_reasons_on_a_hand_made_history_are_exact(models):
    fitted, _ = models
    X = hand_made().set_index("customer_id", drop=False)
    buy = reasons(fitted["purchase"], X, catalog=CATALOG)
    churn = reasons(fitted["churn"], X, catalog=CATALOG)
    # the count, the window and the customer's own usual rate (no webinar in the 335 days before)
    assert buy.loc["A", "reason_1"] == "3 webinars in the last 30 days (usually 0 a month)"
    assert buy.loc["A", "reason_group_1"] == "webinar" and buy.loc["A", "reason_logodds_1"] > 0
    # recent touch, in whole days (2 days and 4 hours ago)
    assert buy.loc["B", "reason_1"] == "document request 2 days ago"
    # absence: days since the last visit; usual = 4 visits in [T-365, T-30) over 335 days = 0.36 a month
    assert churn.loc["C", "reason_1"] == "no sales visit for 140 days (usually 0.4 a month)"
    assert churn.loc["E", "reason_1"] == "no sales visit yet"
    # direction: a recent visit lowers the churn risk, so it is never a reason for D's risk
    assert "sales visit" not in " ".join(str(x) for x in churn.loc["D", ["reason_1", "reason_2", "reason_3"]])
    # and what lowers a score is never a reason: D has no purchase signal at all
    assert churn.loc["D", "reason_1"] is None or churn.loc["D", "reason_logodds_1"] > 0
    for frame in (buy, churn):
        words = " ".join(str(x) for x in frame[["reason_1", "reason_2", "reason_3"]].to_numpy().ravel())
        assert "temperature" not in words and "half-life" not in words and "hl30d" not in words


def test_fast_tree_shap_equals_pred_contrib(models):
    fitted, X = models
    for model in fitted.values():
        features = model.feature_names_
        rows = X[features].iloc[:500]
        fast = TreeShap(model.booster_, model.best_iteration_)
        assert fast.fast
        ref = model.booster_.predict(rows, pred_contrib=True, num_iteration=model.best_iteration_)
        np.testing.assert_allclose(fast.contributions(rows, chunk_rows=128, threads=2), ref[:, :-1],
                                   rtol=1e-9, atol=1e-12)


def test_fast_tree_shap_handles_missing_values_and_categories():
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({
        "recency__webinar__days": np.where(rng.random(n) < 0.3, np.nan, rng.exponential(50, n)),
        "freq__webinar__30d": rng.poisson(1, n).astype(np.int32),
        "static__segment__attr": pd.Categorical(rng.choice(["SMB", "Mid", "Enterprise", None], n)),
        "value__purchase__total": np.where(rng.random(n) < 0.5, 0.0, rng.gamma(2, 1000, n)),
    })
    seg = X["static__segment__attr"].astype(str).map({"SMB": 1.0, "Mid": -0.5}).fillna(0.0)
    logit = -1 + 0.8 * X["freq__webinar__30d"] + seg - 0.01 * X["recency__webinar__days"].fillna(200)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = SignalModel(LightGBMSettings(num_threads=1, min_child_samples=10, feature_fraction=1.0,
                                         n_estimators=80, early_stopping_rounds=80), seed=2)
    model.fit(X.iloc[:3000], y[:3000], X.iloc[3000:], y[3000:])
    ref = model.booster_.predict(X, pred_contrib=True, num_iteration=model.best_iteration_)
    fast = TreeShap(model.booster_, model.best_iteration_)
    np.testing.assert_allclose(fast.contributions(X, chunk_rows=700), ref[:, :-1], rtol=1e-9, atol=1e-12)
    assert fast.direction[list(X.columns).index("freq__webinar__30d")] == 1


def test_wording_helpers():
    assert word_count("inquiry", 2, 90, 1.0, catalog=CATALOG) == "2 inquiries in the last 90 days (usually 1 a month)"
    assert word_count(None, 1, 30, 0.25, catalog=CATALOG) == "1 touch in the last 30 days (usually 0.3 a month)"
    assert word_recency("sales_visit", 0.4, catalog=CATALOG) == "sales visit today"
    assert word_recency("seminar", 1.9, catalog=CATALOG) == "seminar yesterday"
    assert word_recency("seminar", float("nan"), catalog=CATALOG) == "no seminar yet"
    assert word_recency(None, 20.0, catalog=CATALOG) == "no touch for 20 days"
    assert group_of("temp_prior__all__hl30d") == "overall" and group_of("static__segment__attr") == "attribute:segment"
    assert group_of("recency__webinar__days") == "webinar"
