"""Seed 002's temperature (顧客接点温度) over time, with the alarms the article asks for.

Every touch earns points that cool down with a half-life; the temperature at an instant ``t`` is
``sum_j points[type_j] * 0.5 ** ((t - t_j) / h)`` over the touches before ``t``. It is computed by
the feature builders themselves (``temp__<type>__hl<h>d`` of :func:`signals.build_features`), so a
timeline shows exactly what the models see. A :class:`Curve` is one points table at one half-life:
the catalog's prior points (the article's hand-set 配点) or a trained model's learned points.

Two alarms (seed 002):

- **きざし (kizashi)**: the temperature rose sharply, a customer may have started to consider a
  purchase. It fires when the rise over ``views.timeline.surge_days`` crosses the *surge line*;
- **cooling**: an active customer's temperature fell below the *cold line*: sales should visit.

:func:`alarm_lines` places the two lines on the whole population at the as-of date (the
``surge_quantile`` of everyone's rise, the ``cold_quantile`` of the active customers'
temperature); the scoring job can pass its own (chosen for a precision) instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from signals.errors import DataError
from signals.features.matrix import build_features
from signals.features.names import half_life_label
from signals.features.spec import FeatureSpec
from signals.features.window import days_to_ns
from signals.schemas import CUSTOMER_ID, NS_PER_SECOND, TOUCHPOINT, TS
from signals.views._history import History, Rows

__all__ = [
    "AlarmLines",
    "Curve",
    "Timeline",
    "alarm_lines",
    "current_alarms",
    "default_curves",
    "population",
    "temperature",
    "timeline",
]


@dataclass(frozen=True)
class Curve:
    """A temperature: points per touchpoint type at a half-life. ``task`` names the model it came from."""

    name: str
    points: Mapping[str, float]
    half_life_days: float
    task: str | None = None


@dataclass(frozen=True)
class AlarmLines:
    """Where the alarms fire: ``surge`` on the kizashi curve's rise, ``cold`` on the cooling curve."""

    kizashi_curve: str
    cooling_curve: str
    surge: float
    cold: float
    surge_days: int
    source: str = "population quantiles at the as-of date"


@dataclass
class Timeline:
    """Temperatures of a few customers over time, their touches and the alarms that fired."""

    temperatures: pd.DataFrame  # customer_id, at, one column per curve, rise (kizashi curve), active
    touches: pd.DataFrame       # customer_id, ts, touchpoint, initiated_by
    alarms: pd.DataFrame        # customer_id, at, alarm (kizashi / cooling), value
    curves: list[Curve]
    lines: AlarmLines
    as_of: pd.Timestamp
    timezone: str = "UTC"
    notes: list[str] = field(default_factory=list)


def default_curves(history: History, learned: Mapping[str, Curve] | None = None) -> list[Curve]:
    """The prior-points curve (at ``features.trend_half_life_days``) and any learned curves given."""
    catalog = history.catalog
    prior = Curve("prior points", {t: tp.prior_points for t, tp in catalog.items()},
                  history.settings.features.trend_half_life_days)
    return [prior, *(learned or {}).values()]


def temperature(history: History, rows: Rows, curves: Sequence[Curve]) -> dict[str, np.ndarray]:
    """Each curve's temperature at every row (built by :func:`signals.build_features`)."""
    spec = FeatureSpec.from_settings(history.settings)
    half_lives = tuple(sorted({float(c.half_life_days) for c in curves}))
    seconds = rows.cutoff // NS_PER_SECOND
    low = int(seconds.min()) if len(rows) else 0
    key = rows.cust * (int(seconds.max() - low) + 1 if len(rows) else 1) + (seconds - low)
    first, inverse = np.unique(key, return_index=True, return_inverse=True)[1:]   # each distinct row once
    distinct = Rows(rows.cust[first], rows.cutoff[first])
    temps = build_features(None, history.frame(distinct, categorical=True), spec.temperature_only(half_lives),
                           index=history.index).iloc[inverse.ravel()]
    out = {}
    for curve in curves:
        label = half_life_label(curve.half_life_days)
        total = np.zeros(len(rows))
        for name, value in curve.points.items():
            column = f"temp__{name}__{label}"
            if column in temps and value:
                total += float(value) * temps[column].to_numpy()
        out[curve.name] = total
    return out


