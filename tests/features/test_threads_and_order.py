"""The fast paths: events in any order, cutoffs in any order, any number of threads.

Every path must give the reference's features (to 1e-9), and the threaded build must give the
same bytes as the one-thread build.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.features._context import PointInTime
from signals.features.matrix import (
    build_features,
    decay_half_lives,
    feature_columns,
    window_offsets,
)
from signals.features.reference import reference_features
from signals.features.spec import FeatureSpec
from signals.features.window import index_events, sort_by_customer_time, stable_argsort
from signals.schemas import check_cutoffs, check_events
from tests.features.conftest import month_cutoffs, random_events
from tests.features.test_matrix import assert_features_equal


def in_order(events: pd.DataFrame, order: str) -> pd.DataFrame:
    """The same events sorted by (customer, ts), by time only (a log), or shuffled."""
    if order == "customer":
        return events.sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    if order == "log":
        return events.sort_values("ts", kind="stable", ignore_index=True)
    return events.sample(frac=1.0, random_state=1).reset_index(drop=True)


def odd_spec(settings) -> FeatureSpec:
    """Half-lives and lags that take the slow decay path, with learned points."""
    return FeatureSpec.from_settings(settings.model_copy(update={
        "features": settings.features.model_copy(update={
            "windows_days": (1, 45), "half_lives_days": (2.5, 400), "trend_lags_days": (3, 60),
            "trend_half_life_days": 2.5, "surge_recent_days": 10, "surge_baseline_days": 40,
            "falling_window_days": 15,
        })
    })).with_learned_points({"webinar": 3.5, "seminar": -1.0}, 12.0)


def assert_same_bytes(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for column in feature_columns(a):
        x, y = a[column].to_numpy(), b[column].to_numpy()
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), column


def small_world(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = random_events(seed, n_customers=30, n_events=1_500)
    return events, month_cutoffs(events, seed)


def test_every_event_order_gives_the_reference_features_on_two_threads(spec):
    events, cutoffs = small_world(5)
    reference = reference_features(events, cutoffs, spec)
    for order in ("customer", "log", "shuffled"):
        assert_features_equal(build_features(in_order(events, order), cutoffs, spec, threads=2), reference)


def test_presorted_events_are_used_without_a_copy_and_logs_with_one_sort(spec):
    events = check_events(in_order(random_events(6), "customer"), spec.touchpoints)
    index = index_events(events, spec.touchpoints)
    assert index.order is None
    assert np.shares_memory(index.ts, events["ts"].array._ndarray)
    log = check_events(in_order(random_events(6), "log"), spec.touchpoints)
    index = index_events(log, spec.touchpoints)
    assert index.order is not None
    ts = log["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    np.testing.assert_array_equal(index.ts, ts[index.order])
    assert np.all(np.diff(index.key) >= 0)
    np.testing.assert_array_equal(index.value, log["value"].to_numpy()[index.order])


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_bytes_as_one_thread(spec, settings, threads):
    events = in_order(random_events(8, n_customers=150, n_events=12_000), "log")
    cutoffs = month_cutoffs(events, 8)
    for s in (spec, odd_spec(settings)):
        one = build_features(events, cutoffs, s, threads=1)
        assert_same_bytes(one, build_features(events, cutoffs, s, threads=threads))


def test_rows_with_their_own_instants_decay_customer_by_customer(spec):
    # every row has its own cutoff instant: the decay runs over each customer's rows by rank; a
    # row built alone (checked against the reference elsewhere) must come out the same
    events = random_events(9, n_customers=20, n_events=1_500)
    rng = np.random.default_rng(9)
    ids = sorted(events["customer_id"].unique())
    cutoffs = pd.DataFrame({
        "customer_id": np.repeat(ids, 4),
        "cutoff": pd.Timestamp("2023-02-01", tz="UTC")
        + pd.to_timedelta(rng.choice(700 * 86_400, 4 * len(ids), replace=False), unit="s"),
    }).sample(frac=1.0, random_state=9).reset_index(drop=True)
    together = build_features(events, cutoffs, spec, threads=2)
    alone = pd.concat([build_features(events, cutoffs.iloc[[i]], spec, threads=1) for i in range(len(cutoffs))],
                      ignore_index=True)
    assert_features_equal(together, alone)


def test_cutoff_rows_in_any_order(spec):
    events, cutoffs = small_world(10)
    by_customer = cutoffs.sort_values(["customer_id", "cutoff"], ignore_index=True)
    first = build_features(events, by_customer, spec, threads=2)
    assert_features_equal(first, reference_features(events, by_customer, spec))
    for other in (cutoffs.sort_values(["cutoff", "customer_id"], ignore_index=True),
                  cutoffs.sample(frac=1.0, random_state=10).reset_index(drop=True)):
        rows = other.merge(by_customer.reset_index(), on=["customer_id", "cutoff"])["index"].to_numpy()
        assert_features_equal(build_features(events, other, spec, threads=2), first.iloc[rows].reset_index(drop=True))


def test_only_the_windows_and_half_lives_of_the_spec_are_computed(spec):
    subset = FeatureSpec(catalog=spec.catalog, families=("frequency", "recency", "temperature"),
                         features=spec.features.model_copy(update={"windows_days": (30, 90, 365),
                                                                   "half_lives_days": (30.0,)}))
    assert window_offsets(subset) == [0.0, 30.0, 90.0, 365.0]    # no 14 / 180: no trend family
    assert decay_half_lives(subset) == [30.0]
    events = check_events(random_events(11), spec.touchpoints)
    cutoffs = check_cutoffs(month_cutoffs(events, 11))
    ctx = PointInTime(events, cutoffs, spec.touchpoints)
    ctx.prepare(window_offsets(subset), decay_half_lives(subset))
    assert sorted(o for o in ctx._positions if o >= 0) == [d * 86_400 * 10**9 for d in (0, 30, 90, 365)]
    assert sorted(ctx._decayed) == [(30.0, 0)]


def test_ids_only_in_the_cutoffs_and_categorical_ids(spec):
    events = random_events(12)
    cutoffs = month_cutoffs(events, 12, extra_customers=4)
    as_text = build_features(events, cutoffs, spec, threads=2)
    as_category = cutoffs.assign(customer_id=cutoffs["customer_id"].astype("category"))
    assert_same_bytes(build_features(events, as_category, spec, threads=2), as_text)
    with_ids = cutoffs[cutoffs["customer_id"].isin(events["customer_id"])].reset_index(drop=True)
    categories = check_events(events)["customer_id"].cat.categories   # the events' own: no lookup
    same_categories = with_ids.assign(customer_id=pd.Categorical(with_ids["customer_id"], categories=categories))
    assert_same_bytes(build_features(events, same_categories, spec), build_features(events, with_ids, spec))
    assert as_text["freq__all__365d"].to_numpy()[~cutoffs["customer_id"].isin(events["customer_id"])].sum() == 0


@pytest.mark.parametrize(("n", "n_codes", "threads"), [(5_000, 5, 1), (5_000, 2**40, 1), (1_200_000, 70_000, 2),
                                                      (1_200_000, 3, 3)])
def test_stable_argsort_is_the_stable_argsort(n, n_codes, threads):
    codes = np.random.default_rng(0).integers(0, min(n_codes, 70_000), n)
    np.testing.assert_array_equal(stable_argsort(codes, n_codes, threads=threads), np.argsort(codes, kind="stable"))


def test_sort_by_customer_time_keeps_ties_in_order():
    cust = np.array([1, 0, 1, 0, 1, 0])
    ts = np.array([5, 5, 3, 9, 3, 1])
    order = sort_by_customer_time(cust, ts, 2)
    np.testing.assert_array_equal(order, [5, 1, 3, 2, 4, 0])
    assert sort_by_customer_time(cust[order], ts[order], 2) is None
