"""Value features for every valued type (catalog ``valued``): sum, mean and last value per window.

They equal the plain reference to 1e-9 (ties in one second included) and never see the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.features.matrix import build_features, feature_columns
from signals.features.reference import reference_features
from signals.features.spec import FeatureSpec
from signals.features.value import summed_types, valued_types
from signals.settings import Settings, Touchpoint, load_settings
from tests.features.conftest import month_cutoffs, random_events
from tests.features.test_matrix import assert_features_equal

VALUED = {"sales_visit": True, "inquiry": True, "renewal": False}  # deal sizes on visits, not on renewals


def valued_spec(families=("frequency", "value"), **features) -> FeatureSpec:
    base = load_settings()
    catalog = {name: tp.model_copy(update={"valued": VALUED[name]}) if name in VALUED else tp
               for name, tp in base.catalog.items()}
    fs = base.features.model_copy(update=features)
    return FeatureSpec(catalog=catalog, features=fs, families=families)


def with_values(events: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Amounts on every event (valued or not), and touches repeated in one second with other amounts."""
    rng = np.random.default_rng(seed)
    events = events.copy()
    events["value"] = np.round(rng.gamma(2.0, 300.0, len(events)), 2)
    same_second = events.sample(150, random_state=seed).copy()
    same_second["ts"] = same_second["ts"].dt.floor("s") + pd.to_timedelta(rng.integers(0, 10**9, 150), unit="ns")
    same_second["value"] = np.round(rng.gamma(2.0, 300.0, 150), 2)
    day = events.sample(150, random_state=seed + 1).copy()
    day["ts"] = day["ts"].dt.floor("D")  # day-resolution: many touches at one instant
    return pd.concat([events, same_second, day, day.assign(value=day["value"] * 2)], ignore_index=True)


def tiny_purchases() -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.DataFrame({"customer_id": ["a", "a"], "ts": pd.to_datetime(["2025-01-01", "2025-01-05"], utc=True),
                           "touchpoint": ["purchase", "renewal"], "value": [100.0, 50.0]})
    return events, pd.DataFrame({"customer_id": ["a"], "cutoff": pd.to_datetime(["2025-02-01"], utc=True)})


def test_valued_types_follow_the_catalog_flag_then_the_role():
    assert valued_types(Settings().catalog) == []  # by default, the money roles get their sums only
    assert summed_types(Settings().catalog) == ["purchase", "renewal"]  # the default catalog has no refund type
    assert valued_types(valued_spec().catalog) == ["inquiry", "sales_visit"]
    assert summed_types(valued_spec().catalog) == ["inquiry", "sales_visit", "purchase"]
    assert Touchpoint(channel="x", initiated_by="company", prior_points=1).valued is None
    X = build_features(*tiny_purchases(), FeatureSpec.from_settings(load_settings()))
    assert [c for c in feature_columns(X) if c.startswith("value") and c.endswith("__total")] == [
        "value__purchase__total", "value__renewal__total"]  # sums only, as before valued types


def test_sum_mean_and_last_on_a_tiny_table():
    events = pd.DataFrame({
        "customer_id": ["a"] * 5,
        "ts": pd.to_datetime(["2025-01-01", "2025-01-20", "2025-01-20", "2025-01-30T12:00", "2025-02-01"], utc=True, format="ISO8601"),
        "touchpoint": ["sales_visit"] * 5,
        "value": [100.0, 50.0, 300.0, 10.0, 999.0],
    })
    cutoffs = pd.DataFrame({"customer_id": ["a", "a"], "cutoff": pd.to_datetime(["2025-01-25", "2025-02-01"], utc=True)})
    X = build_features(events, cutoffs, valued_spec(windows_days=(7, 30)))
    assert X["value__sales_visit__7d"].tolist() == [350.0, 10.0]            # the touch at the cutoff is the future
    assert X["value_mean__sales_visit__30d"].tolist() == [150.0, 120.0]     # (50 + 300 + 10) / 3
    assert X["value_last__sales_visit__30d"].tolist() == [300.0, 10.0]       # two on Jan 20: the larger
    assert X["value_last__sales_visit__total"].tolist() == [300.0, 10.0]
    first = build_features(events, cutoffs.iloc[:1].assign(cutoff=pd.Timestamp("2025-01-01", tz="UTC")),
                           valued_spec(windows_days=(7,)))
    assert first["value__sales_visit__7d"].tolist() == [0.0]
    assert np.isnan(first["value_mean__sales_visit__7d"]).all() and np.isnan(first["value_last__sales_visit__total"]).all()


