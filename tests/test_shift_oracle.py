"""The shift oracle of ``benchmarks/shift_oracle.py``: the simulator's hazard, recomputed from the events."""

import numpy as np
import pandas as pd
import pytest
from benchmarks.shift_oracle import (
    cutoff_state,
    informed_purchase_scores,
    reference_scores,
    true_purchase_scores,
)

from signals.cutoffs import cutoff_grid
from signals.labels import label_cutoffs
from signals.modeling.metrics import roc_auc
from signals.settings import load_settings
from signals.simulate import simulate_crm


@pytest.fixture(scope="module")
def world_and_rows():
    settings = load_settings(overrides=["simulate.n_customers=3000", "simulate.start=2023-01-01",
                                        "simulate.end=2025-01-01", "simulate.shift_date=2024-01-01"])
    world = simulate_crm(settings)
    grid = cutoff_grid("2024-02-01", "2024-10-01", frequency="monthly", timezone=settings.timezone)
    ids = world.events["customer_id"].cat.categories
    rows = pd.DataFrame({"customer_id": pd.Categorical(np.repeat(ids, len(grid)), categories=ids),
                         "cutoff": np.tile(grid, len(ids))})
    labelled = label_cutoffs(world.events, rows, "purchase", labels=settings.labels, catalog=settings.catalog)
    return settings, world, labelled[labelled["eligible"]].reset_index(drop=True)


def test_one_touch_a_half_life_ago_counts_half_its_weight(world_and_rows):
    settings, world, _ = world_and_rows
    truth = world.truth
    quiet = world.customers["customer_id"].iloc[0]
    cutoff = pd.Timestamp("2030-01-01", tz="UTC")
    half_life = pd.Timedelta(days=truth["true_half_life_days"])
    one_touch = world.events.iloc[:0].copy()
    one_touch = pd.concat([one_touch, pd.DataFrame({
        "customer_id": pd.Categorical([quiet], categories=world.events["customer_id"].cat.categories),
        "ts": [cutoff - half_life], "touchpoint": pd.Categorical(["doc_request"], categories=world.events["touchpoint"].cat.categories),
        "value": [0.0]})], ignore_index=True)
    lone = type(world)(events=one_touch, customers=world.customers, truth=truth, latent=world.latent, episodes=world.episodes)
    rows = pd.DataFrame({"customer_id": [quiet], "cutoff": [cutoff]})
    segment = world.customers.set_index("customer_id").loc[quiet, "segment"]
    base = truth["base_logits"]["purchase"]["prospect"][segment]
    w = truth["weights"]["purchase"]["after"]["doc_request"]
    decay = 0.5 ** (np.arange(10) / truth["true_half_life_days"])
    expected = (1 / (1 + np.exp(-(base + 0.5 * w * decay)))).sum()
    got = true_purchase_scores(lone, rows, horizon_days=10, hidden_effect=False)
    assert got == pytest.approx([expected], rel=1e-12)
    u = world.latent.set_index("customer_id").loc[quiet, "purchase_effect"]
    with_u = true_purchase_scores(lone, rows, horizon_days=10)
    assert with_u == pytest.approx([(1 / (1 + np.exp(-(base + u + 0.5 * w * decay)))).sum()], rel=1e-12)


def test_the_truth_ranks_better_than_its_parts(world_and_rows):
    settings, world, rows = world_and_rows
    refs = reference_scores(world, rows, horizon_days=settings.labels.purchase.horizon_days)
    y = rows["label"].to_numpy()
    auc = {name: roc_auc(y, s) for name, s in refs.items()}
    assert auc["oracle"] > auc["oracle_without_u"] > 0.6
    assert auc["oracle"] > 0.7
    assert auc["informed"] > auc["oracle"]          # the touches to come, expected from the latent state, help
    # the old weights are a different scorer on post-shift rows, and not a better one by more than noise
    assert not np.allclose(refs["oracle"], refs["oracle_old_weights"])
    assert auc["oracle_old_weights"] < auc["oracle"] + 0.01


