"""Cutoff grids: calendar instants in the business time zone, no censored labels."""

from __future__ import annotations

import pandas as pd
import pytest

from signals.cutoffs import (
    as_of_instant,
    cutoff_grid,
    first_seen,
    scoring_cutoffs,
    training_cutoffs,
)


def test_monthly_and_weekly_grids_start_at_local_midnight():
    monthly = cutoff_grid("2025-01-15", "2025-04-01", frequency="monthly", timezone="Asia/Tokyo")
    assert [str(t) for t in monthly] == ["2025-01-31 15:00:00+00:00", "2025-02-28 15:00:00+00:00",
                                         "2025-03-31 15:00:00+00:00"]
    weekly = cutoff_grid("2025-03-01", "2025-03-20", frequency="weekly", timezone="UTC")
    assert [t.day_name() for t in weekly] == ["Monday"] * 3
    with pytest.raises(ValueError, match="frequency"):
        cutoff_grid("2025-01-01", "2025-02-01", frequency="daily")


def test_as_of_dates_mean_their_first_local_moment():
    assert str(as_of_instant("2026-11-01", "Asia/Tokyo")) == "2026-10-31 15:00:00+00:00"
    assert str(as_of_instant(pd.Timestamp("2026-11-01 12:00:00.7", tz="UTC"))) == "2026-11-01 12:00:00+00:00"


def _events():
    return pd.DataFrame({
        "customer_id": ["a", "a", "b", "c"],
        "ts": pd.to_datetime(["2024-01-10 00:00", "2025-06-30 23:00", "2024-08-15 00:00", "2025-03-01 00:00"], utc=True),
        "touchpoint": ["call", "call", "webinar", "seminar"],
    })


def test_training_grid_leaves_a_full_label_horizon_and_only_existing_customers():
    cutoffs = training_cutoffs(_events(), horizon_days=90, n_cutoffs=4)
    grid = sorted(cutoffs["cutoff"].unique())
    last_event = pd.Timestamp("2025-06-30 23:00", tz="UTC")
    assert all(t + pd.Timedelta(days=90) <= last_event for t in grid)
    assert [str(t.date()) for t in grid] == ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]
    # c is first seen exactly at the 2025-03-01 cutoff: it exists only from the next one
    assert set(cutoffs.loc[cutoffs["cutoff"] == grid[-2], "customer_id"]) == {"a", "b"}
    assert set(cutoffs.loc[cutoffs["cutoff"] == grid[-1], "customer_id"]) == {"a", "b", "c"}


def test_training_grid_errors_when_history_is_too_short():
    with pytest.raises(ValueError, match="too short"):
        training_cutoffs(_events(), horizon_days=900, n_cutoffs=3)


def test_customers_table_first_seen_and_scoring_cutoffs():
    customers = pd.DataFrame({"customer_id": ["d"], "first_seen": pd.to_datetime(["2023-01-01"], utc=True)})
    seen = first_seen(_events(), customers)
    assert str(seen["d"]) == "2023-01-01 00:00:00+00:00"
    scoring = scoring_cutoffs(_events(), "2025-01-01", customers=customers)
    assert sorted(scoring["customer_id"]) == ["a", "b", "d"]
    assert (scoring["cutoff"] == pd.Timestamp("2025-01-01", tz="UTC")).all()
