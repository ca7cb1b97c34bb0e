"""Top-decile lift counts tied scores at the edge of the top 10% fractionally: row order never matters."""

from __future__ import annotations

import numpy as np
import pytest

from signals.modeling.metrics import bootstrap_metrics, top_decile_lift


def test_tied_scores_give_the_same_lift_in_both_row_orders():
    # 100 rows, all tied: the top 10% is a tenth of the one tie group, i.e. the overall rate: lift 1
    y = np.r_[np.ones(10), np.zeros(90)]
    score = np.zeros(100)
    assert top_decile_lift(y, score) == pytest.approx(1.0)
    assert top_decile_lift(y[::-1], score) == pytest.approx(1.0)


def test_a_tie_group_across_the_edge_counts_in_proportion():
    # 5 distinct top scores (2 positives), then 10 tied rows (5 positives) of which 5 fit in the top 10
    y = np.r_[[1, 1, 0, 0, 0], [1] * 5 + [0] * 5, np.zeros(85)]
    score = np.r_[[9, 8, 7, 6, 5], np.full(10, 4.0), np.zeros(85)]
    expected = ((2 + 0.5 * 5) / 10) / (7 / 100)
    rng = np.random.default_rng(0)
    for _ in range(5):
        order = rng.permutation(100)
        assert top_decile_lift(y[order], score[order]) == pytest.approx(expected)
    weights = np.ones(100)
    assert top_decile_lift(y, score, weights) == pytest.approx(expected)


def test_distinct_scores_keep_the_plain_definition():
    y = np.r_[np.ones(5), np.zeros(95)]
    score = np.arange(100, 0, -1, dtype=float)
    assert top_decile_lift(y, score) == pytest.approx((5 / 10) / (5 / 100))


def test_reported_lift_does_not_depend_on_row_order():
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.2).astype(float)
    score = np.round(rng.random(400), 1)  # heavy ties
    customers = np.arange(400)
    a = bootstrap_metrics(y, {"m": (score, None)}, customers, rounds=20, seed=3)
    order = np.argsort(-score, kind="stable")[::-1]  # every tie group reversed
    b = bootstrap_metrics(y[order], {"m": (score[order], None)}, customers[order], rounds=20, seed=3)

    def lift(table):
        return table[(table["model"] == "m") & (table["metric"] == "top_decile_lift")]["estimate"].item()

    assert lift(a) == pytest.approx(lift(b))
