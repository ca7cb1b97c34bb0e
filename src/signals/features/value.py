"""Value: what the customer spent (RFM's M) on value-bearing touchpoints, net of refunds.

For every type whose role is ``purchase``, ``renewal`` or ``refund`` and every window ``w``:

- ``value__<type>__<w>d``: sum of ``value`` over that type's touches in ``[T - w, T)``;
- ``value__<type>__total``: sum over all of that type's touches before ``T``.

A refund's value is the amount given back (positive; ingestion turns a negative export into it).
When the catalog has a ``refund`` type, the money actually kept is there too:

- ``value_net__all__<w>d`` / ``value_net__all__total``: purchases and renewals minus refunds.

Counts and recency of purchases are in the frequency and recency families
(``freq__purchase__365d``, ``recency__purchase__days``).
"""

from __future__ import annotations

import numpy as np

from signals.features._context import PointInTime, segment_sums
from signals.features.names import feature_name, window_label
from signals.features.spec import FeatureSpec

__all__ = ["VALUE_ROLES", "compute_value"]

VALUE_ROLES = ("purchase", "renewal", "refund")


def compute_value(ctx: PointInTime, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Value features in ``ctx`` row order."""
    out: dict[str, np.ndarray] = {}
    windows = [*map(window_label, spec.features.windows_days), "total"]
    net: dict[str, np.ndarray] = {}
    has_refund = any(spec.catalog[name].role == "refund" for name in spec.touchpoints)
    for k, name in enumerate(spec.touchpoints):
        role = spec.catalog[name].role
        if role not in VALUE_ROLES:
            continue
        values = ctx.index.values_at(ctx.type_positions(k))
        hi = ctx.count_before(k, 0)
        for w, label in zip([*spec.features.windows_days, None], windows, strict=True):
            sums = segment_sums(values, ctx.count_before(k, w), hi)
            out[feature_name("value", name, label)] = sums
            if has_refund:
                signed = -sums if role == "refund" else sums
                net[label] = net[label] + signed if label in net else signed.astype(np.float64, copy=True)
    for label in windows if has_refund else ():
        out[feature_name("value_net", "all", label)] = net[label]
    return out
