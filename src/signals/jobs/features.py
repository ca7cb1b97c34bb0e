"""The features job: the feature matrix for a training grid or one as-of date, to Parquet."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from signals.cutoffs import scoring_cutoffs, training_cutoffs
from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.io.tables import read_events, read_table, write_table
from signals.settings import Settings

__all__ = ["FeaturesRun", "run_features"]


@dataclass
class FeaturesRun:
    features: pd.DataFrame
    path: Path
    cutoffs: list[pd.Timestamp]
    seconds: float

    @property
    def n_features(self) -> int:
        return len(feature_columns(self.features))


def run_features(
    settings: Settings,
    *,
    as_of: str | None = None,
    horizon_days: float | None = None,
    out: Path | None = None,
) -> FeaturesRun:
    """Build features for the training grid (``cutoffs`` settings, leaving ``horizon_days`` of
    labels, default the longer task horizon) or, with ``as_of``, for every customer at that instant;
    write them to ``out`` (default ``paths.features``)."""
    started = time.perf_counter()
    paths = settings.paths
    if not Path(paths.events).is_file():
        raise FileNotFoundError(f"no events at {paths.events}: run `signals simulate` or `signals ingest` first")
    events = read_events(paths.events, settings.catalog)
    customers = read_table(paths.customers) if Path(paths.customers).is_file() else None
    if as_of is not None:
        cutoffs = scoring_cutoffs(events, as_of, timezone=settings.timezone, customers=customers)
    else:
        horizon = horizon_days or max(settings.labels.churn.horizon_days, settings.labels.purchase.horizon_days)
        c = settings.cutoffs
        cutoffs = training_cutoffs(events, horizon_days=horizon, n_cutoffs=c.n_training, frequency=c.frequency,
                                   timezone=settings.timezone, end=c.end, customers=customers,
                                   min_history_days=c.min_history_days)
    spec = FeatureSpec.from_settings(settings)
    features = build_features(events, cutoffs, spec, customers=customers)
    path = write_table(features, out or paths.features)
    return FeaturesRun(features, path, sorted(cutoffs["cutoff"].unique()), time.perf_counter() - started)
