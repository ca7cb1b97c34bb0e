"""Temperature (顧客接点温度, seed 002): touches earn points that cool down over time.

A touch ``d`` days before the cutoff counts ``0.5 ** (d / h)`` for half-life ``h``: full value
just before the cutoff, half after one half-life. For each half-life ``h`` of
``features.half_lives_days``:

- ``temp__<type>__hl<h>d``: decayed count of that type's touches (one point per touch);
- ``temp__all__hl<h>d``: decayed count of all touches;
- ``temp_prior__all__hl<h>d``: the article's temperature, ``sum(prior_points[type] * temp_type)``
  with the catalog's hand-set points;
- ``temp_learned__all__hl<h>d``: the same with a learned points table (only when the spec
  carries one, at its learned half-life).
"""

from __future__ import annotations

import numpy as np

from signals.features._context import PointInTime
from signals.features.names import feature_name, half_life_label
from signals.features.spec import FeatureSpec

__all__ = ["compute_temperature", "weighted_temperature"]


def weighted_temperature(per_type: np.ndarray, spec: FeatureSpec, points: dict[str, float]) -> np.ndarray:
    """``sum_k points[k] * per_type[..., k]`` (types missing from ``points`` count 0)."""
    weights = np.array([float(points.get(name, 0.0)) for name in spec.touchpoints])
    return per_type @ weights


def compute_temperature(ctx: PointInTime, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Temperature features in ``ctx`` row order."""
    out: dict[str, np.ndarray] = {}
    priors = {name: tp.prior_points for name, tp in spec.catalog.items()}
    for h in spec.features.half_lives_days:
        per_type = ctx.decayed(h)
        label = half_life_label(h)
        for k, name in enumerate(spec.touchpoints):
            out[feature_name("temp", name, label)] = per_type[:, k]
        out[feature_name("temp", "all", label)] = per_type.sum(axis=1)
        out[feature_name("temp_prior", "all", label)] = weighted_temperature(per_type, spec, priors)
    if spec.learned_points is not None:
        h = spec.learned_half_life_days
        per_type = ctx.decayed(h)
        out[feature_name("temp_learned", "all", half_life_label(h))] = weighted_temperature(
            per_type, spec, spec.learned_points)
    return out
