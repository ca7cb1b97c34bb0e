"""The fast builders equal the plain reference implementation, feature by feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.features.matrix import build_features, feature_columns, window_offsets
from signals.features.names import parse_feature_name
from signals.features.reference import reference_features
from signals.features.spec import FeatureSpec
from tests.features.conftest import month_cutoffs, random_events


def assert_features_equal(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    assert set(fast.columns) == set(slow.columns)
    assert (fast["customer_id"].astype(str).to_numpy() == slow["customer_id"].astype(str).to_numpy()).all()
    for column in feature_columns(fast):
        a = fast[column].to_numpy(dtype=float)
        b = slow[column].to_numpy(dtype=float)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=column)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_builders_equal_reference_on_random_events(spec, seed):
    events = random_events(seed)
    cutoffs = month_cutoffs(events, seed)
    assert_features_equal(build_features(events, cutoffs, spec), reference_features(events, cutoffs, spec))


def test_fast_builders_equal_reference_with_learned_points_and_odd_settings(settings):
    spec = FeatureSpec.from_settings(settings.model_copy(update={
        "features": settings.features.model_copy(update={
            "windows_days": (1, 45), "half_lives_days": (2.5, 400), "trend_lags_days": (3, 60),
            "trend_half_life_days": 2.5, "surge_recent_days": 10, "surge_baseline_days": 40,
            "falling_window_days": 15,
        })
    })).with_learned_points({"webinar": 3.5, "seminar": -1.0}, 12.0)
    events = random_events(7)
    cutoffs = month_cutoffs(events, 7)
    assert_features_equal(build_features(events, cutoffs, spec), reference_features(events, cutoffs, spec))


@pytest.mark.slow
def test_fast_builders_equal_reference_on_simulator_data(spec):
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    settings = load_settings(overrides=["simulate.n_customers=150", "simulate.start=2024-01-01",
                                        "simulate.end=2025-07-01", "simulate.shift_date=2025-01-01"])
    events = simulate_crm(settings).events
    cutoffs = pd.DataFrame(
        [(c, m) for c in events["customer_id"].cat.categories[:120]
         for m in pd.date_range("2024-03-01", "2025-06-01", freq="MS", tz="UTC")],
        columns=["customer_id", "cutoff"],
    )
    assert_features_equal(build_features(events, cutoffs, spec), reference_features(events, cutoffs, spec))


def test_rows_keep_the_cutoffs_order_and_names_map_to_touchpoints(spec):
    events = random_events(3)
    cutoffs = month_cutoffs(events, 3).sample(frac=1.0, random_state=0).reset_index(drop=True)
    features = build_features(events, cutoffs, spec)
    assert features["customer_id"].astype(str).tolist() == cutoffs["customer_id"].tolist()
    assert (features["cutoff"] == cutoffs["cutoff"]).all()
    allowed = set(spec.catalog) | {"all", "customer", "company", "prior", "learned"}
    for column in feature_columns(features):
        assert parse_feature_name(column).touchpoint in allowed, column


def test_window_offsets_cover_every_family(spec):
    offsets = window_offsets(spec)
    assert offsets[0] == 0 and 365 in offsets and 180 in offsets  # 2 x falling window


def test_cutoffs_must_be_whole_seconds(spec):
    events = random_events(4)
    cutoffs = pd.DataFrame({"customer_id": ["c001"], "cutoff": [pd.Timestamp("2024-01-01 00:00:00.5", tz="UTC")]})
    with pytest.raises(ValueError, match="whole seconds"):
        build_features(events, cutoffs, spec)


def test_unknown_touchpoint_is_a_clear_error(spec):
    events = pd.DataFrame({"customer_id": ["a"], "ts": [pd.Timestamp("2024-01-01", tz="UTC")], "touchpoint": ["fax"]})
    cutoffs = pd.DataFrame({"customer_id": ["a"], "cutoff": [pd.Timestamp("2024-02-01", tz="UTC")]})
    with pytest.raises(ValueError, match="fax"):
        build_features(events, cutoffs, spec)
