"""Value: what the customer spent (RFM's M) on value-bearing touchpoints.

For every type whose role is ``purchase`` or ``renewal`` and every window ``w``:

- ``value__<type>__<w>d``: sum of ``value`` over that type's touches in ``[T - w, T)``;
- ``value__<type>__total``: sum over all of that type's touches before ``T``.

Counts and recency of purchases are in the frequency and recency families
(``freq__purchase__365d``, ``recency__purchase__days``).
"""

from __future__ import annotations

import numpy as np

from signals.features._context import PointInTime, segment_sums
from signals.features.names import feature_name, window_label
from signals.features.spec import FeatureSpec

__all__ = ["VALUE_ROLES", "compute_value"]

VALUE_ROLES = ("purchase", "renewal")


def compute_value(ctx: PointInTime, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Value features in ``ctx`` row order."""
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(spec.touchpoints):
        if spec.catalog[name].role not in VALUE_ROLES:
            continue
        values = ctx.index.value[ctx.type_positions(k)]
        hi = ctx.count_before(k, 0)
        for w in spec.features.windows_days:
            out[feature_name("value", name, window_label(w))] = segment_sums(values, ctx.count_before(k, w), hi)
        out[feature_name("value", name, "total")] = segment_sums(values, ctx.count_before(k, None), hi)
    return out
