"""Feature names: ``family__touchpoint__window``, so every feature maps back to a touchpoint.

The touchpoint slot holds a catalog type (``webinar``), ``all`` (every type), an initiator group
(``customer`` / ``company``), a points table (``prior`` / ``learned``, for weighted temperatures)
or, for the ``static`` family, the customer attribute.

>>> feature_name("freq", "webinar", "30d")
'freq__webinar__30d'
>>> parse_feature_name("temp__all__hl30d")
FeatureName(family='temp', touchpoint='all', window='hl30d')
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FeatureName", "feature_name", "half_life_label", "parse_feature_name", "window_label"]


class FeatureName(NamedTuple):
    family: str
    touchpoint: str
    window: str


def feature_name(family: str, touchpoint: str, window: str) -> str:
    return f"{family}__{touchpoint}__{window}"


def parse_feature_name(name: str) -> FeatureName:
    """Split a feature name into its parts; a name not of the form raises ``ValueError``."""
    parts = name.split("__")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{name!r} is not a feature name of the form family__touchpoint__window")
    return FeatureName(*parts)


def _number(days: float) -> str:
    return str(int(days)) if float(days).is_integer() else f"{float(days):g}"


def window_label(days: float) -> str:
    """``30`` -> ``'30d'``."""
    return f"{_number(days)}d"


def half_life_label(days: float) -> str:
    """``30`` -> ``'hl30d'``."""
    return f"hl{_number(days)}d"
