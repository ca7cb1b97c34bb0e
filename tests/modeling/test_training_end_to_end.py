"""End to end on small simulator data: the composable steps, the rolling-origin backtest, the
learned points (own effect, where defined, refit intervals) against the truth, and the bundle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from signals.dataset import LABEL
from signals.jobs.train import write_bundle
from signals.modeling.metrics import roc_auc
from signals.modeling.points import NA_POPULATION
from signals.modeling.training import (
    MODEL_NAME,
    customer_samples,
    evaluate,
    fit_model,
    fit_task,
    learn_points,
    training_set,
    truth_agreement,
)
from signals.settings import load_settings
from signals.simulate import simulate_crm

# one worker builds the module's trained fixture (make test runs pytest -n 2 --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("training_end_to_end")]

OVERRIDES = [
    "simulate.n_customers=6000",
    "model.lightgbm.num_threads=1",
    "model.bootstrap_rounds=50",
    "model.points_reference_rows=1500",
    "model.points_refits=3",
]


@pytest.fixture(scope="module")
def world():
    settings = load_settings(overrides=OVERRIDES)
    return settings, simulate_crm(settings)


@pytest.fixture(scope="module")
def trained(world):
    settings, sim = world
    return {task: fit_task(sim.events, settings, task=task, customers=sim.customers) for task in ("purchase", "churn")}


@pytest.mark.parametrize("task", ["purchase", "churn"])
def test_learned_points_recover_the_true_ranking(world, trained, task, tmp_path):
    settings, sim = world
    result = trained[task]
    agreement = truth_agreement(result, sim.truth)
    assert agreement["regime"] == "after"
    assert agreement["spearman"] >= 0.75, agreement
    # the newsletter's true weight is 0: its own points' refit interval covers 0 (issue 14, 2)
    newsletter = result.points.set_index("touchpoint").loc["newsletter"]
    assert newsletter["own_points_refit_low"] <= 0 <= newsletter["own_points_refit_high"], newsletter
    # a purchase takes a customer out of the purchase task; a cancellation out of churn (issue 14, 1)
    na = {"purchase": "purchase", "churn": "cancellation"}[task]
    assert result.points.set_index("touchpoint").loc[na, "status"] == NA_POPULATION
    # better than chance and than the falling-frequency rule, on cutoffs it never saw
    assert result.metric("lightgbm", "roc_auc") > 0.6
    assert result.metric("lightgbm", "roc_auc") > result.metric("falling_frequency", "roc_auc")
    bundle = write_bundle(result, tmp_path / task, truth=sim.truth, settings=settings, seconds=0.0)
    summary = json.loads((bundle / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert summary["truth_agreement"]["spearman"] == pytest.approx(agreement["spearman"])
    assert summary["metrics"]["lightgbm.roc_auc_low"] <= summary["metrics"]["lightgbm.roc_auc"]
    for figure in ("points", "metrics", "metrics_by_origin", "gains", "calibration", "half_life"):
        assert (bundle / "figures" / f"{figure}.png").stat().st_size > 10_000
    for table in ("points.csv", "points_refits.csv", "metrics_by_origin.csv", "validation_scores.parquet"):
        assert (bundle / table).is_file()


def test_the_backtest_has_four_embargoed_origins_and_pools_them(trained):
    result = trained["purchase"]
    assert len(result.splits) == 4 and result.split == result.splits[-1]
    horizon = pd.Timedelta(days=result.splits[0].horizon_days)
    tests = [t for s in result.splits for t in s.test]
    assert len(tests) == len(set(tests)) == 4  # every test cutoff scored once
    for split in result.splits:
        assert max(split.train) < min(split.validation) <= max(split.validation) < min(split.test)
        assert all(t + horizon <= split.test[0] for t in split.train + split.validation)
        assert all(t + horizon <= split.validation[0] for t in split.train)
    by_origin = result.metrics_by_origin
    auc = by_origin[(by_origin["model"] == MODEL_NAME) & (by_origin["metric"] == "roc_auc")]
    assert len(auc) == 4
    pooled = result.metrics[(result.metrics["model"] == MODEL_NAME) & (result.metrics["metric"] == "roc_auc")].iloc[0]
    assert pooled["estimate"] == pytest.approx(auc["estimate"].mean())
    assert pooled["low"] < pooled["estimate"] < pooled["high"]
    # each origin's metric is that origin's model on that origin's test rows
    scores = result.test_scores[result.test_scores["origin"] == result.splits[0].origin]
    assert auc.iloc[0]["estimate"] == pytest.approx(roc_auc(scores[LABEL], scores[f"score__{MODEL_NAME}"]))
    # the kept model's validation rows are there for choosing cut points (issue 17)
    assert set(result.validation_scores["cutoff"]) == set(result.split.validation)
    assert {"prob__lightgbm", "score__learned_temperature"} <= set(result.validation_scores.columns)


def test_fit_task_is_its_public_steps_chained(world, trained):
    settings, sim = world
    result = trained["purchase"]
    ts = training_set(sim.events, settings, task="purchase", customers=sim.customers)
    model = fit_model(ts, result.split, settings)
    test = result.split.masks(ts.data)[2]
    X = ts.data.loc[test, ts.features]
    np.testing.assert_allclose(model.probability(X), result.model.probability(X), rtol=1e-12)
    points = learn_points(model, ts, result.split, settings, refit=None)
    pd.testing.assert_series_equal(points.table["own_points"], result.points["own_points"])
    assert points.table["own_points_refit_low"].isna().all()  # refit=None: no interval
    evaluation = evaluate(model, ts, result.split, settings, points=points)
    mine = evaluation.test_scores
    kept = result.test_scores[result.test_scores["origin"] == result.split.origin].reset_index(drop=True)
    np.testing.assert_allclose(mine["prob__lightgbm"], kept["prob__lightgbm"], rtol=1e-12)
    # the intervals come from refits of the whole model: one row per refit and type
    assert result.point_draws["refit"].nunique() == settings.model.points_refits
    draws = result.point_draws.pivot(index="refit", columns="touchpoint", values="own_logodds")["webinar"]
    row = result.points.set_index("touchpoint").loc["webinar"]
    from scipy.stats import t as student_t

    half = student_t.ppf(0.975, len(draws) - 1) * draws.std(ddof=1)
    assert row["own_logodds_refit_high"] - row["own_logodds"] == pytest.approx(half)


def test_fits_side_by_side_give_the_same_results_as_one_after_another(world, trained):
    """The backtest's earlier origins and the refits run on threads (model.parallel_fits: 0 = the
    cores, here 2); one after another (1) must give the same models, points, intervals and scores."""
    settings, sim = world
    side_by_side = load_settings(overrides=[*OVERRIDES, "model.parallel_fits=2"])
    one_by_one = load_settings(overrides=[*OVERRIDES, "model.parallel_fits=1"])
    a = fit_task(sim.events, side_by_side, task="churn", customers=sim.customers)
    b = fit_task(sim.events, one_by_one, task="churn", customers=sim.customers)
    pd.testing.assert_frame_equal(a.points, b.points)
    pd.testing.assert_frame_equal(a.point_draws, b.point_draws)
    pd.testing.assert_frame_equal(a.test_scores, b.test_scores)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.points, trained["churn"].points)  # the fixture ran with the default (0)


def test_one_backtest_origin_keeps_the_same_model_and_points(world, trained):
    """A retrain fits one origin (mlflow.retrain_backtest_origins): the kept model, its split and its
    points are those of the 4-origin backtest's latest origin."""
    settings, sim = world
    one = fit_task(sim.events, load_settings(overrides=[*OVERRIDES, "model.backtest_origins=1"]), task="churn",
                   customers=sim.customers)
    four = trained["churn"]
    assert len(one.splits) == 1 and len(four.splits) == 4 and one.split == four.split
    pd.testing.assert_frame_equal(one.points, four.points)
    kept = four.test_scores[four.test_scores["origin"] == four.split.origin].reset_index(drop=True)
    pd.testing.assert_frame_equal(one.test_scores.reset_index(drop=True), kept)


