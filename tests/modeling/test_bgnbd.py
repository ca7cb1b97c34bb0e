"""The BG/NBD baseline (signals.modeling.bgnbd) and the classic RFM score of its summary.

Reference figures, and where they come from:

* Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2),
  Sec. 7, on the 2,357-customer CDNOW sample (weeks 1-39 calibration, 40-78 holdout):
  r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, log-likelihood -9582.4; the 1,411 customers
  with no repeat purchase in weeks 1-39 made 334 purchases in weeks 40-78 (0.24 each), the model
  expects 0.23; the correlation of the conditional expectations with the holdout purchases is
  0.626.
* lifetimes 0.11.3 ``BetaGeoFitter`` on ``cdnow_customers_summary.csv`` (run once by hand, outside
  this test suite, which never imports lifetimes): r = 0.24259293, alpha = 4.41353227,
  a = 0.79288597, b = 2.42575238; for (x, t_x, T) = (2, 30.43, 38.86) P(alive) = 0.72660914 and
  E[Y(39)] = 1.22591042; E[X(39)] = 1.19501623.
* Everything else is derived independently here: Monte-Carlo simulation of the BG/NBD story and
  a one-dimensional quadrature of the conditional expectation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from signals.errors import DataError
from signals.io.cdnow import (
    cdnow_available,
    cdnow_customers_summary_path,
    read_cdnow,
    read_cdnow_sample_ids,
)
from signals.modeling.baselines import rfm_summary_score
from signals.modeling.bgnbd import (
    BGNBD,
    bgnbd_features,
    count_purchase_days,
    order_means,
    rfm_summary,
)
from signals.schemas import check_events

needs_cdnow = pytest.mark.skipif(not cdnow_available(), reason="CDNOW needs the optional extra: pip install 'signals[cdnow]'")

PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
LIFETIMES = {"r": 0.24259293, "alpha": 4.41353227, "a": 0.79288597, "b": 2.42575238}
CALIBRATION_END = "1997-10-01"  # weeks 1-39 = 1997-01-01 .. 1997-09-30 (included)
HOLDOUT_END = "1998-07-01"  # weeks 40-78 = 1997-10-01 .. 1998-06-30 (included)
UTC = "UTC"


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


# --------------------------------------------------------------------------------------------
# shared real data (read once per module: ~0.3 s)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return read_cdnow()


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    return pd.read_csv(cdnow_customers_summary_path())


@pytest.fixture(scope="module")
def published_fit(published: pd.DataFrame) -> BGNBD:
    return BGNBD().fit(published["frequency"], published["recency"], published["T"])


@pytest.fixture(scope="module")
def sample_ids() -> pd.DataFrame:
    return read_cdnow_sample_ids()


@pytest.fixture(scope="module")
def sample_events(events: pd.DataFrame, sample_ids: pd.DataFrame) -> pd.DataFrame:
    return events[events["customer_id"].astype(str).isin(set(sample_ids["customer_id"]))]


@pytest.fixture(scope="module")
def holdout_by_sample_id(sample_events: pd.DataFrame, sample_ids: pd.DataFrame) -> np.ndarray:
    """Purchase days in weeks 40-78, in the row order of the published summary (sample id 1..2357)."""
    counts = count_purchase_days(sample_events, CALIBRATION_END, HOLDOUT_END)
    return counts.reindex(sample_ids["customer_id"], fill_value=0).to_numpy()


# --------------------------------------------------------------------------------------------
# rfm_summary, count_purchase_days and the RFM score on hand-typed tables


def _hand_events() -> pd.DataFrame:
    rows = [
        # customer 001: two orders on Jan 1 are one purchase day; the one at the cutoff is out
        ("001", "2024-01-01 10:00", "purchase", 10.0),
        ("001", "2024-01-01 15:00", "purchase", 5.0),
        ("001", "2024-01-15 09:00", "purchase", 20.0),
        ("001", "2024-01-20 09:00", "email_click", 0.0),
        ("001", "2024-01-29 00:00", "purchase", 30.0),
        # customer 002: one purchase late on Jan 22
        ("002", "2024-01-22 23:59", "purchase", 7.0),
        # customer 003: three purchase days before the cutoff, one after
        ("003", "2024-01-08 00:00", "purchase", 1.0),
        ("003", "2024-01-10 12:00", "purchase", 2.0),
        ("003", "2024-01-22 08:00", "purchase", 3.0),
        ("003", "2024-02-05 00:00", "purchase", 4.0),
        # customer 004 buys only after the cutoff, 005 never buys
        ("004", "2024-02-01 00:00", "purchase", 9.0),
        ("005", "2024-01-03 00:00", "webinar", 0.0),
    ]
    ev = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", "value"])
    ev["ts"] = pd.to_datetime(ev["ts"]).dt.tz_localize(UTC)
    ev["source"] = "test"
    return check_events(ev)


def test_rfm_summary_on_a_hand_typed_table() -> None:
    summary = rfm_summary(_hand_events(), "2024-01-29")
    expected = pd.DataFrame(
        {
            "frequency": [1, 0, 2],
            "recency": [2.0, 0.0, 2.0],  # 001: Jan 1 -> Jan 15; 003: Jan 8 -> Jan 22 (weeks)
            "T": [4.0, 1.0, 3.0],  # from the first purchase day to the cutoff
            "monetary_value": [20.0, 0.0, 2.5],  # mean of the repeat days; 0 without one
            "spend": [35.0, 7.0, 6.0],
        },
        index=pd.Index(["001", "002", "003"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(summary, expected, check_index_type=False)
    in_days = rfm_summary(_hand_events(), "2024-01-29", time_unit_days=1)
    assert in_days["recency"].tolist() == [14.0, 0.0, 14.0]
    assert in_days["T"].tolist() == [28.0, 7.0, 21.0]


def test_rfm_summary_cutoff_is_an_instant_not_a_day() -> None:
    # at noon on Jan 22: 003's 08:00 purchase is in, 002's 23:59 purchase is not
    summary = rfm_summary(_hand_events(), pd.Timestamp("2024-01-22 12:00", tz=UTC))
    assert summary.index.tolist() == ["001", "003"]
    assert summary.loc["003", "frequency"] == 2
    assert summary.loc["003", "T"] == pytest.approx(14.5 / 7)
    # every row used, webinars included: 005 appears
    assert "005" in rfm_summary(_hand_events(), "2024-01-29", touchpoints=None).index


def test_count_purchase_days_window_is_half_open() -> None:
    counts = count_purchase_days(_hand_events(), "2024-01-29", "2024-03-01")
    assert counts.to_dict() == {"001": 1, "003": 1, "004": 1}
    assert count_purchase_days(_hand_events(), "2024-01-01", "2024-01-29").to_dict() == {"001": 2, "002": 1, "003": 3}
    with pytest.raises(ValueError, match="after start"):
        count_purchase_days(_hand_events(), "2024-02-01", "2024-01-01")


def test_rfm_summary_score_quintiles_and_ties() -> None:
    summary = pd.DataFrame(
        {
            "frequency": [0, 1, 2, 3, 4],
            "recency": [0.0, 5.0, 8.0, 9.0, 10.0],  # T - recency = 10, 5, 2, 1, 0
            "T": [10.0] * 5,
            "spend": [10.0, 20.0, 30.0, 40.0, 50.0],
        },
        index=list("abcde"),
    )
    score = rfm_summary_score(summary)
    assert score["R"].tolist() == [1, 2, 3, 4, 5]
    assert score["F"].tolist() == [1, 2, 3, 4, 5]
    assert score["M"].tolist() == [1, 2, 3, 4, 5]
    assert score["rfm"].tolist() == [3, 6, 9, 12, 15]
    # six tied non-repeaters share the average rank 3.5 -> percentile 0.3 -> score 2
    tied = pd.DataFrame(
        {"frequency": [0] * 6 + [1, 2, 3, 4], "recency": [0.0] * 10, "T": [1.0] * 10, "spend": [1.0] * 10}
    )
    assert rfm_summary_score(tied)["F"].tolist() == [2] * 6 + [4, 4, 5, 5]
    assert rfm_summary_score(tied)["R"].nunique() == 1
    with pytest.raises(ValueError, match="spend"):
        rfm_summary_score(summary.drop(columns="spend"))


@needs_cdnow
def test_rfm_summary_reproduces_the_published_cdnow_summary(
    sample_events: pd.DataFrame, sample_ids: pd.DataFrame, published: pd.DataFrame
) -> None:
    summary = rfm_summary(sample_events, CALIBRATION_END).reindex(sample_ids["customer_id"])
    assert summary["frequency"].tolist() == published["frequency"].tolist()
    # the published file rounds to 0.01 week
    np.testing.assert_allclose(summary["recency"], published["recency"], atol=0.005 + 1e-9)
    # the published T stops at midnight of 1997-09-30, ours at the cutoff (1997-10-01): one day more
    np.testing.assert_allclose(summary["T"] - 1 / 7, published["T"], atol=0.005 + 1e-9)
    # and with the published T convention the fit lands on the paper's estimates again
    big_t = summary["T"] - 1 / 7
    model = BGNBD().fit(summary["frequency"], np.minimum(summary["recency"], big_t), big_t)
    for name, value in PAPER.items():
        assert abs(model.params_[name] - value) <= 5e-4 + 1e-9, name


# --------------------------------------------------------------------------------------------
# BG/NBD on the published summary


@needs_cdnow
def test_fit_reproduces_the_published_estimates(published_fit: BGNBD, published: pd.DataFrame) -> None:
    params = published_fit.params_
    assert list(params.index) == ["r", "alpha", "a", "b"]
    for name, value in PAPER.items():
        # the paper prints three decimals: ours must round to them
        assert abs(params[name] - value) <= 5e-4 + 1e-9, (name, params[name])
        # and agree with lifetimes' optimum to 1e-5
        assert params[name] == pytest.approx(LIFETIMES[name], rel=1e-5), name
    assert published_fit.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert published_fit.n_customers_ == 2_357
    per_customer = published_fit.log_likelihood(published["frequency"], published["recency"], published["T"])
    assert per_customer.sum() == pytest.approx(published_fit.log_likelihood_, rel=1e-12)
    # a maximum: the printed (rounded) parameters fit slightly worse
    rounded = BGNBD()
    rounded.params_ = pd.Series(PAPER)
    worse = rounded.log_likelihood(published["frequency"], published["recency"], published["T"]).sum()
    assert worse < published_fit.log_likelihood_


@needs_cdnow
def test_fit_does_not_depend_on_the_start(published: pd.DataFrame, published_fit: BGNBD) -> None:
    for start in [(0.1, 0.1, 0.1, 0.1), (5.0, 50.0, 5.0, 0.5)]:
        other = BGNBD(initial_params=start).fit(published["frequency"], published["recency"], published["T"])
        np.testing.assert_allclose(other.params_, published_fit.params_, rtol=1e-5)
    # weights are customer counts: every customer twice = the same optimum, twice the likelihood
    doubled = BGNBD().fit(published["frequency"], published["recency"], published["T"], weights=np.full(2_357, 2.0))
    np.testing.assert_allclose(doubled.params_, published_fit.params_, rtol=1e-5)
    assert doubled.log_likelihood_ == pytest.approx(2 * published_fit.log_likelihood_, rel=1e-9)
    assert doubled.n_customers_ == 4_714


def test_individual_quantities_of_the_paper_example() -> None:
    model = BGNBD()
    model.params_ = pd.Series(LIFETIMES)
    # customer 1 of the summary: x = 2, t_x = 30.43, T = 38.86
    assert model.conditional_probability_alive(2, 30.43, 38.86) == pytest.approx(0.72660914, rel=1e-6)
    assert model.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86) == pytest.approx(
        1.22591042, rel=1e-6
    )
    assert model.expected_number_of_purchases_up_to_time(39.0) == pytest.approx(1.19501623, rel=1e-6)
    assert model.log_likelihood(2, 30.43, 38.86) == pytest.approx(-9.46, abs=0.005)


def test_probability_alive_is_one_without_repeat_and_falls_with_silence() -> None:
    model = BGNBD()
    model.params_ = pd.Series(PAPER)
    big_t = np.linspace(1.0, 200.0, 60)
    np.testing.assert_array_equal(model.conditional_probability_alive(np.zeros(60), np.zeros(60), big_t), 1.0)
    for x, t_x in [(1, 0.5), (2, 10.0), (7, 29.43), (40, 30.0)]:
        p = model.conditional_probability_alive(np.full(60, x), np.full(60, t_x), np.maximum(big_t, t_x))
        later = p[big_t > t_x]
        assert np.all((later > 0) & (later < 1))
        assert np.all(np.diff(later) < 0), (x, t_x)  # strictly falls as T grows
    # a more recent last purchase means more likely alive
    p = model.conditional_probability_alive(np.full(5, 3), [1.0, 5.0, 10.0, 20.0, 30.0], np.full(5, 30.0))
    assert np.all(np.diff(p) > 0)
    assert p[-1] == pytest.approx(1 / (1 + PAPER["a"] / (PAPER["b"] + 2)))  # t_x = T


@pytest.mark.parametrize(
    "params",
    [
        PAPER,
        # scipy's hyp2f1 returns nan for some of these (C - A - B a whole number, z near 1)
        {"r": 2.0, "alpha": 1.0, "a": 3.0, "b": 0.5},
        # a = 1 exactly: eq. 10 is 0/0 there
        {"r": 0.3, "alpha": 1.0, "a": 1.0, "b": 0.5},
    ],
)
def test_conditional_expectation_matches_quadrature(params: dict[str, float]) -> None:
    """Eq. 10 (2F1) against its integral form, computed here with scipy.stats.beta.

    Alive at T, the posterior is lambda ~ Gamma(r+x, rate alpha+T), p ~ Beta(a, b+x); an alive
    customer expects (1 - exp(-lambda p t)) / p purchases in t; integrating out lambda gives
    E = P(alive) * int_0^1 [1 - (1 + p t / (alpha+T))^-(r+x)] / p * Beta(p; a, b+x) dp.
    """
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    model = BGNBD()
    model.params_ = pd.Series(params)
    cases = [(0, 0.0, 38.86, 39.0), (2, 30.43, 38.86, 39.0), (7, 29.43, 38.86, 39.0), (50, 38.0, 39.0, 39.0),
             (150, 50.0, 52.0, 10.0), (3, 5.0, 50.0, 100.0), (1, 1.0, 1.0, 0.5), (20, 2.0, 60.0, 520.0),
             (300, 100.0, 104.0, 1000.0), (1000, 100.0, 104.0, 520.0)]
    x, t_x, big_t, t = (np.array(column, dtype=float) for column in zip(*cases, strict=True))
    got = model.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, big_t)
    for i, (x_i, t_x_i, big_t_i, t_i) in enumerate(cases):
        def integrand(p, x=x_i, big_t=big_t_i, t=t_i):
            return -np.expm1(-(r + x) * np.log1p(p * t / (alpha + big_t))) / p * stats.beta.pdf(p, a, b + x)

        integral, _ = integrate.quad(integrand, 0.0, 1.0, limit=400, epsabs=0.0, epsrel=1e-11)
        expected = model.conditional_probability_alive(x_i, t_x_i, big_t_i) * integral
        assert got[i] == pytest.approx(expected, rel=1e-7), cases[i]
    assert model.conditional_expected_number_of_purchases_up_to_time(0.0, 3, 5.0, 10.0) == 0.0
    # eq. 9 is eq. 10's numerator for a customer with no history yet
    new = model.expected_number_of_purchases_up_to_time(np.array([0.0, 39.0, 520.0]))
    assert new[0] == 0.0
    alive_now = model.conditional_expected_number_of_purchases_up_to_time(np.array([39.0, 520.0]), 0, 0.0, 1e-12)
    np.testing.assert_allclose(new[1:], alive_now, rtol=1e-9)


# --------------------------------------------------------------------------------------------
# Monte-Carlo: simulate the BG/NBD story itself


def _simulate(params: dict[str, float], big_t: np.ndarray, t: float, rng: np.random.Generator):
    """Histories to T and purchases in (T, T+t], drawn from the model's assumptions directly.

    G ~ Geometric(p) is the repeat purchase after which the customer leaves; K ~ Poisson(lambda T)
    the purchase opportunities in (0, T]: x = min(K, G), alive at T iff G > K, and given K the
    x-th of K uniform times is T * Beta(x, K - x + 1).
    """
    n = len(big_t)
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    leave_after = rng.geometric(p)
    k = rng.poisson(lam * big_t)
    x = np.minimum(k, leave_after)
    alive = leave_after > k
    t_x = np.zeros(n)
    repeat = x > 0
    t_x[repeat] = big_t[repeat] * rng.beta(x[repeat], k[repeat] - x[repeat] + 1)
    future = np.where(alive, np.minimum(rng.poisson(lam * t), leave_after - k), 0)
    return x, t_x, alive, future


def test_conditional_quantities_match_simulation() -> None:
    rng = np.random.default_rng(20050401)
    n = 200_000
    big_t = rng.uniform(26.0, 39.0, n)
    x, t_x, alive, future = _simulate(PAPER, big_t, 39.0, rng)
    model = BGNBD()
    model.params_ = pd.Series(PAPER)
    p_alive = model.conditional_probability_alive(x, t_x, big_t)
    expected = model.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, big_t)
    # any grouping by the history is fair: by x, and by P(alive) quintile among repeaters
    groups = pd.Series(np.minimum(x, 6).astype(str))
    repeat = x > 0
    groups[repeat] = groups[repeat] + "/" + pd.qcut(p_alive[repeat], 5, labels=False).astype(str)
    frame = pd.DataFrame({"g": groups, "p": p_alive, "alive": alive, "e": expected, "y": future})
    for name, g in frame.groupby("g"):
        n_g = len(g)
        alive_se = max(np.sqrt(g["alive"].mean() * (1 - g["alive"].mean()) / n_g), 1e-12)
        assert abs(g["p"].mean() - g["alive"].mean()) < 4.5 * alive_se + 1e-12, name
        assert abs(g["e"].mean() - g["y"].mean()) < 4.5 * g["y"].std() / np.sqrt(n_g), name
    assert abs(expected.sum() - future.sum()) < 4.5 * np.sqrt(((future - expected) ** 2).sum())
    # and the unconditional expectation (eq. 9) of a new customer
    x39, _, _, _ = _simulate(PAPER, np.full(1_000_000, 39.0), 0.0, rng)
    assert model.expected_number_of_purchases_up_to_time(39.0) == pytest.approx(
        x39.mean(), abs=4.5 * x39.std() / 1_000
    )


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(7)
    big_t = rng.uniform(26.0, 39.0, 30_000)
    x, t_x, _, _ = _simulate(PAPER, big_t, 0.0, rng)
    model = BGNBD().fit(x, t_x, big_t)
    truth = BGNBD()
    truth.params_ = pd.Series(PAPER)
    at_truth = truth.log_likelihood(x, t_x, big_t).sum()
    # the MLE beats the truth, and the truth lies in the 99.9% likelihood-ratio region
    assert model.log_likelihood_ >= at_truth
    assert 2 * (model.log_likelihood_ - at_truth) < stats.chi2.ppf(0.999, df=4)
    assert model.params_["r"] == pytest.approx(PAPER["r"], rel=0.1)
    assert model.params_["alpha"] == pytest.approx(PAPER["alpha"], rel=0.1)


# --------------------------------------------------------------------------------------------
# the holdout figures of the paper, from the raw transactions


@needs_cdnow
def test_holdout_figures_of_the_paper(published: pd.DataFrame, published_fit: BGNBD, holdout_by_sample_id: np.ndarray) -> None:
    x, t_x, big_t = published["frequency"], published["recency"], published["T"]
    expected = published_fit.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, big_t)
    zero = x.to_numpy() == 0
    assert zero.sum() == 1_411
    assert holdout_by_sample_id[zero].sum() == 334  # the paper's 334 / 1,411 = 0.24
    assert round(float(expected[zero].mean()), 2) == 0.23
    assert round(float(np.corrcoef(expected, holdout_by_sample_id)[0, 1]), 3) == 0.626
    # weeks 40-78: 1,882 repeat purchase days; BG/NBD under-forecasts them (about 1,653)
    assert holdout_by_sample_id.sum() == 1_882
    assert 0.8 * 1_882 < expected.sum() < 1_882


@needs_cdnow
def test_full_cdnow_fits_and_both_baselines_rank_the_holdout(events: pd.DataFrame, published_fit: BGNBD) -> None:
    summary = rfm_summary(events, CALIBRATION_END)
    assert len(summary) == 23_570
    model = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    # the sample is a random tenth of the cohort: same order of magnitude everywhere
    for name in PAPER:
        assert model.params_[name] == pytest.approx(published_fit.params_[name], rel=0.25), name
    bought = count_purchase_days(events, CALIBRATION_END, HOLDOUT_END).reindex(summary.index, fill_value=0) > 0
    expected = model.conditional_expected_number_of_purchases_up_to_time(
        39.0, summary["frequency"], summary["recency"], summary["T"]
    )
    rfm = rfm_summary_score(summary)["rfm"]
    for score in (expected, rfm.to_numpy()):
        auc = stats.mannwhitneyu(score[bought.to_numpy()], score[~bought.to_numpy()]).statistic / (
            bought.sum() * (~bought).sum()
        )
        assert auc > 0.7


def test_fit_rejects_inconsistent_summaries() -> None:
    # a summary that breaks the contract is the data's fault: DataError (one line in the CLI)
    with pytest.raises(DataError, match="whole number"):
        BGNBD().fit([1.5], [1.0], [2.0])
    with pytest.raises(DataError, match=r"\[0, T\]"):
        BGNBD().fit([1], [3.0], [2.0])
    with pytest.raises(DataError, match="recency must be 0"):
        BGNBD().fit([0], [1.0], [2.0])
    with pytest.raises(DataError, match="non-finite"):
        BGNBD().fit([1], [np.nan], [2.0])
    with pytest.raises(ValueError, match="not fitted"):
        BGNBD().conditional_probability_alive(1, 1.0, 2.0)
    # four customers cannot identify the beta mixing: a and b run off, and the error says so
    with pytest.raises(DataError, match="cannot identify"):
        BGNBD().fit([2, 1, 0, 0], [30.43, 1.71, 0.0, 0.0], [38.86] * 4)



# --------------------------------------------------------------------------------------------
# the penalty and BG/NBD features of (customer, cutoff) rows


def test_penalty_keeps_a_fit_finite_where_the_likelihood_cannot_identify_it() -> None:
    x, t_x, big_t = [2, 1, 0, 0], [30.43, 1.71, 0.0, 0.0], [38.86] * 4
    model = BGNBD(penalty=1.0).fit(x, t_x, big_t)  # plain maximum likelihood raises here (see above)
    assert np.all((model.params_ > 1e-3) & (model.params_ < 1e3))
    with pytest.raises(ValueError, match="penalty"):
        BGNBD(penalty=-1.0).fit(x, t_x, big_t)


@needs_cdnow
def test_a_small_penalty_barely_moves_the_published_fit(published: pd.DataFrame, published_fit: BGNBD) -> None:
    x, t_x, big_t = published["frequency"], published["recency"], published["T"]
    model = BGNBD(penalty=1.0).fit(x, t_x, big_t)
    # the weakly identified beta mixing (a, b) moves by a few percent on 2,357 customers ...
    np.testing.assert_allclose(model.params_, published_fit.params_, rtol=0.06)
    assert model.log_likelihood_ <= published_fit.log_likelihood_  # the maximum likelihood is the maximum
    # ... the scores hardly: P(alive) by < 0.01, the 39-week expectation by < 4%, the ranking not at all
    assert np.max(np.abs(model.conditional_probability_alive(x, t_x, big_t)
                         - published_fit.conditional_probability_alive(x, t_x, big_t))) < 0.01
    ours = model.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, big_t)
    mle = published_fit.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, big_t)
    np.testing.assert_allclose(ours, mle, rtol=0.04)
    assert np.corrcoef(ours, mle)[0, 1] > 0.9999


def _purchases(seed: int, n: int = 400) -> pd.DataFrame:
    """BG/NBD-like purchase days of ``n`` customers who arrive over 60 days."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz=UTC)
    rows = []
    for i in range(n):
        day, rate, leave = rng.uniform(0, 60), rng.gamma(0.5, 1 / 8), rng.beta(1.0, 3.0)
        while day < 240:
            rows.append((f"{i:04d}", start + pd.Timedelta(days=float(np.floor(day))), rng.gamma(2, 20)))
            if rng.random() < leave:
                break
            day += rng.exponential(1 / rate) + 1
    ev = pd.DataFrame(rows, columns=["customer_id", "ts", "value"]).assign(touchpoint="purchase")
    return ev


