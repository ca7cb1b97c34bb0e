"""Training that fits the history there is (issue 15, 3), and tasks the data cannot support fail
cleanly (issue 12, 3): the split's advice names settings with numbers, ``--auto-split`` never lets a
label window reach the test period, too few positives is a DataError with no bundle, two runs
cannot write one bundle, and a later step never costs the fitted model."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from signals.errors import DataError, OutputError
from signals.io.atomic import folder_lock
from signals.modeling.splits import (
    SplitPlan,
    plan_split,
    rolling_origins,
    split_advice,
    training_grid,
)
from signals.settings import load_settings

TOKYO = "Asia/Tokyo"
SHORT = pytest.mark.xdist_group("short_world")  # one worker simulates the short world (pytest -n 2 --dist loadgroup)


def test_rolling_origins_step_back_without_overlap_and_embargo_each_part():
    cutoffs = pd.date_range("2024-01-01", periods=18, freq="MS", tz="UTC")
    splits = rolling_origins(cutoffs, n_origins=4, n_validation=2, n_test=1, horizon_days=90)
    assert [s.test[0] for s in splits] == list(cutoffs[-4:])
    horizon = pd.Timedelta(days=90)
    for s in splits:
        assert all(t + horizon <= s.test[0] for t in s.train + s.validation)
        assert all(t + horizon <= s.validation[0] for t in s.train)
    relaxed = rolling_origins(cutoffs, n_origins=1, n_validation=1, n_test=1, horizon_days=90, embargo="test")[0]
    assert relaxed.mode == "test" and relaxed.describe()["embargo"] == "90 days before test only"
    assert max(relaxed.train) + horizon > relaxed.validation[0]  # training labels may overlap validation ...
    assert all(t + horizon <= relaxed.test[0] for t in relaxed.train + relaxed.validation)  # ... never the test
    with pytest.raises(DataError, match="no training cutoff"):
        rolling_origins(cutoffs[:8], n_origins=4, n_validation=2, n_test=1, horizon_days=90)


@settings(max_examples=60, deadline=None)
@given(months=st.integers(3, 30), horizon=st.integers(7, 200), weekly=st.booleans(),
       origins=st.integers(1, 6), n_val=st.integers(1, 3), n_test=st.integers(1, 3))
def test_auto_split_never_lets_a_label_window_reach_the_test_period(months, horizon, weekly, origins, n_val, n_test):
    first = pd.Timestamp("2024-01-01 09:30", tz="UTC")
    end = first + pd.DateOffset(months=months)
    frequency = "weekly" if weekly else "monthly"
    wanted = SplitPlan(18, origins, n_val, n_test, "full", float(horizon), frequency)
    grid = training_grid(first, end, horizon_days=horizon, frequency=frequency, timezone=TOKYO)
    plan = plan_split(grid, wanted)
    if plan is None:
        message = split_advice(first, end, wanted, task="churn", timezone=TOKYO)
        assert "cutoff" in message
        return
    assert plan.embargo in ("full", "test") and plan.horizon_days == horizon and plan.frequency == frequency
    assert plan.n_origins <= origins and plan.n_validation <= n_val and plan.n_test <= n_test
    splits = rolling_origins(grid[-plan.n_cutoffs:], n_origins=plan.n_origins, n_validation=plan.n_validation,
                             n_test=plan.n_test, horizon_days=plan.horizon_days, embargo=plan.embargo)
    h = pd.Timedelta(days=horizon)
    for s in splits:
        assert all(t + h <= s.test[0] for t in s.train + s.validation)  # no label window reaches the test
        assert all(t + h <= end for t in s.train + s.validation + s.test)  # every label window is observed


def test_the_advice_names_settings_that_fit_with_numbers_for_this_data():
    first, end = pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2025-09-30 12:00", tz="UTC")
    wanted = SplitPlan(18, 4, 2, 1, "full", 90.0, "monthly")
    message = split_advice(first, end, wanted, task="churn", timezone="UTC")
    assert "6 monthly cutoff(s) (2025-02-01..2025-07-01)" in message
    assert "--auto-split would train with" in message and "embargo before test only" in message
    assert "labels.churn.horizon_days=" in message
    # the auto-split's plan as --set overrides (when one setting alone is not enough): they fit too
    same = dict(re.findall(r"--set (\S+)=([^\s;.]+)", message.split("without it, the same split is")[1]))
    assert same == {"cutoffs.n_training": "6", "model.backtest_origins": "1", "model.embargo": "test"}
    from signals.modeling.splits import split_fits

    plan = SplitPlan(int(same["cutoffs.n_training"]), int(same["model.backtest_origins"]), 2, 1,
                     same["model.embargo"], 90.0, "monthly")
    assert split_fits(training_grid(first, end, horizon_days=90, frequency="monthly", timezone="UTC",
                                    n_cutoffs=plan.n_cutoffs), plan)
    # every option it names really fits
    options = re.findall(r"--set (\S+)=([^\s;.]+)", message.split("--auto-split would")[0])
    assert options
    for key, value in options:
        option = f"{key}={value}"
        plan = {"model.backtest_origins": ("n_origins", int), "model.validation_cutoffs": ("n_validation", int),
                "model.test_cutoffs": ("n_test", int), "model.embargo": ("embargo", str),
                "labels.churn.horizon_days": ("horizon_days", float)}.get(key)
        if plan is None:
            continue
        from dataclasses import replace

        from signals.modeling.splits import split_fits

        candidate = replace(wanted, **{plan[0]: plan[1](value)})
        grid = training_grid(first, end, horizon_days=candidate.horizon_days, frequency="monthly", timezone="UTC",
                             n_cutoffs=18)
        assert split_fits(grid, candidate), option


@pytest.fixture(scope="module")
def short_world():
    from signals.simulate import simulate_crm

    overrides = ["simulate.n_customers=3000", "simulate.start=2025-01-01", "simulate.end=2025-10-01",
                 "simulate.shift_date=null", "model.lightgbm.num_threads=1", "model.points_refits=2",
                 "model.bootstrap_rounds=20", "model.points_reference_rows=500"]
    s = load_settings(overrides=overrides)
    return s, simulate_crm(s)


@pytest.mark.slow
@SHORT
def test_nine_months_of_monthly_history_trains_with_auto_split(short_world):
    from signals.modeling.training import fit_task

    s, sim = short_world
    with pytest.raises(DataError) as err:
        fit_task(sim.events, s, task="purchase", customers=sim.customers)
    assert "--auto-split" in str(err.value) and "model.backtest_origins=" in str(err.value)
    trained = fit_task(sim.events, s, task="purchase", customers=sim.customers, auto_split=True)
    horizon = pd.Timedelta(days=trained.split.horizon_days)
    for split in trained.splits:
        assert all(t + horizon <= split.test[0] for t in split.train + split.validation)
    assert trained.metric("lightgbm", "roc_auc") > 0.5


@SHORT
def test_a_test_period_without_positives_fails_clearly_and_writes_nothing(short_world, tmp_path, monkeypatch):
    from signals.io.world import write_world
    from signals.jobs.train import run_train

    s, sim = short_world
    monkeypatch.chdir(tmp_path)
    events = sim.events
    late = (events["touchpoint"] == "purchase") & (events["ts"] >= pd.Timestamp("2025-07-01", tz="UTC"))
    write_world(sim.__class__(events[~late].reset_index(drop=True), sim.customers, sim.truth, sim.latent), s.paths)
    runner_settings = load_settings(overrides=["model.backtest_origins=1", "model.validation_cutoffs=1",
                                               "model.embargo=test", "cutoffs.n_training=6"])
    with pytest.raises(DataError) as err:
        run_train(runner_settings, task="purchase")
    message = str(err.value)
    assert "the test period 2025-08-01 (origin 1 of 1) has 0 positive(s)" in message
    assert "model.min_positives" in message and "labels.purchase.horizon_days" in message
    models = tmp_path / "models"
    assert not (models / "purchase").exists() and not (models / "purchase.checkpoint").exists()  # no bundle


def test_two_runs_cannot_write_one_bundle_and_the_second_says_who_holds_it(tmp_path, monkeypatch):
    from signals.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.parquet").write_bytes(b"not read: the lock is checked first")
    with folder_lock(tmp_path / "models" / "purchase", what="signals train --task purchase (the first run)"):
        result = CliRunner().invoke(app, ["train", "--task", "purchase"])
    assert result.exit_code == 1, result.output
    assert "is being written by" in result.output and "the first run" in result.output
    assert "--auto-split" in CliRunner().invoke(app, ["train", "--help"]).output


@SHORT
def test_a_failing_later_step_keeps_the_fitted_model(short_world, tmp_path, monkeypatch):
    import signals.modeling.training as training
    from signals.io.world import write_world
    from signals.jobs.train import checkpoint_folder, run_train
    from signals.modeling.estimators import SignalModel

    s, sim = short_world
    monkeypatch.chdir(tmp_path)
    write_world(sim, s.paths)

    def out_of_memory(*args, **kwargs):
        raise MemoryError("what-if")

    monkeypatch.setattr(training, "learn_points", out_of_memory)
    with pytest.raises(MemoryError) as err:
        run_train(load_settings(overrides=["model.lightgbm.num_threads=1"]), task="purchase", auto_split=True)
    kept = checkpoint_folder(tmp_path / "models" / "purchase")
    assert any("models/purchase.checkpoint" in note for note in err.value.__notes__)
    assert SignalModel.load(kept / "model").best_iteration_ > 0
    assert json.loads((kept / "checkpoint.json").read_text())["task"] == "purchase"
    assert not (tmp_path / "models" / "purchase").exists()


def test_output_errors_are_signals_errors():
    assert issubclass(OutputError, OSError)
