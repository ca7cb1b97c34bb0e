"""Labels: the only code that looks past a cutoff.

Every function here reads events in ``[cutoff, cutoff + horizon)`` (the future of the cutoff)
and says so in its name. Each returns the cutoffs table with two columns added, so labels travel
with their cutoffs and stay aligned:

- ``eligible`` (bool): the row belongs to the task's population at the cutoff;
- ``label`` (float): 1.0 / 0.0 for eligible rows, NaN otherwise.

Populations and positives:

- :func:`churn_within`, contractual: eligible = an active subscriber at the cutoff (its last
  purchase / renewal / cancellation before the cutoff is a purchase or renewal); positive = a
  cancellation in the horizon. Non-renewals must be recorded as cancellations at ingestion.
- :func:`churn_within`, non-contractual (retail): eligible = active, i.e. at least one activity
  event (roles ``activity_roles``) in ``[cutoff - lookback, cutoff)``; positive = no activity in
  the horizon.
- :func:`purchase_within` (きざし): eligible = no purchase in ``[cutoff - quiet, cutoff)`` (not
  already in the middle of buying); positive = a purchase in the horizon.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from signals.errors import ConfigError
from signals.features.window import days_to_ns, end_of_known, index_events, index_rows
from signals.schemas import TOUCHPOINT, check_cutoffs, check_events
from signals.settings import LabelSettings, Touchpoint

__all__ = ["TASKS", "churn_within", "horizon_days", "label_cutoffs", "purchase_within"]

TASKS = ("churn", "purchase")


class _RoleEvents:
    """Events of a few roles, indexed against the cutoff rows (in the cutoffs' own order)."""

    def __init__(self, events: pd.DataFrame, cutoffs: pd.DataFrame, catalog: Mapping[str, Touchpoint], roles) -> None:
        self.types = [name for name, tp in catalog.items() if tp.role in roles]
        subset = events[events[TOUCHPOINT].isin(self.types)]
        index = index_events(subset, self.types)
        self.index, rows = index_rows(index, cutoffs)
        self.cust, self.cutoff = rows.cust, rows.cutoff

    def count(self, start_days: float, end_days: float, types: list[str] | None = None) -> np.ndarray:
        """Events in ``[cutoff + start_days, cutoff + end_days)`` (negative days = the past)."""
        hi = end_of_known(self.index, self.cust, self.cutoff + days_to_ns(end_days))
        lo = end_of_known(self.index, self.cust, self.cutoff + days_to_ns(start_days))
        if types is None or set(types) == set(self.types):
            return hi - lo
        codes = [self.types.index(t) for t in types]
        is_type = np.isin(self.index.type_code, codes)
        prefix = np.concatenate([[0], np.cumsum(is_type)])
        return prefix[hi] - prefix[lo]

    def last_type_before_cutoff(self) -> np.ndarray:
        """Type code of the customer's last event before the cutoff (-1 if none)."""
        now = end_of_known(self.index, self.cust, self.cutoff)
        has = now > self.index.block[self.cust]
        out = np.full(len(now), -1, dtype=np.int64)
        out[has] = self.index.type_code[now[has] - 1]
        return out


def _with_labels(cutoffs: pd.DataFrame, eligible: np.ndarray, positive: np.ndarray) -> pd.DataFrame:
    out = cutoffs.copy()
    out["eligible"] = eligible
    out["label"] = np.where(eligible, positive.astype(np.float64), np.nan)
    return out


def _check_roles(catalog: Mapping[str, Touchpoint], roles, task: str) -> None:
    if not any(tp.role in roles for tp in catalog.values()):
        raise ConfigError(f"{task} labels need a touchpoint with role {sorted(roles)} in the catalog")


def churn_within(
    events: pd.DataFrame,
    cutoffs: pd.DataFrame,
    *,
    horizon_days: float,
    catalog: Mapping[str, Touchpoint],
    mode: str = "contractual",
    lookback_days: float = 365,
    activity_roles: tuple[str, ...] = ("purchase", "renewal"),
) -> pd.DataFrame:
    """Churn in ``[cutoff, cutoff + horizon)`` (reads the future); see the module docstring."""
    events, cutoffs = check_events(events, catalog), check_cutoffs(cutoffs)
    if mode == "contractual":
        roles = ("purchase", "renewal", "cancellation")
        _check_roles(catalog, ("cancellation",), "contractual churn")
        contract = _RoleEvents(events, cutoffs, catalog, roles)
        last = contract.last_type_before_cutoff()
        active_codes = [i for i, t in enumerate(contract.types) if catalog[t].role in ("purchase", "renewal")]
        eligible = np.isin(last, active_codes)
        cancellations = [t for t in contract.types if catalog[t].role == "cancellation"]
        positive = contract.count(0, horizon_days, cancellations) > 0
    elif mode == "non_contractual":
        _check_roles(catalog, activity_roles, "non-contractual churn")
        activity = _RoleEvents(events, cutoffs, catalog, activity_roles)
        eligible = activity.count(-lookback_days, 0) > 0
        positive = activity.count(0, horizon_days) == 0
    else:
        raise ConfigError(f"churn mode must be 'contractual' or 'non_contractual', got {mode!r}")
    return _with_labels(cutoffs, eligible, positive)


def purchase_within(
    events: pd.DataFrame,
    cutoffs: pd.DataFrame,
    *,
    horizon_days: float,
    catalog: Mapping[str, Touchpoint],
    quiet_days: float = 90,
) -> pd.DataFrame:
    """A purchase in ``[cutoff, cutoff + horizon)`` (reads the future); see the module docstring."""
    events, cutoffs = check_events(events, catalog), check_cutoffs(cutoffs)
    _check_roles(catalog, ("purchase",), "purchase")
    purchases = _RoleEvents(events, cutoffs, catalog, ("purchase",))
    eligible = purchases.count(-quiet_days, 0) == 0 if quiet_days > 0 else np.ones(len(cutoffs), dtype=bool)
    positive = purchases.count(0, horizon_days) > 0
    return _with_labels(cutoffs, eligible, positive)


def label_cutoffs(
    events: pd.DataFrame,
    cutoffs: pd.DataFrame,
    task: str,
    *,
    labels: LabelSettings,
    catalog: Mapping[str, Touchpoint],
) -> pd.DataFrame:
    """Labels of ``task`` (``churn`` or ``purchase``) with the configured horizon and rules."""
    if task == "churn":
        c = labels.churn
        return churn_within(events, cutoffs, horizon_days=c.horizon_days, catalog=catalog, mode=c.mode,
                            lookback_days=c.lookback_days, activity_roles=c.activity_roles)
    if task == "purchase":
        p = labels.purchase
        return purchase_within(events, cutoffs, horizon_days=p.horizon_days, catalog=catalog, quiet_days=p.quiet_days)
    raise ConfigError(f"task must be one of {list(TASKS)}, got {task!r}")


def horizon_days(task: str, labels: LabelSettings) -> int:
    """The label horizon of ``task``."""
    if task not in TASKS:
        raise ConfigError(f"task must be one of {list(TASKS)}, got {task!r}")
    return labels.churn.horizon_days if task == "churn" else labels.purchase.horizon_days