def test_value_features_equal_the_reference():
    spec = valued_spec(families=("value",), windows_days=(1, 30, 365))
    for seed in (0, 5):
        events = with_values(random_events(seed, n_customers=40, n_events=2500), seed)
        cutoffs = month_cutoffs(events, seed)
        fast, slow = build_features(events, cutoffs, spec), reference_features(events, cutoffs, spec)
        assert_features_equal(fast, slow)
        assert {"value_last__inquiry__30d", "value_mean__sales_visit__total"} <= set(feature_columns(fast))
        assert not any("__renewal__" in c and c.startswith("value") for c in fast.columns)


SPEC = valued_spec(windows_days=(7, 90))
ORIGIN = pd.Timestamp("2024-01-01", tz="UTC")
CUTOFF = ORIGIN + pd.Timedelta(days=100)
TYPES = ["sales_visit", "inquiry", "purchase", "webinar"]
event = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 200 * 86_400), st.sampled_from(TYPES),
                  st.floats(0, 5_000, allow_nan=False))


def value_features(rows) -> pd.DataFrame:
    events = pd.DataFrame({
        "customer_id": [r[0] for r in rows],
        "ts": pd.to_datetime([ORIGIN.value + r[1] * 10**9 for r in rows], utc=True),
        "touchpoint": [r[2] for r in rows], "value": [r[3] for r in rows],
    }, columns=["customer_id", "ts", "touchpoint", "value"])
    cutoffs = pd.DataFrame({"customer_id": ["a", "b"], "cutoff": [CUTOFF, CUTOFF]})
    X = build_features(events, cutoffs, SPEC)
    return X[[c for c in feature_columns(X) if c.startswith("value")]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.lists(event, min_size=1, max_size=30), added=st.lists(event, max_size=8))
def test_touches_at_or_after_the_cutoff_never_change_value_features(base, added):
    past = [r for r in base if ORIGIN + pd.Timedelta(seconds=r[1]) < CUTOFF]
    future = [r for r in base + added if ORIGIN + pd.Timedelta(seconds=r[1]) >= CUTOFF]
    pd.testing.assert_frame_equal(value_features(past), value_features(past + future), check_exact=True)


def test_a_value_reason_counts_the_touches_of_its_own_window():
    """Reasons speak in counts and days: a deal-size feature is worded by the touches in its window."""
    from signals.modeling.estimators import SignalModel
    from signals.modeling.explain import reasons
    from signals.settings import LightGBMSettings

    rng = np.random.default_rng(4)
    n = 3000
    visits_30 = rng.poisson(1.0, n)
    visits_90 = visits_30 + rng.poisson(2.0, n)
    mean_90 = np.where(visits_90 > 0, rng.gamma(2.0, 400.0, n), np.nan)
    X = pd.DataFrame({"freq__all__30d": visits_30, "freq__all__90d": visits_90,
                      "freq__sales_visit__30d": visits_30, "freq__sales_visit__90d": visits_90,
                      "value_mean__sales_visit__90d": mean_90})
    y = (np.nan_to_num(mean_90) > 900).astype(int) ^ (rng.random(n) < 0.03)
    model = SignalModel(LightGBMSettings(num_threads=1, min_child_samples=20, feature_fraction=1.0, n_estimators=40,
                                         learning_rate=0.2, early_stopping_rounds=40), seed=1)
    features = ["value_mean__sales_visit__90d"]
    model.fit(X[features].iloc[:2000], y[:2000], X[features].iloc[2000:], y[2000:])
    big = np.flatnonzero((mean_90 > 2000) & (visits_90 != visits_30) & (visits_90 > 1))[:5]
    why = reasons(model, X.iloc[big], catalog=valued_spec().catalog, top=1)
    expected = [f"{v} sales visits in the last 90 days" for v in visits_90[big]]  # the 90-day count, not the 30-day one
    assert why["reason_1"].tolist() == expected