def test_bgnbd_features_fit_each_cutoff_on_the_past_only() -> None:
    events = _purchases(1)
    cut1, cut2 = pd.Timestamp("2024-03-04", tz=UTC), pd.Timestamp("2024-05-06", tz=UTC)
    ids = sorted(events["customer_id"].unique())[:50] + ["nobody"]
    rows = pd.DataFrame({"customer_id": ids * 2, "cutoff": [cut1] * len(ids) + [cut2] * len(ids)})
    features, models = bgnbd_features(events, rows, horizons_days=[28, 91])
    assert list(features.columns) == ["customer_id", "cutoff", "bgnbd__purchase__palive",
                                      "bgnbd__purchase__exp28d", "bgnbd__purchase__exp91d"]
    assert sorted(models) == [cut1, cut2]
    for cutoff in (cut1, cut2):  # each cutoff: its own summary, a model fitted on everyone known then
        summary = rfm_summary(events, cutoff)
        manual = BGNBD(penalty=1.0).fit(summary["frequency"], summary["recency"], summary["T"])
        pd.testing.assert_series_equal(models[cutoff].params_, manual.params_)
        at = (rows["cutoff"] == cutoff).to_numpy() & (rows["customer_id"] != "nobody").to_numpy()
        known = summary.reindex(rows.loc[at, "customer_id"])
        has = known["frequency"].notna().to_numpy()
        x, t_x, big_t = (known[c].to_numpy()[has] for c in ("frequency", "recency", "T"))
        np.testing.assert_allclose(features.loc[at, "bgnbd__purchase__palive"].to_numpy()[has],
                                   manual.conditional_probability_alive(x, t_x, big_t), rtol=1e-12)
        np.testing.assert_allclose(features.loc[at, "bgnbd__purchase__exp91d"].to_numpy()[has],
                                   manual.conditional_expected_number_of_purchases_up_to_time(13, x, t_x, big_t),
                                   rtol=1e-12)
        assert features.loc[at, "bgnbd__purchase__palive"].isna().sum() == (~has).sum()
    assert features.loc[rows["customer_id"] == "nobody"].iloc[:, 2:].isna().all().all()
    # events at or after the first cutoff change neither its rows nor its parameters ...
    later = events[events["ts"] >= cut1].assign(ts=lambda d: d["ts"] + pd.Timedelta(days=3))
    noisy = pd.concat([events, later, events.head(40).assign(ts=cut1)], ignore_index=True)
    again, again_models = bgnbd_features(noisy, rows, horizons_days=[28, 91])
    first = (rows["cutoff"] == cut1).to_numpy()
    pd.testing.assert_frame_equal(again[first], features[first])
    pd.testing.assert_series_equal(again_models[cut1].params_, models[cut1].params_)
    # ... while they are history at the second one (the check can fail)
    assert not np.allclose(again.loc[~first, "bgnbd__purchase__exp28d"].fillna(0),
                           features.loc[~first, "bgnbd__purchase__exp28d"].fillna(0))


