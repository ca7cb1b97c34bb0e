"""Seed 001's customer journey: each customer's stage, a journey map, and stage-to-stage conversion.

Stages, in funnel order: ``awareness``, ``interest``, ``consideration``, ``purchase``,
``retention``, ``at_risk``. At a cutoff ``T`` (rules in ``views.journey``; *active* is the churn
label's rule, see :meth:`signals.views._history.History.active`):

1. an active customer who purchased in ``[T - purchase_days, T)``: ``purchase``;
2. an active customer with no contact (``views.ignore_touchpoints`` excluded) in
   ``[T - at_risk_quiet_days, T)``: ``at_risk``;
3. any other active customer: ``retention``;
4. everyone else (prospects, former customers): the furthest of ``consideration``, ``interest``,
   ``awareness`` whose touch types (``views.journey.<stage>``) it had in ``[T - recent_days, T)``,
   and ``awareness`` when it had none.

:func:`journey_map` lists which touchpoints occur at which stage (share of the stage's customers
with that touch in the last ``recent_days``) next to their prior and learned points;
:func:`stage_conversion` follows every customer from its stage at ``T`` to its stage at
``T + conversion_days``.

>>> import pandas as pd
>>> from signals.settings import load_settings
>>> events = pd.DataFrame({
...     "customer_id": ["p", "p", "q", "r", "r", "s"],
...     "ts": pd.to_datetime(["2025-03-01", "2025-03-20", "2025-03-10", "2024-06-01", "2025-01-05", "2025-01-01"], utc=True),
...     "touchpoint": ["web_visit", "doc_request", "webinar", "purchase", "call", "purchase"],
... })
>>> stages = journey_stages(events, "2025-04-01", load_settings())
>>> stages.set_index("customer_id")["stage"].to_dict()
{'p': 'consideration', 'q': 'interest', 'r': 'at_risk', 's': 'purchase'}
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from signals.schemas import CUSTOMER_ID, CUTOFF
from signals.settings import Settings
from signals.views._history import History, Rows
from signals.views._rates import rates_by_group

__all__ = ["STAGES", "journey_map", "journey_stages", "stage_conversion", "stage_rows", "stage_transitions"]

STAGES: tuple[str, ...] = ("awareness", "interest", "consideration", "purchase", "retention", "at_risk")
_PRE = ("awareness", "interest", "consideration")
#: the stages that count as converting from each stage (within ``conversion_days``)
CONVERTED: dict[str, tuple[str, ...]] = {
    "awareness": ("interest", "consideration", "purchase", "retention", "at_risk"),
    "interest": ("consideration", "purchase", "retention", "at_risk"),
    "consideration": ("purchase", "retention", "at_risk"),
    "purchase": ("purchase", "retention"),
    "retention": ("purchase", "retention"),
    "at_risk": ("purchase", "retention"),
}
MEANING: dict[str, str] = {
    "awareness": "moved to interest or beyond",
    "interest": "moved to consideration or beyond",
    "consideration": "became an active customer",
    "purchase": "still an engaged customer (purchase or retention)",
    "retention": "still an engaged customer (purchase or retention)",
    "at_risk": "recovered (purchase or retention)",
}


def _stage_codes(history: History, rows: Rows) -> np.ndarray:
    """Stage code of every row (computed once per ``rows`` object: several tables share them)."""
    cache = rows.__dict__.setdefault("_stage_codes", {})
    key = history
    if key not in cache:
        cache[key] = _compute_stage_codes(history, rows)
    return cache[key]


def _later_codes(history: History, rows: Rows, days: int) -> np.ndarray:
    """Stage codes of the same customers ``days`` after each row's cutoff (cached on ``rows``)."""
    cache = rows.__dict__.setdefault("_later_codes", {})
    key = (history, days)
    if key not in cache:
        cache[key] = _stage_codes(history, _later(history, rows, days))
    return cache[key]


def _compute_stage_codes(history: History, rows: Rows) -> np.ndarray:
    j = history.settings.views.journey
    code = np.zeros(len(rows), dtype=np.int8)                      # awareness
    for stage in ("interest", "consideration"):                    # the furthest touched stage wins
        types = getattr(j, stage)
        touched = history.count(types, rows, j.recent_days) > 0
        code[touched] = STAGES.index(stage)
    active = history.active(rows)
    bought = history.count(history.role_types("purchase"), rows, j.purchase_days) > 0
    quiet = history.count(history.contact_types, rows, j.at_risk_quiet_days) == 0
    code[active] = STAGES.index("retention")
    code[active & quiet] = STAGES.index("at_risk")
    code[active & bought] = STAGES.index("purchase")
    return code


def stage_rows(history: History, rows: Rows) -> pd.DataFrame:
    """``customer_id, cutoff, stage`` (a categorical of :data:`STAGES`) of every row, in order."""
    frame = history.frame(rows)
    frame["stage"] = pd.Categorical.from_codes(_stage_codes(history, rows), categories=list(STAGES))
    return frame


