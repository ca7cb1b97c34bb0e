"""Frequency: how often the customer was touched in trailing windows (seeds 000, 003).

For every window ``w`` of ``features.windows_days`` and every row (customer, cutoff ``T``):

- ``freq__<type>__<w>d``: touches of that type in ``[T - w, T)``;
- ``freq__all__<w>d``: touches of any type;
- ``freq__customer__<w>d`` / ``freq__company__<w>d``: touches initiated by the customer / by us.
"""

from __future__ import annotations

import numpy as np

from signals.features._context import PointInTime
from signals.features.names import feature_name, window_label
from signals.features.spec import FeatureSpec

__all__ = ["compute_frequency"]


def compute_frequency(ctx: PointInTime, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Frequency features in ``ctx`` row order (int32 counts)."""
    out: dict[str, np.ndarray] = {}
    windows = spec.features.windows_days
    now = ctx.positions(0)
    for w in windows:
        out[feature_name("freq", "all", window_label(w))] = (now - ctx.positions(w)).astype(np.int32)
    by_initiator = {g: {w: np.zeros(ctx.n_rows, dtype=np.int32) for w in windows} for g in ("customer", "company")}

    for k, name in enumerate(spec.touchpoints):
        group = spec.catalog[name].initiated_by
        for w in windows:
            counts = ctx.count_within(k, w)
            out[feature_name("freq", name, window_label(w))] = counts
            by_initiator[group][w] += counts
    for group, per_window in by_initiator.items():
        for w, counts in per_window.items():
            out[feature_name("freq", group, window_label(w))] = counts
    return out
