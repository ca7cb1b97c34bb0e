"""Trend and surge: is the customer warming up (きざし) or drifting away (seed 003)?

With ``h = features.trend_half_life_days`` and each lag ``L`` of ``features.trend_lags_days``:

- ``temp_delta__<type>__<L>d``, ``temp_delta__all__<L>d``, ``temp_prior_delta__all__<L>d``:
  temperature at the cutoff minus temperature ``L`` days before it (positive = warming);
- ``surge__all__<r>d`` and ``surge__customer__<r>d``: log of the touch rate in the last
  ``r = surge_recent_days`` days over the rate in the rest of the ``B = surge_baseline_days``
  window, with one pseudo-touch spread evenly over ``B`` so that quiet customers stay finite and a
  customer with no touches at all scores 0:
  ``log((n_recent + r / B) / r) - log((n_earlier + (B - r) / B) / (B - r))``;
- ``freq_change__all__<f>d``: touches in the last ``f = falling_window_days`` days minus touches in
  the ``f`` days before, and ``freq_ratio__all__<f>d = (last + 1) / (before + 1)``: seed 003's
  falling contact frequency.
"""

from __future__ import annotations

import numpy as np

from signals.features._context import PointInTime
from signals.features.names import feature_name, window_label
from signals.features.spec import FeatureSpec
from signals.features.temperature import weighted_temperature

__all__ = ["compute_trend"]


def _counts(ctx: PointInTime, spec: FeatureSpec, start_days: float, end_days: float, group: str) -> np.ndarray:
    """Touches in ``[T - start_days, T - end_days)``, of all types or one initiator group."""
    if group == "all":
        return ctx.positions(end_days) - ctx.positions(start_days)
    total = np.zeros(ctx.n_rows, dtype=np.int64)
    for k, name in enumerate(spec.touchpoints):
        if spec.catalog[name].initiated_by == group:
            total += ctx.count_within(k, start_days)
            total -= ctx.count_within(k, end_days)
    return total


def compute_trend(ctx: PointInTime, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Trend, surge and falling-frequency features in ``ctx`` row order."""
    fs = spec.features
    out: dict[str, np.ndarray] = {}
    priors = {name: tp.prior_points for name, tp in spec.catalog.items()}
    for lag in fs.trend_lags_days:
        delta = ctx.decayed_change(fs.trend_half_life_days, lag)
        label = window_label(lag)
        for k, name in enumerate(spec.touchpoints):
            out[feature_name("temp_delta", name, label)] = delta[:, k]
        out[feature_name("temp_delta", "all", label)] = delta.sum(axis=1)
        out[feature_name("temp_prior_delta", "all", label)] = weighted_temperature(delta, spec, priors)

    recent, baseline = fs.surge_recent_days, fs.surge_baseline_days
    for group in ("all", "customer"):
        n_recent = _counts(ctx, spec, recent, 0, group)
        n_earlier = _counts(ctx, spec, baseline, recent, group)
        earlier_days = baseline - recent
        out[feature_name("surge", group, window_label(recent))] = (
            np.log((n_recent + recent / baseline) / recent)
            - np.log((n_earlier + earlier_days / baseline) / earlier_days))

    f = fs.falling_window_days
    last = _counts(ctx, spec, f, 0, "all")
    before = _counts(ctx, spec, 2 * f, f, "all")
    out[feature_name("freq_change", "all", window_label(f))] = (last - before).astype(np.int32)
    out[feature_name("freq_ratio", "all", window_label(f))] = (last + 1.0) / (before + 1.0)
    return out
