"""Metrics equal scikit-learn's; splits never leak the test period; calibration calibrates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from signals.modeling.estimators import Calibrator
from signals.modeling.metrics import (
    bootstrap_metrics,
    brier,
    expected_calibration_error,
    pr_auc,
    roc_auc,
    top_decile_lift,
)
from signals.modeling.splits import time_split


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_metrics_equal_sklearn_with_ties_and_weights(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(3000) < 0.08
    score = np.round(rng.random(3000) + 0.4 * y, 1)  # heavy ties
    weight = rng.integers(0, 4, 3000)
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert pr_auc(y, score) == pytest.approx(average_precision_score(y, score), abs=1e-12)
    assert roc_auc(y, score, weight) == pytest.approx(roc_auc_score(y, score, sample_weight=weight), abs=1e-12)
    assert pr_auc(y, score, weight) == pytest.approx(average_precision_score(y, score, sample_weight=weight), abs=1e-12)
    prob = np.clip(score / 1.5, 0, 1)
    assert brier(y, prob) == pytest.approx(brier_score_loss(y, prob), abs=1e-12)


def test_top_decile_lift_and_ece_on_hand_made_data():
    y = np.array([1] * 5 + [0] * 95)
    score = np.r_[np.linspace(1, 0.9, 5), np.linspace(0.8, 0, 95)]
    assert top_decile_lift(y, score) == pytest.approx((5 / 10) / (5 / 100))
    prob = np.full(100, 0.05)
    assert expected_calibration_error(y, prob) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(y, np.full(100, 0.25)) == pytest.approx(0.20)


def test_bootstrap_intervals_cover_the_estimate_and_resample_customers_together():
    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.1
    score = rng.random(4000) + 0.3 * y
    table = bootstrap_metrics(y, {"m": (score, np.clip(score / 2, 0, 1))}, np.repeat(np.arange(400), 10), rounds=100)
    auc = table[(table["metric"] == "roc_auc")].iloc[0]
    assert auc["low"] < auc["estimate"] < auc["high"]
    assert set(table["metric"]) == {"roc_auc", "pr_auc", "top_decile_lift", "brier", "ece"}
    # one customer owning every row: every bootstrap round is the full data, the interval collapses
    single = bootstrap_metrics(y, {"m": (score, None)}, np.zeros(4000), rounds=20)
    row = single[single["metric"] == "roc_auc"].iloc[0]
    assert row["low"] == pytest.approx(row["estimate"]) == pytest.approx(row["high"])


def test_time_split_never_lets_test_cutoffs_into_fitting():
    cutoffs = pd.date_range("2024-01-01", periods=18, freq="MS", tz="UTC")
    for embargo in (True, False):
        split = time_split(cutoffs, n_validation=2, n_test=2, horizon_days=90, embargo=embargo)
        assert set(split.test) == set(cutoffs[-2:])
        assert max(split.train) < min(split.validation) <= max(split.validation) < min(split.test)
        if embargo:  # as in deployment: every label used for fitting closed before the test starts
            horizon = pd.Timedelta(days=90)
            assert all(t + horizon <= min(split.test) for t in split.train + split.validation)
            assert all(t + horizon <= min(split.validation) for t in split.train)
    frame = pd.DataFrame({"cutoff": np.repeat(cutoffs, 3)})
    train, val, test = split.masks(frame)
    assert not (train & test).any() and not (val & test).any() and test.sum() == 6


def test_time_split_explains_too_few_cutoffs():
    with pytest.raises(ValueError, match="no training cutoff"):
        time_split(pd.date_range("2024-01-01", periods=6, freq="MS", tz="UTC"), n_validation=2, n_test=2,
                   horizon_days=90)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_fixes_miscalibrated_scores_and_round_trips(method):
    rng = np.random.default_rng(1)
    logit = rng.normal(-3, 1.2, 20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-logit))
    raw = 2.5 * logit + 4  # a ranking that is right but badly scaled
    calibrator = Calibrator(method).fit(raw[:10000], y[:10000])
    before = expected_calibration_error(y[10000:], 1 / (1 + np.exp(-raw[10000:])))
    after = expected_calibration_error(y[10000:], calibrator.predict(raw[10000:]))
    assert after < 0.01 < before
    again = Calibrator.from_dict(calibrator.to_dict())
    np.testing.assert_allclose(again.predict(raw), calibrator.predict(raw), rtol=1e-12)