def journey_stages(events: pd.DataFrame, as_of, settings: Settings, *, customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each customer's journey stage at ``as_of``: ``customer_id, as_of, stage`` (the CRM row's column)."""
    history = History(events, as_of, settings, customers=customers)
    table = stage_rows(history, history.rows_at())
    return table.rename(columns={CUTOFF: "as_of"}).sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)


def journey_map(
    history: History,
    rows: Rows,
    points: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Which touchpoints occur at which stage, with their points.

    For every touchpoint type (rows) and stage (columns ``share__<stage>``): the share of the
    stage's rows that had at least one touch of that type in the last ``views.journey.recent_days``.
    Also ``channel``, ``initiated_by``, ``journey_stage`` (the stage list the type is in, or the
    role for purchases / renewals / cancellations), ``prior_points`` and, for each task of
    ``points`` (e.g. ``{"purchase": {...}, "churn": {...}}`` from trained bundles),
    ``learned_<task>``. The row counts per stage are in ``attrs["rows_per_stage"]``.
    """
    j = history.settings.views.journey
    idx = history.index
    code = _stage_codes(history, rows)
    hi = history.positions(rows)
    lo = history.positions(rows, j.recent_days)
    n_types = len(idx.touchpoints)
    counts = np.zeros((len(STAGES), n_types), dtype=np.int64)
    prefix = np.zeros(idx.n_events + 1, dtype=np.int32)
    for k in range(n_types):                                        # one prefix count per type
        np.cumsum(idx.type_code == k, out=prefix[1:])
        touched = prefix[hi] > prefix[lo]
        counts[:, k] = np.bincount(code[touched], minlength=len(STAGES))
    per_stage = np.bincount(code, minlength=len(STAGES))
    catalog = history.catalog
    stage_of = {t: s for s in _PRE for t in getattr(j, s)}
    table = pd.DataFrame({
        "touchpoint": list(idx.touchpoints),
        "channel": [catalog[t].channel for t in idx.touchpoints],
        "initiated_by": [catalog[t].initiated_by for t in idx.touchpoints],
        "journey_stage": [stage_of.get(t, catalog[t].role) for t in idx.touchpoints],
        "prior_points": [catalog[t].prior_points for t in idx.touchpoints],
    })
    for task, table_points in (points or {}).items():
        table[f"learned_{task}"] = [table_points.get(t, np.nan) for t in idx.touchpoints]
    with np.errstate(invalid="ignore", divide="ignore"):
        for s, stage in enumerate(STAGES):
            table[f"share__{stage}"] = counts[s] / per_stage[s] if per_stage[s] else np.nan
    table.attrs["rows_per_stage"] = dict(zip(STAGES, per_stage.tolist(), strict=True))
    return table


def stage_transitions(history: History, rows: Rows) -> pd.DataFrame:
    """Stage at each row's cutoff and ``views.journey.conversion_days`` later: ``from, to, rows, share``.

    ``share`` is of the ``from`` stage's rows (each ``from`` sums to 1). Every row's later instant
    must be at or before ``as_of``.
    """
    days = history.settings.views.journey.conversion_days
    before, after = _stage_codes(history, rows), _later_codes(history, rows, days)
    n = len(STAGES)
    counts = np.bincount(before.astype(np.int64) * n + after, minlength=n * n).reshape(n, n)
    table = pd.DataFrame([(STAGES[a], STAGES[b], int(counts[a, b])) for a in range(n) for b in range(n)],
                         columns=["from", "to", "rows"])
    totals = table.groupby("from", sort=False)["rows"].transform("sum")
    table["share"] = np.where(totals > 0, table["rows"] / totals.clip(lower=1), np.nan)
    return table


def _later(history: History, rows: Rows, days: int) -> Rows:
    later = rows.shifted(days)
    if len(later) and later.cutoff.max() > history.as_of.value:
        from signals.errors import DataError

        raise DataError(f"stage conversion needs {days} days after every cutoff, past the as-of instant")
    return later


def stage_conversion(history: History, rows: Rows) -> pd.DataFrame:
    """Per stage: the share that converted within ``views.journey.conversion_days`` (see :data:`CONVERTED`).

    Columns ``stage, meaning, rows, customers, converted, rate, low, high`` (95% customer-clustered
    Wilson interval, :mod:`signals.views._rates`).
    """
    days = history.settings.views.journey.conversion_days
    before, after = _stage_codes(history, rows), _later_codes(history, rows, days)
    ok = np.zeros((len(STAGES), len(STAGES)), dtype=bool)
    for a, targets in CONVERTED.items():
        for b in targets:
            ok[STAGES.index(a), STAGES.index(b)] = True
    converted = ok[before, after].astype(np.float64)
    rates = rates_by_group(before, STAGES, rows.cust, converted)
    rates.insert(1, "meaning", [MEANING[s] for s in STAGES])
    return rates.rename(columns={"group": "stage", "positives": "converted"}).drop(columns="deff")