def test_bgnbd_features_with_a_given_model_do_not_fit() -> None:
    events = _purchases(2, n=60)
    model = BGNBD()
    model.params_ = pd.Series(PAPER)
    rows = pd.DataFrame({"customer_id": sorted(events["customer_id"].unique())[:5],
                         "cutoff": pd.Timestamp("2024-04-01", tz=UTC)})
    features, models = bgnbd_features(events, rows, model=model, horizons_days=[7])
    assert all(m is model for m in models.values())
    summary = rfm_summary(events, "2024-04-01").loc[rows["customer_id"]]
    np.testing.assert_allclose(features["bgnbd__purchase__palive"],
                               model.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"]))
    with pytest.raises(ValueError, match="positive"):
        bgnbd_features(events, rows, model=model, horizons_days=[0])


def test_order_means_use_the_past_only_and_match_a_plain_oracle() -> None:
    rng = np.random.default_rng(3)
    n = 400
    ev = pd.DataFrame({
        "customer_id": rng.choice(["a", "b", "c", "d"], n),
        "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90 * 24, n), unit="h"),
        "touchpoint": rng.choice(["purchase", "visit"], n, p=[0.7, 0.3]),
        "value": rng.gamma(2.0, 10.0, n).round(2), "items": rng.integers(1, 5, n),
    })
    cutoffs = pd.to_datetime(["2024-01-20 00:00", "2024-02-10 13:00", "2024-03-01 00:00"], utc=True)
    rows = pd.DataFrame({"customer_id": np.tile(["a", "b", "c", "d", "e"], 3), "cutoff": np.repeat(cutoffs, 5)})
    got = order_means(ev, rows, columns=["value", "items"])
    # anything at or after a row's cutoff must not matter: scramble it, add more of it
    for cutoff in cutoffs:
        later = ev.assign(value=np.where(ev["ts"] >= cutoff, 1e6, ev["value"]))
        later = pd.concat([later, ev.assign(ts=cutoff)], ignore_index=True)
        same = order_means(later, rows[rows["cutoff"] == cutoff], columns=["value", "items"])
        pd.testing.assert_frame_equal(same, got[rows["cutoff"] == cutoff])
    for i, row in rows.iterrows():  # the oracle: sum each purchase day before the cutoff, then average
        past = ev[(ev["customer_id"] == row["customer_id"]) & (ev["ts"] < row["cutoff"]) & (ev["touchpoint"] == "purchase")]
        days = past.groupby(past["ts"].dt.floor("D"))[["value", "items"]].sum()
        for column in ("value", "items"):
            expected = days[column].mean() if len(days) else np.nan
            assert got.loc[i, f"order__purchase__mean_{column}"] == pytest.approx(expected, nan_ok=True)
    assert got.loc[rows["customer_id"] == "e"].iloc[:, 2:].isna().all().all()
    with pytest.raises(DataError, match="items"):
        order_means(ev.drop(columns="items"), rows, columns=["items"])
