"""What moved between a model's training data and today: feature drift, base rates and points.

Pure functions on DataFrames; :mod:`signals.jobs.retrain` logs their tables with every retrain.

**Population stability index** of one feature between a reference sample (the training window)
and a current one (the as-of population)::

    PSI = sum_b (a_b - e_b) * ln(a_b / e_b)

over bins ``b`` with reference shares ``e_b`` and current shares ``a_b`` (floored at ``1e-4``
so an empty bin does not give infinity). Numeric features use the reference's deciles as bin
edges (ties merge bins; a constant feature has one bin), with missing values as a bin of their
own; text / categorical features use one bin per category. The usual reading: below 0.1
stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> before = rng.normal(0, 1, 5000)
>>> round(psi(before, rng.normal(0, 1, 5000)), 3) < 0.02
True
>>> round(psi(before, rng.normal(1, 1, 5000)), 2) > 0.25
True
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["PSI_LEVELS", "base_rate_change", "drift_report", "points_and_effect", "points_diff", "points_of", "psi",
           "psi_level"]

PSI_LEVELS = ((0.1, "stable"), (0.25, "moderate"), (np.inf, "major"))
_FLOOR = 1e-4


def _shares(codes: np.ndarray, n_bins: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=n_bins).astype(np.float64)
    return np.maximum(counts / max(counts.sum(), 1.0), _FLOOR)


def psi(reference, current, *, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (see the module docstring).

    >>> psi(pd.Series(["a", "a", "b", "b"]), pd.Series(["a", "b", "b", "b"])) > 0
    True
    >>> psi([1.0, 2.0, np.nan], [1.0, 2.0, np.nan])
    0.0
    """
    ref, cur = pd.Series(reference), pd.Series(current)
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    numeric = (pd.api.types.is_numeric_dtype(ref.dtype) and not pd.api.types.is_bool_dtype(ref.dtype)
               and not isinstance(ref.dtype, pd.CategoricalDtype))
    if numeric:
        r = ref.to_numpy(dtype=np.float64, na_value=np.nan)
        c = pd.to_numeric(cur, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        finite = r[np.isfinite(r)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
        n_bins = len(edges) + 2  # value bins, then one for missing

        def codes(x: np.ndarray) -> np.ndarray:
            out = np.searchsorted(edges, x, side="right")
            out[~np.isfinite(x)] = n_bins - 1
            return out

        e, a = _shares(codes(r), n_bins), _shares(codes(c), n_bins)
    else:
        r, c = ref.astype(object).where(ref.notna(), "<missing>"), cur.astype(object).where(cur.notna(), "<missing>")
        categories = pd.Index(pd.unique(np.concatenate([r.astype(str).to_numpy(), c.astype(str).to_numpy()])))
        e = _shares(categories.get_indexer(r.astype(str)), len(categories))
        a = _shares(categories.get_indexer(c.astype(str)), len(categories))
    return float(np.sum((a - e) * np.log(a / e)))


def psi_level(value: float) -> str:
    """``stable`` (< 0.1), ``moderate`` (< 0.25) or ``major``.

    >>> psi_level(0.05), psi_level(0.2), psi_level(0.4)
    ('stable', 'moderate', 'major')
    """
    if not np.isfinite(value):
        return "n/a"
    return next(name for bound, name in PSI_LEVELS if value < bound)


def _touchpoint_of(feature: str) -> str:
    parts = feature.split("__")
    return parts[1] if len(parts) == 3 else ""


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, features: Iterable[str], *,
                 bins: int = 10) -> pd.DataFrame:
    """PSI per feature between ``reference`` (training window) and ``current`` (as-of population).

    Returns one row per feature, highest PSI first: ``feature``, ``touchpoint`` (the middle
    part of its name), ``psi``, ``level``, the two means and missing shares (numeric features).

    >>> ref = pd.DataFrame({"freq__webinar__30d": [0, 0, 1, 2] * 50, "freq__seminar__30d": [0, 1] * 100})
    >>> cur = pd.DataFrame({"freq__webinar__30d": [1, 2, 3, 3] * 50, "freq__seminar__30d": [0, 1] * 100})
    >>> drift_report(ref, cur, ["freq__seminar__30d", "freq__webinar__30d"])[["feature", "level"]]
                  feature   level
    0  freq__webinar__30d   major
    1  freq__seminar__30d  stable
    """
    rows = []
    for name in features:
        ref, cur = reference[name], current[name]
        numeric = pd.api.types.is_numeric_dtype(ref.dtype) and not isinstance(ref.dtype, pd.CategoricalDtype)
        value = psi(ref, cur, bins=bins)
        rows.append({
            "feature": name, "touchpoint": _touchpoint_of(name), "psi": value, "level": psi_level(value),
            "reference_mean": float(ref.mean()) if numeric else np.nan,
            "current_mean": float(pd.to_numeric(cur, errors="coerce").mean()) if numeric else np.nan,
            "reference_missing": float(ref.isna().mean()), "current_missing": float(cur.isna().mean()),
        })
    table = pd.DataFrame(rows, columns=["feature", "touchpoint", "psi", "level", "reference_mean", "current_mean",
                                        "reference_missing", "current_missing"])
    return table.sort_values(["psi", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)


def base_rate_change(reference_labels, current_labels) -> dict[str, float]:
    """Positive rate of the labels in the reference window and in the current one, and the change.

    >>> base_rate_change([0, 0, 0, 1], [0, 1, 0, 1])
    {'reference_rate': 0.25, 'current_rate': 0.5, 'change': 0.25, 'ratio': 2.0, 'reference_rows': 4, 'current_rows': 4}
    """
    ref, cur = np.asarray(reference_labels, dtype=np.float64), np.asarray(current_labels, dtype=np.float64)
    r = float(ref.mean()) if len(ref) else float("nan")
    c = float(cur.mean()) if len(cur) else float("nan")
    return {"reference_rate": r, "current_rate": c, "change": c - r,
            "ratio": c / r if r > 0 else float("nan"), "reference_rows": int(len(ref)), "current_rows": int(len(cur))}


POINTS_COLUMNS = ("own_points", "learned_points")     # the points a table shows, newest layout first
EFFECT_COLUMNS = ("own_logodds", "effect_logodds")


def points_and_effect(table: pd.DataFrame) -> pd.DataFrame:
    """``touchpoint, points, effect`` of a points table (the type's own points and log-odds effect)."""
    points = next((c for c in POINTS_COLUMNS if c in table.columns), None)
    effect = next((c for c in EFFECT_COLUMNS if c in table.columns), None)
    if points is None:
        raise ValueError(f"not a points table: no column of {list(POINTS_COLUMNS)} in {list(table.columns)}")
    out = pd.DataFrame({"touchpoint": table["touchpoint"].astype(str).to_numpy(),
                        "points": table[points].astype(float).to_numpy()})
    out["effect"] = table[effect].astype(float).to_numpy() if effect else np.nan
    return out


def points_diff(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Learned points now vs before (e.g. the champion's), per touchpoint, biggest move first.

    Both tables are points tables of :mod:`signals.modeling.points` (``touchpoint``, the points
    and the log-odds effect). Points are rescaled per model (same total as the priors),
    so when every effect weakens together the points barely move while the log-odds effects
    drop: both are shown. Types in only one table get NaN on the other side.

    >>> now = pd.DataFrame({"touchpoint": ["webinar", "seminar"], "learned_points": [9.0, 6.0],
    ...                     "effect_logodds": [0.3, 0.2]})
    >>> before = pd.DataFrame({"touchpoint": ["webinar", "seminar"], "learned_points": [6.0, 10.0],
    ...                        "effect_logodds": [0.2, 0.33]})
    >>> points_diff(now, before)[["touchpoint", "previous_points", "points", "change", "direction"]]
      touchpoint  previous_points  points  change direction
    0    seminar             10.0     6.0    -4.0      down
    1    webinar              6.0     9.0     3.0        up
    """
    now = points_and_effect(current)
    if previous is None:
        table = now.assign(previous_points=np.nan, previous_effect=np.nan)
    else:
        before = points_and_effect(previous).rename(columns={"points": "previous_points", "effect": "previous_effect"})
        table = now.merge(before, on="touchpoint", how="outer", sort=False)
    table["change"] = table["points"] - table["previous_points"]
    table["effect_change"] = table["effect"] - table["previous_effect"]
    table["direction"] = np.select([table["change"] > 0, table["change"] < 0], ["up", "down"], "same")
    table.loc[table["change"].isna(), "direction"] = "n/a"
    table = table[["touchpoint", "previous_points", "points", "change", "direction", "previous_effect", "effect",
                   "effect_change"]]
    order = table["change"].abs().fillna(-1).sort_values(ascending=False, kind="stable").index
    return table.loc[order].reset_index(drop=True)


def points_of(table: pd.DataFrame) -> dict[str, float]:
    """``{touchpoint: points}`` of a points table (its own points, whatever the table's layout).

    >>> points_of(pd.DataFrame({"touchpoint": ["webinar"], "learned_points": [8.5]}))
    {'webinar': 8.5}
    """
    frame = points_and_effect(table)
    return dict(zip(frame["touchpoint"], frame["points"], strict=True))
