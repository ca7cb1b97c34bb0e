"""Edge cases, each pinned with a hand-typed table whose answer is obvious."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.cutoffs import cutoff_grid
from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.settings import load_settings

DAY = pd.Timedelta(days=1)


def events_of(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint"])


def cutoffs_of(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "cutoff"])


T = pd.Timestamp("2025-03-01", tz="UTC")


def test_customer_without_touches_before_the_cutoff(spec):
    events = events_of(("a", T + DAY, "webinar"))            # only a future touch
    X = build_features(events, cutoffs_of(("a", T), ("ghost", T)), spec)
    for row in range(2):
        assert X.loc[row, "freq__all__365d"] == 0
        assert X.loc[row, "temp__all__hl30d"] == 0.0
        assert np.isnan(X.loc[row, "recency__all__days"])
        assert np.isnan(X.loc[row, "tenure__all__days"])
        assert np.isnan(X.loc[row, "overdue__all__ratio"])
        assert X.loc[row, "freq_ratio__all__90d"] == 1.0


def test_window_edges_are_half_open(spec):
    events = events_of(
        ("a", T - 7 * DAY, "call"),                          # exactly at the start of the 7-day window: in
        ("a", T - 7 * DAY - pd.Timedelta(nanoseconds=1), "call"),  # just before it: out of 7d, in 30d
        ("a", T, "call"),                                   # at the cutoff: the future
    )
    X = build_features(events, cutoffs_of(("a", T)), spec)
    assert X.loc[0, "freq__call__7d"] == 1
    assert X.loc[0, "freq__call__30d"] == 2
    assert X.loc[0, "recency__call__days"] == 7.0


def test_duplicate_timestamps_count_twice(spec):
    events = events_of(("a", T - DAY, "webinar"), ("a", T - DAY, "webinar"))
    X = build_features(events, cutoffs_of(("a", T)), spec)
    assert X.loc[0, "freq__webinar__7d"] == 2
    assert X.loc[0, "temp__webinar__hl30d"] == pytest.approx(2 * 0.5 ** (1 / 30), rel=1e-12)
    assert np.isnan(X.loc[0, "overdue__all__ratio"])          # two touches, no gap between them


def test_temperature_halves_after_one_half_life_and_prior_points_weigh_it(spec):
    events = events_of(("a", T - 30 * DAY, "seminar"), ("a", T - 30 * DAY, "doc_request"))
    X = build_features(events, cutoffs_of(("a", T)), spec)
    assert X.loc[0, "temp__seminar__hl30d"] == pytest.approx(0.5, rel=1e-12)
    assert X.loc[0, "temp_prior__all__hl30d"] == pytest.approx(0.5 * (10 + 5), rel=1e-12)  # seed 002's points


def test_trend_and_falling_frequency(spec):
    warming = events_of(*[("a", T - d * DAY, "webinar") for d in (1, 2, 3)])
    cooling = events_of(*[("b", T - d * DAY, "webinar") for d in (100, 120, 150)])
    X = build_features(pd.concat([warming, cooling]), cutoffs_of(("a", T), ("b", T)), spec)
    assert X.loc[0, "temp_delta__webinar__14d"] > 0
    assert X.loc[1, "temp_delta__webinar__14d"] < 0
    assert X.loc[0, "freq_change__all__90d"] == 3 and X.loc[1, "freq_change__all__90d"] == -3
    assert X.loc[0, "surge__all__30d"] > 0 > X.loc[1, "surge__all__30d"]


def test_overdue_ratio_compares_the_current_gap_with_the_usual_one(spec):
    events = events_of(*[("a", T - d * DAY, "call") for d in (40, 50, 60)])   # every 10 days, silent for 40
    X = build_features(events, cutoffs_of(("a", T)), spec)
    assert X.loc[0, "overdue__all__ratio"] == pytest.approx(4.0)


def test_one_customer_with_a_million_touches(spec):
    n = 1_000_000
    rng = np.random.default_rng(0)
    offsets = np.sort(rng.integers(1, 400 * 86_400 * 10**9, n))
    events = pd.DataFrame({
        "customer_id": "whale",
        "ts": pd.to_datetime(T.value - offsets, utc=True),
        "touchpoint": "web_visit",
    })
    events = pd.concat([events, events_of(("minnow", T - DAY, "call"))], ignore_index=True)
    cutoffs = cutoffs_of(("whale", T), ("whale", T - 100 * DAY), ("minnow", T))
    X = build_features(events, cutoffs, spec)
    age_days = offsets / 86_400e9
    assert X.loc[0, "freq__web_visit__30d"] == int((age_days <= 30).sum())
    assert X.loc[1, "freq__web_visit__30d"] == int(((age_days > 100) & (age_days <= 130)).sum())
    assert X.loc[0, "temp__web_visit__hl7d"] == pytest.approx(np.sum(0.5 ** (age_days / 7)), rel=1e-9)
    assert X.loc[2, "freq__all__365d"] == 1


def test_time_zones_and_dst(spec, settings):
    # Europe/Berlin switches to summer time on 2025-03-30: local midnights are 23:00Z then 22:00Z
    grid = cutoff_grid("2025-03-01", "2025-04-01", frequency="monthly", timezone="Europe/Berlin")
    assert [str(t) for t in grid] == ["2025-02-28 23:00:00+00:00", "2025-03-31 22:00:00+00:00"]
    april = grid[1]
    berlin = pd.Timestamp("2025-04-01 00:30", tz="Europe/Berlin")   # 30 minutes after local midnight
    tokyo = pd.Timestamp("2025-03-31 06:59:59", tz="Asia/Tokyo")    # 2025-03-30 21:59:59Z: before
    events = pd.DataFrame({"customer_id": ["a", "a"], "ts": [berlin, tokyo], "touchpoint": ["call", "webinar"]})
    X = build_features(events, cutoffs_of(("a", april)), spec)
    assert X.loc[0, "freq__call__7d"] == 0          # after the local midnight cutoff: the future
    assert X.loc[0, "freq__webinar__7d"] == 1
    assert X.loc[0, "recency__webinar__days"] == pytest.approx(1 + 1 / 86_400, rel=1e-12)  # 1 day and 1 s
    # a 7-day window is 168 hours across the DST change, not 7 local calendar days
    inside = april - pd.Timedelta(hours=168)
    X2 = build_features(events_of(("a", inside, "call")), cutoffs_of(("a", april)), spec)
    assert X2.loc[0, "freq__call__7d"] == 1


def test_static_attributes_join_and_never_show_a_future_date(settings):
    spec = FeatureSpec.from_settings(load_settings(overrides=["features.static_columns=[segment, employees, first_seen]"]))
    customers = pd.DataFrame({
        "customer_id": ["a", "b"],
        "segment": ["SMB", "Enterprise"],
        "employees": [12, 5000],
        "first_seen": pd.to_datetime(["2024-01-01", "2025-06-01"], utc=True),
    })
    events = events_of(("a", T - DAY, "call"))
    X = build_features(events, cutoffs_of(("a", T), ("b", T), ("c", T)), spec, customers=customers)
    assert X["static__segment__attr"].tolist()[:2] == ["SMB", "Enterprise"]
    assert isinstance(X["static__segment__attr"].dtype, pd.CategoricalDtype)
    assert X.loc[0, "static__employees__attr"] == 12
    assert X.loc[0, "static__first_seen__attr"] == (T - pd.Timestamp("2024-01-01", tz="UTC")) / DAY
    assert np.isnan(X.loc[1, "static__first_seen__attr"])    # first seen after the cutoff: unknown then
    assert np.isnan(X.loc[2, "static__employees__attr"])     # not in the customers table
    assert len(feature_columns(X)) == len(feature_columns(build_features(events, cutoffs_of(("a", T)), spec,
                                                                        customers=customers)))
