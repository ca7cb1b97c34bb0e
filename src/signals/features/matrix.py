"""The feature matrix: every family for every (customer_id, cutoff) row.

>>> import pandas as pd
>>> from signals.settings import load_settings
>>> events = pd.DataFrame({
...     "customer_id": ["a", "a", "a", "b"],
...     "ts": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-02-01", "2025-01-10"], utc=True),
...     "touchpoint": ["webinar", "doc_request", "webinar", "seminar"],
... })
>>> cutoffs = pd.DataFrame({"customer_id": ["a", "b"], "cutoff": pd.to_datetime(["2025-02-01"] * 2, utc=True)})
>>> spec = FeatureSpec.from_settings(load_settings())
>>> X = build_features(events, cutoffs, spec)
>>> X.loc[0, "freq__webinar__30d"]  # the webinar exactly at the cutoff is the future
np.int32(1)
>>> float(X.loc[0, "recency__all__days"])
12.0
>>> round(float(X.loc[0, "temp__webinar__hl30d"]), 4)  # 27 days old, half-life 30 days
0.5359
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from signals.features._context import PointInTime
from signals.features.frequency import compute_frequency
from signals.features.recency import compute_recency
from signals.features.spec import FeatureSpec
from signals.features.static import compute_static
from signals.features.temperature import compute_temperature
from signals.features.trend import compute_trend
from signals.features.value import compute_value
from signals.features.window import EventIndex, index_events
from signals.schemas import CUSTOMER_ID, CUTOFF, check_cutoffs, check_events, check_ids_match

__all__ = ["build_features", "feature_columns", "index_events"]

FAMILIES: dict[str, Callable[[PointInTime, FeatureSpec], dict[str, np.ndarray]]] = {
    "frequency": compute_frequency,
    "recency": compute_recency,
    "temperature": compute_temperature,
    "trend": compute_trend,
    "value": compute_value,
}


def build_features(
    events: pd.DataFrame,
    cutoffs: pd.DataFrame,
    spec: FeatureSpec,
    *,
    customers: pd.DataFrame | None = None,
    index: EventIndex | None = None,
    validate: bool = True,
    threads: int | None = None,
) -> pd.DataFrame:
    """Build the feature matrix: one row per cutoff row, in the same order.

    Parameters
    ----------
    events : pd.DataFrame
        Canonical events (``customer_id, ts, touchpoint[, value, source]``).
    cutoffs : pd.DataFrame
        ``(customer_id, cutoff)`` rows; extra columns (labels) are not carried over.
    spec : FeatureSpec
        Families, windows, half-lives and catalog (``FeatureSpec.from_settings(settings)``).
    customers : pd.DataFrame, optional
        Needed when ``spec.static_columns`` is not empty.
    index : EventIndex, optional
        ``index_events(events, spec.touchpoints)`` built beforehand, to reuse it across calls
        (then ``events`` may be None).
    validate : bool
        Check the events and cutoffs contracts first (skip only for already-validated frames),
        and that the cutoff ids are event ids (:func:`signals.schemas.check_ids_match`, with
        ``spec.features.max_unmatched_id_fraction`` / ``unmatched_ids``).
    threads : int, optional
        Threads for the per-type work (0: one per core); default ``spec.features.threads``.
        The result is the same, bit for bit, for any number of threads.

    Returns
    -------
    pd.DataFrame
        ``customer_id``, ``cutoff`` and the features named ``family__touchpoint__window``.
        Row ``i`` uses only events of customer ``i`` with ``ts < cutoff_i``.
    """
    if validate:
        if index is None:
            events = check_events(events, spec.touchpoints)
        cutoffs = check_cutoffs(cutoffs)
        check_ids_match(_event_ids(events, index), cutoffs[CUSTOMER_ID], action=spec.features.unmatched_ids,
                        max_fraction=spec.features.max_unmatched_id_fraction)
    ctx = PointInTime(events, cutoffs, spec.touchpoints, index=index,
                      threads=spec.features.threads if threads is None else threads)
    # known up front: one pass per type serves every window and half-life
    ctx.prepare(window_offsets(spec), decay_half_lives(spec), counted_offsets(spec))
    columns: dict[str, object] = {
        CUSTOMER_ID: cutoffs[CUSTOMER_ID].array,
        CUTOFF: cutoffs[CUTOFF].array,
    }
    for family in spec.families:
        computed = (compute_static(ctx, spec, customers) if family == "static"
                    else FAMILIES[family](ctx, spec))
        for name, values in computed.items():
            columns[name] = values
    return pd.DataFrame(columns, copy=False)


def _event_ids(events: pd.DataFrame | None, index: EventIndex | None) -> pd.Index:
    """The ids of customers with at least one event."""
    if index is not None:
        return index.customers[np.diff(index.block)[: len(index.customers)] > 0]
    ids = events[CUSTOMER_ID]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        used = np.bincount(ids.cat.codes.to_numpy()[ids.cat.codes.to_numpy() >= 0], minlength=len(ids.cat.categories))
        return ids.cat.categories[used > 0]
    return pd.Index(pd.unique(ids))


# What each family asks of the PointInTime context, announced up front so that one pass per type
# serves every family (a family not listed here still works: what it asks for is computed then).
def window_offsets(spec: FeatureSpec) -> list[float]:
    """Every ``days before the cutoff`` at which the spec's families cut a window (0 included)."""
    fs = spec.features
    cuts = {
        "frequency": fs.windows_days,
        "value": fs.windows_days,
        "trend": (*fs.trend_lags_days, fs.surge_recent_days, fs.surge_baseline_days,
                  fs.falling_window_days, 2 * fs.falling_window_days),
    }
    return _offsets_of(spec, cuts)


def _offsets_of(spec: FeatureSpec, cuts: dict) -> list[float]:
    """0 and every offset that ``cuts`` lists for a family of ``spec``, sorted."""
    offsets = {0.0}
    for family in spec.families:
        offsets.update(float(days) for days in cuts.get(family, ()))
    return sorted(offsets)


def counted_offsets(spec: FeatureSpec) -> list[float]:
    """The offsets of :func:`window_offsets` at which the families count events type by type."""
    fs = spec.features
    cuts = {
        "frequency": fs.windows_days,
        "value": fs.windows_days,
        "trend": (fs.surge_recent_days, fs.surge_baseline_days),  # surge__customer
    }
    return _offsets_of(spec, cuts)


def decay_half_lives(spec: FeatureSpec) -> list[float]:
    """Every half-life at which the spec's families take decayed sums at the cutoffs."""
    fs = spec.features
    half_lives: set[float] = set()
    if "temperature" in spec.families:
        half_lives.update(float(h) for h in fs.half_lives_days)
        if spec.learned_half_life_days is not None:
            half_lives.add(float(spec.learned_half_life_days))
    if "trend" in spec.families:
        half_lives.add(float(fs.trend_half_life_days))
    return sorted(half_lives)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a matrix (everything named ``family__touchpoint__window``)."""
    return [c for c in frame.columns if c.count("__") == 2]
