"""End to end on small simulator data: the learned points recover the truth's ranking."""

from __future__ import annotations

import json

import pytest

from signals.jobs.train import run_train, write_bundle
from signals.modeling.training import fit_task, truth_agreement
from signals.settings import load_settings
from signals.simulate import simulate_crm

pytestmark = pytest.mark.slow

OVERRIDES = [
    "simulate.n_customers=6000",
    "model.lightgbm.num_threads=1",
    "model.bootstrap_rounds=50",
    "model.points_reference_rows=1500",
]


@pytest.fixture(scope="module")
def world():
    settings = load_settings(overrides=OVERRIDES)
    return settings, simulate_crm(settings)


@pytest.mark.parametrize("task", ["purchase", "churn"])
def test_learned_points_recover_the_true_ranking(world, task, tmp_path):
    settings, sim = world
    trained = fit_task(sim.events, settings, task=task, customers=sim.customers)
    agreement = truth_agreement(trained, sim.truth)
    assert agreement["regime"] == "after"
    assert agreement["spearman"] >= 0.75, agreement
    # better than chance and than the falling-frequency rule, on cutoffs it never saw
    assert trained.metric("lightgbm", "roc_auc") > 0.6
    assert trained.metric("lightgbm", "roc_auc") > trained.metric("falling_frequency", "roc_auc")
    assert max(trained.split.train) < min(trained.split.validation) < min(trained.split.test)
    bundle = write_bundle(trained, tmp_path / task, truth=sim.truth, settings=settings, seconds=0.0)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["truth_agreement"]["spearman"] == pytest.approx(agreement["spearman"])
    for figure in ("points", "metrics", "gains", "calibration", "half_life"):
        assert (bundle / "figures" / f"{figure}.png").stat().st_size > 10_000


def test_train_job_reads_files_and_writes_a_bundle(tmp_path, monkeypatch):
    from signals.jobs.simulate import run_simulate

    monkeypatch.chdir(tmp_path)
    settings = load_settings(overrides=[*OVERRIDES, "simulate.n_customers=2500"])
    run_simulate(settings, messy=False)
    run = run_train(settings, task="purchase")
    assert run.bundle.resolve() == (tmp_path / "models" / "purchase").resolve()
    import numpy as np

    from signals.features.matrix import build_features
    from signals.features.spec import FeatureSpec
    from signals.io.tables import read_events
    from signals.modeling.estimators import SignalModel

    # the bundle alone (spec + model) rebuilds the test features and reproduces the run's probabilities
    model = SignalModel.load(run.bundle / "model")
    spec = FeatureSpec.from_json((run.bundle / "spec.json").read_text())
    assert spec.learned_points == run.trained.points_by_type
    scores = run.trained.test_scores
    X = build_features(read_events(settings.paths.events), scores[["customer_id", "cutoff"]], spec)
    np.testing.assert_allclose(model.probability(X), scores["prob__lightgbm"], rtol=1e-12)
