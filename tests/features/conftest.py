"""Fixtures for the feature tests: random event tables with awkward timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.features.spec import FeatureSpec
from signals.settings import load_settings


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def spec(settings) -> FeatureSpec:
    return FeatureSpec.from_settings(settings)


def random_events(seed: int, *, n_customers: int = 60, n_events: int = 4000, days: int = 800) -> pd.DataFrame:
    """Random canonical events with nanosecond timestamps, ties, and events exactly on month starts."""
    rng = np.random.default_rng(seed)
    catalog = list(load_settings().catalog)
    start = pd.Timestamp("2023-01-01", tz="UTC")
    ts = start + pd.to_timedelta(rng.integers(0, days * 86_400 * 10**9, n_events), unit="ns")
    events = pd.DataFrame({
        "customer_id": rng.choice([f"c{i:03d}" for i in range(n_customers)], n_events),
        "ts": ts,
        "touchpoint": rng.choice(catalog, n_events),
    })
    # touches exactly at month starts (the cutoffs) and exact duplicates
    on_cutoffs = pd.DataFrame({
        "customer_id": rng.choice(events["customer_id"].unique(), 40),
        "ts": pd.date_range("2023-03-01", periods=20, freq="MS", tz="UTC").repeat(2),
        "touchpoint": rng.choice(catalog, 40),
    })
    events = pd.concat([events, on_cutoffs, events.iloc[:25]], ignore_index=True)
    events["value"] = np.where(events["touchpoint"].isin(["purchase", "renewal"]),
                               np.round(rng.gamma(2.0, 300.0, len(events)), 2), 0.0)
    return events.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def month_cutoffs(events: pd.DataFrame, seed: int, *, extra_customers: int = 3) -> pd.DataFrame:
    """Monthly cutoffs for a random subset of (customer, month), plus customers without events."""
    rng = np.random.default_rng(seed + 1)
    months = pd.date_range("2023-02-01", "2025-02-01", freq="MS", tz="UTC")
    ids = sorted(events["customer_id"].unique()) + [f"nobody{i}" for i in range(extra_customers)]
    rows = [(c, m) for c in ids for m in months if rng.random() < 0.5]
    return pd.DataFrame(rows, columns=["customer_id", "cutoff"])