def test_customer_samples_are_drawn_up_front_and_keep_both_labels(world):
    settings, sim = world
    ts = training_set(sim.events, settings, task="churn", customers=sim.customers)
    from signals.modeling.training import backtest_splits

    split = backtest_splits(ts)[-1]
    train, val, _ = split.masks(ts.data)
    samples = customer_samples(ts, split, 5, "half_sample", seed=1)
    again = customer_samples(ts, split, 5, "half_sample", seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(samples, again, strict=True))
    present = np.unique(ts.customer_code[train | val])
    y = ts.data[LABEL].to_numpy()
    for weights in samples:
        assert set(np.unique(weights)) <= {0.0, 1.0}
        assert (weights[present] > 0).sum() == len(present) // 2
        for mask in (train, val):
            kept = y[mask & (weights[ts.customer_code] > 0)]
            assert 0 < kept.sum() < len(kept)
    boot = customer_samples(ts, split, 2, "bootstrap", seed=1)
    assert all(w[present].sum() == len(present) for w in boot)  # customers drawn with replacement


def test_train_job_reads_files_and_writes_a_bundle(tmp_path, monkeypatch):
    from signals.jobs.simulate import run_simulate
    from signals.jobs.train import checkpoint_folder, run_train

    monkeypatch.chdir(tmp_path)
    settings = load_settings(overrides=[*OVERRIDES, "simulate.n_customers=2500", "model.backtest_origins=1",
                                        "model.points_interval=none"])
    run_simulate(settings, messy=False)
    run = run_train(settings, task="purchase")
    assert run.bundle.resolve() == (tmp_path / "models" / "purchase").resolve()
    assert not checkpoint_folder(run.bundle).exists()  # removed once the bundle is in place
    from signals.features.matrix import build_features
    from signals.features.spec import FeatureSpec
    from signals.io.tables import read_events
    from signals.modeling.estimators import SignalModel

    # the bundle alone (spec + model) rebuilds the test features and reproduces the run's probabilities
    model = SignalModel.load(run.bundle / "model")
    spec = FeatureSpec.from_json((run.bundle / "spec.json").read_text())
    assert {t: p for t, p in spec.learned_points.items() if p} == {t: p for t, p in run.trained.points_by_type.items() if p}
    scores = run.trained.test_scores
    X = build_features(read_events(settings.paths.events), scores[["customer_id", "cutoff"]], spec)
    np.testing.assert_allclose(model.probability(X), scores["prob__lightgbm"], rtol=1e-12)


