"""Long-horizon probabilities rolled out from a short-horizon hazard (signals.modeling.rollout).

What could break: a step built from events after the row's cutoff (the future leaking into the
no-purchase path), steps at the wrong instants, the chain rule applied wrongly, or rows mixed up
when several cutoffs are scored at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.features.matrix import build_features
from signals.features.spec import FeatureSpec
from signals.modeling.rollout import purchase_probability_by_rollout, rollout_steps
from signals.settings import load_settings

SPEC = FeatureSpec.from_settings(load_settings())
T0 = pd.Timestamp("2025-03-03", tz="UTC")
T1 = pd.Timestamp("2025-04-07", tz="UTC")


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 300
    return pd.DataFrame({
        "customer_id": rng.choice([f"c{i}" for i in range(25)], n),
        "ts": pd.Timestamp("2024-09-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 300 * 86_400, n), unit="s"),
        "touchpoint": rng.choice(["purchase", "webinar", "email_click"], n),
        "value": rng.gamma(2.0, 50.0, n),
    })


def _cutoffs() -> pd.DataFrame:
    ids = [f"c{i}" for i in range(25)] + ["nobody"]
    return pd.DataFrame({"customer_id": ids * 2, "cutoff": [T0] * len(ids) + [T1] * len(ids)})


def _hazard(X: pd.DataFrame) -> np.ndarray:
    """A hazard that depends on recency, counts, tenure and temperature (so every step differs)."""
    recency = X["recency__all__days"].fillna(400.0).to_numpy()
    count = X["freq__purchase__90d"].to_numpy(dtype=float)
    warm = X["temp__all__hl30d"].to_numpy()
    return 1.0 / (1.0 + np.exp(2.0 + recency / 60.0 - 0.3 * count - 0.2 * warm))


def test_constant_hazard_gives_the_geometric_probability() -> None:
    p = purchase_probability_by_rollout(lambda X: np.full(len(X), 0.1), _events(), _cutoffs(), SPEC,
                                        step_days=7, horizons_days={"one": 7, "four": 28, "thirteen": 91})
    np.testing.assert_allclose(p["one"], 0.1, rtol=1e-12)
    np.testing.assert_allclose(p["four"], 1 - 0.9**4, rtol=1e-12)
    np.testing.assert_allclose(p["thirteen"], 1 - 0.9**13, rtol=1e-12)
    assert p["customer_id"].tolist() == _cutoffs()["customer_id"].tolist()


def test_equals_the_chain_rule_on_features_of_the_no_purchase_path() -> None:
    events, cutoffs = _events(), _cutoffs()
    got = purchase_probability_by_rollout(_hazard, events, cutoffs, SPEC, step_days=7, horizons_days={"a": 21, "b": 35})
    for origin in (T0, T1):
        rows = cutoffs[cutoffs["cutoff"] == origin]
        known = events[events["ts"] < origin]             # the history at the cutoff ...
        survive = np.ones(len(rows))
        for k in range(5):                                # ... seen at origin, +1 week, ... +4 weeks
            X = build_features(known, rows.assign(cutoff=origin + pd.Timedelta(days=7 * k)).reset_index(drop=True), SPEC)
            survive *= 1 - _hazard(X)
            if k == 2:
                np.testing.assert_allclose(got.loc[rows.index, "a"], 1 - survive, rtol=1e-12)
        np.testing.assert_allclose(got.loc[rows.index, "b"], 1 - survive, rtol=1e-12)
    # a longer window can only add purchases; steps really move (not every row has the same probability)
    assert (got["b"] >= got["a"]).all() and got["a"].nunique() > 10


def test_events_at_or_after_a_cutoff_never_change_its_probabilities() -> None:
    events, cutoffs = _events(), _cutoffs()
    base = purchase_probability_by_rollout(_hazard, events, cutoffs, SPEC, step_days=7, horizons_days={"a": 28})
    rng = np.random.default_rng(0)
    later = pd.DataFrame({  # purchases of every customer at T0 exactly, inside the rolled weeks and after
        "customer_id": np.repeat([f"c{i}" for i in range(25)], 3),
        "ts": np.tile([T0, T0 + pd.Timedelta(days=10), T1 + pd.Timedelta(days=3)], 25),
        "touchpoint": "purchase",
        "value": rng.gamma(2.0, 50.0, 75),
    })
    edited = pd.concat([events, later], ignore_index=True).sample(frac=1.0, random_state=1)
    again = purchase_probability_by_rollout(_hazard, edited, cutoffs, SPEC, step_days=7, horizons_days={"a": 28})
    at_t0 = (cutoffs["cutoff"] == T0).to_numpy()
    np.testing.assert_array_equal(again.loc[at_t0, "a"], base.loc[at_t0, "a"])
    # the events between T0 and T1 are history at T1: those rows must move (the test can fail)
    assert not np.allclose(again.loc[~at_t0, "a"], base.loc[~at_t0, "a"])


def test_bad_horizons_and_hazards_are_clear_errors() -> None:
    assert rollout_steps({"a": 91, "b": 273}, 7) == {"a": 13, "b": 39}
    with pytest.raises(ValueError, match="whole number"):
        rollout_steps({"a": 10}, 7)
    with pytest.raises(ValueError, match="step_days"):
        rollout_steps({"a": 7}, 0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        purchase_probability_by_rollout(lambda X: np.full(len(X), 1.5), _events(), _cutoffs(), SPEC,
                                        step_days=7, horizons_days={"a": 7})
    with pytest.raises(ValueError, match="one probability"):
        purchase_probability_by_rollout(lambda X: np.zeros(3), _events(), _cutoffs(), SPEC,
                                        step_days=7, horizons_days={"a": 7})