def _pick(curves: Sequence[Curve], task: str) -> Curve:
    for curve in curves:
        if curve.task == task:
            return curve
    return curves[0]


def population(history: History, curves: Sequence[Curve]) -> pd.DataFrame:
    """Every customer at ``as_of``: each curve's temperature, the kizashi curve's rise, and activity.

    Columns: ``customer_id``, one per curve, ``rise`` (of the purchase curve, or the first one, over
    ``views.timeline.surge_days``) and ``active`` (the churn label's rule).
    """
    t = history.settings.views.timeline
    kizashi = _pick(curves, "purchase")
    rows = history.rows_at()
    if len(rows) == 0:
        raise DataError("no customer is known at the as-of date")
    both = Rows(np.concatenate([rows.cust, rows.cust]),                # now and surge_days before, one build
                np.concatenate([rows.cutoff, rows.shifted(-t.surge_days).cutoff]))
    temps = temperature(history, both, curves)
    now = {name: values[: len(rows)] for name, values in temps.items()}
    before = {name: values[len(rows):] for name, values in temps.items()}
    table = pd.DataFrame({CUSTOMER_ID: np.asarray(history.customer_ids[rows.cust].astype(str))})
    for name, values in now.items():
        table[name] = values
    table["rise"] = now[kizashi.name] - before[kizashi.name]
    table["active"] = history.active(rows)
    return table


def alarm_lines(history: History, curves: Sequence[Curve], table: pd.DataFrame | None = None) -> AlarmLines:
    """Population lines at ``as_of`` (``table``: :func:`population`, computed when not given).

    The kizashi line is the ``surge_quantile`` of everyone's rise of the purchase curve (or the
    prior one); the cold line the ``cold_quantile`` of the active customers' churn curve (or prior).
    """
    t = history.settings.views.timeline
    kizashi, cooling = _pick(curves, "purchase"), _pick(curves, "churn")
    table = table if table is not None else population(history, curves)
    active = table["active"].to_numpy()
    cold = float(np.quantile(table.loc[active, cooling.name], t.cold_quantile)) if active.any() else np.nan
    return AlarmLines(kizashi.name, cooling.name, float(np.quantile(table["rise"], t.surge_quantile)), cold,
                      t.surge_days)


def current_alarms(table: pd.DataFrame, lines: AlarmLines) -> pd.DataFrame:
    """:func:`population` with two flags: ``kizashi`` (rise at or above the surge line) and
    ``cooling`` (active, temperature below the cold line)."""
    out = table.copy()
    out["kizashi"] = out["rise"] >= lines.surge
    out["cooling"] = out["active"] & (out[lines.cooling_curve] < lines.cold)
    return out


def _days(history: History, start_ns: int) -> np.ndarray:
    """Local midnights from the day of ``start_ns`` to ``as_of`` (UTC ns), ending with ``as_of`` itself."""
    tz = history.settings.timezone
    start = pd.Timestamp(start_ns, tz="UTC").tz_convert(tz).normalize()
    end = history.as_of.tz_convert(tz)
    instants = pd.date_range(start, end, freq="D").tz_convert("UTC").as_unit("ns").asi8
    instants = instants[(instants > start_ns) & (instants <= history.as_of.value)]
    return np.unique(np.append(instants, history.as_of.value))


