"""Recency and tenure: how long since the last touch, how long the relationship has run.

For every row (customer, cutoff ``T``), in days (float, NaN when there is no such touch):

- ``recency__<type>__days`` / ``recency__all__days``: ``T`` minus the last touch before ``T``;
- ``tenure__all__days``: ``T`` minus the first touch;
- ``overdue__all__ratio``: the current gap (``recency__all__days``) divided by the customer's
  usual gap, the mean time between its touches so far (NaN with fewer than two touches or when
  they all happened at the same instant). Above 1: quieter than usual (seed 003's drift).
"""

from __future__ import annotations

import numpy as np

from signals.features._context import PointInTime
from signals.features.names import feature_name
from signals.features.spec import FeatureSpec
from signals.schemas import NS_PER_DAY

__all__ = ["compute_recency"]


def _days_since(ctx: PointInTime, ts: np.ndarray, event_pos: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Days from the event at ``ts[event_pos]`` to the cutoff, NaN where ``has`` is False."""
    if len(ts) == 0:
        return np.full(ctx.n_rows, np.nan)
    days = (ctx.cutoff - ts[np.minimum(event_pos, len(ts) - 1)]) / NS_PER_DAY
    days[~has] = np.nan
    return days


def compute_recency(ctx: PointInTime, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Recency, tenure and overdue features in ``ctx`` row order."""
    out: dict[str, np.ndarray] = {}

    def recency_of(k: int) -> np.ndarray:
        seen = ctx.count_before(k, 0)  # index of the type's next event in ctx.type_ts(k)
        return _days_since(ctx, ctx.type_ts(k), np.maximum(seen - 1, 0), seen > ctx.count_before(k, None))

    for name, days in zip(spec.touchpoints, ctx.map(recency_of, range(len(spec.touchpoints))), strict=True):
        out[feature_name("recency", name, "days")] = days
    ts = ctx.index.ts
    now = ctx.positions(0)
    start = ctx.block_start()
    n_before = now - start
    has = n_before > 0
    last = np.maximum(now - 1, 0)
    recency_all = _days_since(ctx, ts, last, has)
    out[feature_name("recency", "all", "days")] = recency_all
    out[feature_name("tenure", "all", "days")] = _days_since(ctx, ts, start, has)
    overdue = np.full(ctx.n_rows, np.nan)
    two = n_before >= 2
    span_ns = np.zeros(ctx.n_rows, dtype=np.float64)
    if ctx.index.n_events:
        span_ns = np.where(two, ts[last] - ts[np.minimum(start, ctx.index.n_events - 1)], 0.0)
    ok = two & (span_ns > 0)
    usual_gap_days = span_ns[ok] / (n_before[ok] - 1) / NS_PER_DAY
    overdue[ok] = recency_all[ok] / usual_gap_days
    out[feature_name("overdue", "all", "ratio")] = overdue
    return out