def test_recency_weights_count_recent_training_cutoffs_more(world, trained, monkeypatch):
    """model.recency_half_life_days: each training row weighs 0.5 ** (days before the latest training
    cutoff / half-life); validation rows stay unweighted; a half-life far beyond the window fits the
    same model as none."""
    from signals.modeling.estimators import SignalModel
    from signals.schemas import CUTOFF

    settings, sim = world
    split = trained["purchase"].split
    ts = training_set(sim.events, settings, task="purchase", customers=sim.customers)
    train = split.masks(ts.data)[0]
    seen = {}
    original = SignalModel.fit

    def spy(self, X, y, X_val, y_val, *, weight=None, val_weight=None):
        seen.update(weight=weight, val_weight=val_weight)
        return original(self, X, y, X_val, y_val, weight=weight, val_weight=val_weight)

    monkeypatch.setattr(SignalModel, "fit", spy)
    weighted = fit_model(ts, split, load_settings(overrides=[*OVERRIDES, "model.recency_half_life_days=60"]))
    cutoffs = ts.data.loc[train, CUTOFF]
    days = (cutoffs.max() - cutoffs).dt.days.to_numpy()
    np.testing.assert_allclose(seen["weight"], 0.5 ** (days / 60))
    assert seen["weight"].max() == 1.0 and seen["weight"].min() < 0.02  # the earliest training cutoff lies many half-lives back
    assert seen["val_weight"] is None
    test = split.masks(ts.data)[2]
    X = ts.data.loc[test, ts.features]
    plain = trained["purchase"].model.probability(X)
    assert np.abs(weighted.probability(X) - plain).max() > 1e-3
    flat = fit_model(ts, split, load_settings(overrides=[*OVERRIDES, "model.recency_half_life_days=1e9"]))
    np.testing.assert_allclose(flat.probability(X), plain, rtol=1e-6)  # weights of 1 - 1e-9: float noise only