def timeline(
    history: History,
    customer_ids: Sequence[str],
    curves: Sequence[Curve] | None = None,
    lines: AlarmLines | None = None,
    *,
    days: int | None = None,
) -> Timeline:
    """Daily temperatures, touches and alarms of ``customer_ids`` up to ``as_of``.

    Parameters
    ----------
    curves : the temperatures to draw (default: the prior points only, :func:`default_curves`)
    lines : alarm lines (default: :func:`alarm_lines` on the whole population)
    days : only the last ``days`` days (default: from the customer's first touch)

    Raises
    ------
    DataError
        A customer id has no touch before ``as_of``.
    """
    curves = list(curves or default_curves(history))
    lines = lines or alarm_lines(history, curves)
    ids = [str(c) for c in customer_ids]
    codes = history.customer_ids.get_indexer(ids)
    missing = [c for c, k in zip(ids, codes, strict=True) if k < 0 or history.first_seen_ns[k] >= history.as_of.value]
    if missing:
        raise DataError(f"customer(s) {missing} have no touch before {history.as_of.tz_convert(history.settings.timezone):%Y-%m-%d %H:%M %Z} "
                        "(check the id: ids are text, e.g. 'C000042')")
    idx = history.index
    parts, touch_parts = [], []
    for cid, code in zip(ids, codes, strict=True):
        start = history.first_seen_ns[code]
        if days is not None:
            start = max(start, history.as_of.value - days_to_ns(days))
        at = _days(history, int(start))
        parts.append((cid, code, at))
        lo, hi = idx.block[code], idx.block[code + 1]
        touch_parts.append(pd.DataFrame({CUSTOMER_ID: cid, TS: pd.DatetimeIndex(idx.ts[lo:hi]).tz_localize("UTC"),
                                         TOUCHPOINT: [idx.touchpoints[k] for k in idx.type_code[lo:hi]]}))
    rows = Rows(np.concatenate([np.full(len(at), code) for _, code, at in parts]),
                np.concatenate([at for _, _, at in parts]))
    kizashi = next(c for c in curves if c.name == lines.kizashi_curve)
    both = Rows(np.concatenate([rows.cust, rows.cust]),
                np.concatenate([rows.cutoff, rows.shifted(-lines.surge_days).cutoff]))
    built = temperature(history, both, curves)
    temps = {name: values[: len(rows)] for name, values in built.items()}
    earlier = built[kizashi.name][len(rows):]
    frame = pd.DataFrame({CUSTOMER_ID: np.repeat([cid for cid, _, _ in parts], [len(at) for _, _, at in parts]),
                          "at": pd.DatetimeIndex(rows.cutoff).tz_localize("UTC")})
    for name, values in temps.items():
        frame[name] = values
    frame["rise"] = temps[kizashi.name] - earlier
    frame["active"] = history.active(rows)
    touches = pd.concat(touch_parts, ignore_index=True)
    touches["initiated_by"] = touches[TOUCHPOINT].map({t: tp.initiated_by for t, tp in history.catalog.items()})
    return Timeline(frame, touches, _alarms(frame, lines), curves, lines, history.as_of, history.settings.timezone,
                    list(history.notes))


def _alarms(frame: pd.DataFrame, lines: AlarmLines) -> pd.DataFrame:
    """The instants where the rise crosses above the surge line, or an active customer's temperature
    crosses below the cold line (crossings, not every day above / below)."""
    records = []
    for cid, one in frame.groupby(CUSTOMER_ID, sort=False):
        rise, cool, active = one["rise"].to_numpy(), one[lines.cooling_curve].to_numpy(), one["active"].to_numpy()
        up = rise >= lines.surge
        fired = up & ~np.concatenate([[False], up[:-1]])
        for i in np.flatnonzero(fired):
            records.append((cid, one["at"].iloc[i], "kizashi", rise[i]))
        cold = (cool < lines.cold) & active
        was_warm = np.concatenate([[True], cool[:-1] >= lines.cold])
        for i in np.flatnonzero(cold & was_warm & np.concatenate([[False], active[:-1]])):
            records.append((cid, one["at"].iloc[i], "cooling", cool[i]))
    alarms = pd.DataFrame(records, columns=[CUSTOMER_ID, "at", "alarm", "value"])
    return alarms.sort_values([CUSTOMER_ID, "at"], kind="stable").reset_index(drop=True)
