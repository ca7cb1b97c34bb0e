"""Value: the amounts the customer's touches carry (RFM's M, deal sizes, MRR won or lost), net of refunds.

A type is **valued** when its catalog entry says ``valued: true`` (deal sizes on quotes and won or
lost deals, MRR on contract events). For every valued type and every window ``w`` (and ``total``,
every touch before ``T``):

- ``value__<type>__<w>d``: sum of ``value`` over that type's touches in ``[T - w, T)``;
- ``value_mean__<type>__<w>d``: their mean (NaN when there is none);
- ``value_last__<type>__<w>d``: the value of the latest of them (NaN when there is none). Touches
  in the same second are one moment: the largest of their values is the last value (day-resolution
  exports put every touch of a day at one instant).

When ``valued`` is not set, types whose role is ``purchase``, ``renewal`` or ``refund`` get the sums
only (``value__``, RFM's M); ``valued: false`` turns value features of a type off.

A refund's value is the amount given back (positive; ingestion turns a negative export into it).
When the catalog has a ``refund`` type, the money actually kept is there too:

- ``value_net__all__<w>d`` / ``value_net__all__total``: purchases and renewals minus refunds.

Counts and recency are in the frequency and recency families (``freq__purchase__365d``,
``recency__purchase__days``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from signals.features._context import PointInTime, segment_sums
from signals.features.names import feature_name, window_label
from signals.features.spec import FeatureSpec
from signals.settings import Touchpoint

__all__ = ["VALUE_FAMILIES", "VALUE_ROLES", "compute_value", "summed_types", "valued_types"]

#: Roles whose types get value sums unless the catalog says ``valued`` (true: every value feature; false: none).
VALUE_ROLES = ("purchase", "renewal", "refund")
#: Feature families of the value builder (``value_net`` only with a refund type).
VALUE_FAMILIES = ("value", "value_mean", "value_last", "value_net")


def valued_types(catalog: Mapping[str, Touchpoint]) -> list[str]:
    """The catalog's valued types (``valued: true``: sum, mean and last value), in catalog order."""
    return [name for name, tp in catalog.items() if tp.valued is True]


def summed_types(catalog: Mapping[str, Touchpoint]) -> list[str]:
    """The types with value sums, in catalog order: the valued ones, and the ``purchase``,
    ``renewal`` and ``refund`` roles unless ``valued: false``."""
    return [name for name, tp in catalog.items() if (tp.role in VALUE_ROLES if tp.valued is None else tp.valued)]


def _last_moment_max(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per position, the largest value of its run of equal ``keys`` (one customer, one second).

    ``keys`` are sorted; callers read the last position of a run.
    """
    if len(values) == 0:
        return values.astype(np.float64)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    run_max = np.maximum.reduceat(values.astype(np.float64, copy=False), starts)
    return np.repeat(run_max, np.diff(np.append(starts, len(values))))


def compute_value(ctx: PointInTime, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Value features in ``ctx`` row order."""
    out: dict[str, np.ndarray] = {}
    windows = [*spec.features.windows_days, None]
    labels = ["total" if w is None else window_label(w) for w in windows]
    valued, summed = set(valued_types(spec.catalog)), set(summed_types(spec.catalog))
    has_refund = any(spec.catalog[name].role == "refund" for name in spec.touchpoints)
    net: dict[str, np.ndarray] = {}
    for k, name in enumerate(spec.touchpoints):
        role = spec.catalog[name].role
        money = has_refund and role in ("purchase", "renewal", "refund")
        if name not in summed and not money:
            continue
        positions = ctx.type_positions(k)
        values = ctx.index.values_at(positions)
        last = _last_moment_max(values, ctx.index.key[positions]) if name in valued else None
        hi = ctx.count_before(k, 0)
        for w, label in zip(windows, labels, strict=True):
            lo = ctx.count_before(k, w)
            sums = segment_sums(values, lo, hi)
            if money:
                signed = -sums if role == "refund" else sums
                net[label] = net[label] + signed if label in net else signed.astype(np.float64, copy=True)
            if name in summed:
                out[feature_name("value", name, label)] = sums
            if last is None:
                continue
            n = hi - lo
            has = n > 0
            mean = np.full(len(n), np.nan)
            np.divide(sums, n, out=mean, where=has)
            latest = np.full(len(n), np.nan)
            latest[has] = last[hi[has] - 1]
            out[feature_name("value_mean", name, label)] = mean
            out[feature_name("value_last", name, label)] = latest
    for label in labels if has_refund else ():
        out[feature_name("value_net", "all", label)] = net[label]
    return out
