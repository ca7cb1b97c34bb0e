"""The features job: the feature matrix for a training grid or one as-of date, to Parquet (or CSV)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from signals.cutoffs import history_start, scoring_cutoffs, training_cutoffs
from signals.errors import DataError
from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.io.atomic import folder_lock
from signals.io.tables import read_events, read_table, write_table
from signals.settings import Settings

__all__ = ["FeaturesRun", "load_events", "run_features"]


@dataclass
class FeaturesRun:
    features: pd.DataFrame
    path: Path
    cutoffs: list[pd.Timestamp]
    seconds: float

    @property
    def n_features(self) -> int:
        return len(feature_columns(self.features))

    @property
    def n_rows(self) -> int:
        return len(self.features)


def load_events(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The events (required) and the customers table (when the file exists) of ``settings.paths``.

    Raises
    ------
    DataError
        There is no events file, or a table breaks its contract.
    """
    paths = settings.paths
    if not Path(paths.events).is_file():
        raise DataError(f"no events at {paths.events}: run `signals simulate` or `signals ingest` first")
    events = read_events(paths.events, settings.catalog)
    customers = read_table(paths.customers) if Path(paths.customers).is_file() else None
    return events, customers


def run_features(
    settings: Settings,
    *,
    as_of: str | None = None,
    horizon_days: float | None = None,
    out: Path | None = None,
    engine: str = "pandas",
) -> FeaturesRun:
    """Build features for the training grid (``cutoffs`` settings, leaving ``horizon_days`` of
    labels, default the longer task horizon) or, with ``as_of``, for every customer at that instant;
    write them to ``out`` (default ``paths.features``), whole or not at all, one run at a time.
    ``engine="spark"`` runs the same builders on Spark
    (:func:`signals.jobs.spark.run_features_spark`, a Parquet dataset folder).

    Raises
    ------
    DataError
        No events, ``as_of`` before any data, a history too short for the grid.
    OutputError
        Another run is writing the same file, or it cannot be written.
    """
    if engine == "spark":
        from signals.jobs.spark import run_features_spark

        return run_features_spark(settings, as_of=as_of, horizon_days=horizon_days, out=out)
    if engine != "pandas":
        raise ValueError(f"engine must be 'pandas' or 'spark', got {engine!r}")
    started = time.perf_counter()
    target = Path(out or settings.paths.features)
    with folder_lock(target, what="signals features"):
        events, customers = load_events(settings)
        if as_of is not None:
            cutoffs = scoring_cutoffs(events, as_of, timezone=settings.timezone, customers=customers)
        else:
            horizon = horizon_days or max(settings.labels.churn.horizon_days, settings.labels.purchase.horizon_days)
            c = settings.cutoffs
            cutoffs = training_cutoffs(events, horizon_days=horizon, n_cutoffs=c.n_training, frequency=c.frequency,
                                       timezone=settings.timezone, end=c.end, customers=customers,
                                       min_history_days=c.min_history_days,
                                       start=history_start(events, c.start, timezone=settings.timezone))
        spec = FeatureSpec.from_settings(settings)
        features = build_features(events, cutoffs, spec, customers=customers)
        path = write_table(features, target)
    return FeaturesRun(features, path, sorted(cutoffs["cutoff"].unique()), time.perf_counter() - started)