def test_status_comes_from_the_latest_contract_event(world_and_rows):
    settings, world, _ = world_and_rows
    ev = world.events
    cancelled = ev.loc[ev["touchpoint"] == "cancellation", ["customer_id", "ts"]].iloc[0]
    after = pd.DataFrame({"customer_id": [cancelled["customer_id"]],
                          "cutoff": [cancelled["ts"] + pd.Timedelta(seconds=1)]})
    before = after.assign(cutoff=cancelled["ts"])
    truth = world.truth
    segment = world.customers.set_index("customer_id").loc[cancelled["customer_id"], "segment"]
    # with no touch term and no hidden effect, a 1-day horizon is expit(base logit of the status)
    flat = dict(truth, weights={"purchase": {r: dict.fromkeys(truth["engagement_types"], 0.0)
                                             for r in ("before", "after")}})
    plain = type(world)(events=ev, customers=world.customers, truth=flat, latent=world.latent, episodes=world.episodes)
    expit = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert true_purchase_scores(plain, after, horizon_days=1, hidden_effect=False)[0] == pytest.approx(
        expit(truth["base_logits"]["purchase"]["churned"][segment]))
    assert true_purchase_scores(plain, before, horizon_days=1, hidden_effect=False)[0] == pytest.approx(
        expit(truth["base_logits"]["purchase"]["active"][segment]))


def test_the_confounded_world_is_refused(world_and_rows):
    _, world, rows = world_and_rows
    confounded = type(world)(events=world.events, customers=world.customers,
                             truth=dict(world.truth, confounding={"enabled": True}), latent=world.latent,
                             episodes=world.episodes)
    with pytest.raises(ValueError, match="confounded"):
        true_purchase_scores(confounded, rows.head(3), horizon_days=5)


@pytest.mark.slow
def test_the_retraining_benchmark_puts_the_models_next_to_the_truth(tmp_path):
    """``benchmarks/retraining.py`` on a small world: two monthly retrains after the shift, purchase only."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "retraining.json"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    subprocess.run([sys.executable, str(root / "benchmarks" / "retraining.py"), "--customers", "2500",
                    "--from", "2025-07-01", "--to", "2025-08-01", "--tasks", "purchase",
                    "--set", "model.points_interval=none", "--json", str(out)],
                   check=True, env=env, cwd=tmp_path, capture_output=True, timeout=600)
    result = json.loads(out.read_text(encoding="utf-8"))
    later = result["tasks"]["purchase"]["retrains"][1]
    assert later["test_after_shift"]
    assert 0.5 < later["oracle_without_u_auc"] < later["oracle_auc"] <= 1
    assert later["value_of_knowing_the_shift"] == pytest.approx(
        later["oracle_auc"] - later["oracle_old_weights_auc"], abs=2e-4)
    assert later["ceiling_over_frozen"] == pytest.approx(later["oracle_auc"] - later["frozen_auc"], abs=2e-4)
    assert later["informed_auc"] > later["oracle_auc"]
    assert later["value_of_knowing_the_shift_informed"] == pytest.approx(
        later["informed_auc"] - later["informed_old_world_auc"], abs=2e-4)
    summary = result["tasks"]["purchase"]["references_after_shift"]["value_of_knowing_the_shift_every_post_shift_month"]
    assert summary["retrains"] == 2


def test_informed_scores_add_the_touches_to_come(world_and_rows):
    """Every purchase weight is >= 0, so expected touches only raise the hazard; an episode under way
    raises it more; the old world's rules give other scores."""
    settings, world, rows = world_and_rows
    horizon = settings.labels.purchase.horizon_days
    state = cutoff_state(world, rows)
    informed = informed_purchase_scores(world, rows, horizon_days=horizon, state=state)
    oracle = true_purchase_scores(world, rows, horizon_days=horizon, state=state)
    assert (informed >= oracle - 1e-12).all() and (informed > oracle).mean() > 0.99
    calm = type(world)(events=world.events, customers=world.customers, truth=world.truth, latent=world.latent,
                       episodes=world.episodes.iloc[:0])
    without_episodes = informed_purchase_scores(calm, rows, horizon_days=horizon)
    assert (informed >= without_episodes - 1e-12).all() and (informed > without_episodes).any()
    old = informed_purchase_scores(world, rows, horizon_days=horizon, regime="before", state=state)
    assert not np.allclose(old, informed)
