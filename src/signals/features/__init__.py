"""Point-in-time feature builders: one row per (customer, cutoff), only events with ``ts < cutoff``.

Public modules: :mod:`signals.features.matrix` (``build_features``), :mod:`signals.features.spec`
(``FeatureSpec``), :mod:`signals.features.window` (the point-in-time rule) and
:mod:`signals.features.reference` (the plain oracle). :class:`PointInTime` is the shared,
cached context the family builders read (events and cutoff rows indexed together); code outside
``features`` (scoring's temperatures) uses it from here, never from the private module.
"""

from signals.features._context import PointInTime

__all__ = ["PointInTime"]
