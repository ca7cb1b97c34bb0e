"""What every view starts from: the events known at an as-of instant, indexed once.

:class:`History` validates the events, keeps only those with ``ts < as_of`` (a report as of a
date uses nothing that happened at or after it) and indexes them with the package's
point-in-time helpers (:mod:`signals.features.window`). Every customer seen before ``as_of``
(first event, or ``first_seen`` of the customers table) gets a code, shared by the few subsets of
types the views search (contract events, activity), so rows map onto all of them.

The views count events in windows of cutoff rows with :meth:`History.count`, the same rule as
the features: a window of ``w`` days at ``T`` is ``[T - w, T)``. A window edge is searched once
per rows and offset (:meth:`History.positions`); each group of types then costs one running count
(:meth:`History.prefix`), shared by every rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

import numpy as np
import pandas as pd

from signals.cutoffs import as_of_instant, training_cutoffs
from signals.errors import DataError
from signals.features.window import EventIndex, days_to_ns, end_of_known, index_events, index_rows
from signals.labels import label_cutoffs
from signals.schemas import (
    CUSTOMER_ID,
    CUTOFF,
    NS_PER_DAY,
    TOUCHPOINT,
    TS,
    VALUE,
    check_cutoffs,
    check_events,
    to_utc,
)
from signals.settings import Settings

__all__ = ["History", "Rows", "evidence_split"]


class Rows:
    """Cutoff rows as arrays: customer code (in the history's numbering) and cutoff (UTC ns)."""

    def __init__(self, cust: np.ndarray, cutoff: np.ndarray) -> None:
        self.cust = np.asarray(cust, dtype=np.int64)
        self.cutoff = np.asarray(cutoff, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.cust)

    def shifted(self, days: float) -> Rows:
        """The same customers, ``days`` later."""
        return Rows(self.cust, self.cutoff + days_to_ns(days))


def _subset(index: EventIndex, keep: np.ndarray) -> EventIndex:
    """The events of ``index`` where ``keep`` is true (order, customers and search key kept)."""
    cust = index.cust[keep]
    block = np.searchsorted(cust, np.arange(len(index.customers) + 1), side="left")
    return EventIndex(index.customers, index.touchpoints, cust, index.ts[keep], index.type_code[keep],
                      index.value[keep], index.key[keep], block, index.origin_s, index.span)


class History:
    """Canonical events known at ``as_of``, indexed for the views.

    Parameters
    ----------
    events : pd.DataFrame
        Canonical events (``signals.schemas.check_events``); events at or after ``as_of`` are
        dropped.
    as_of : date, str or timestamp
        A date means its first moment in ``settings.timezone`` (:func:`signals.cutoffs.as_of_instant`).
    settings : Settings
    customers : pd.DataFrame, optional
        ``customer_id`` and ``first_seen``: customers known before their first event (rows without
        a ``first_seen`` are ignored; an id listed twice counts from its earliest date).
    validate : bool
        Check the events contract first (skip only for events already validated).

    Raises
    ------
    DataError
        No event happened before ``as_of``.
    """

    def __init__(self, events: pd.DataFrame, as_of, settings: Settings, *, customers: pd.DataFrame | None = None,
                 validate: bool = True) -> None:
        self.settings = settings
        self.as_of = as_of_instant(as_of, settings.timezone)
        types = tuple(settings.catalog)
        if validate:
            events = check_events(events, types)
        full = index_events(events, types)
        known = full.ts < self.as_of.value
        index = full if known.all() else _subset(full, known)
        if index.n_events == 0:
            raise DataError(f"no event happened before the as-of instant {self.as_of:%Y-%m-%d %H:%M:%S} UTC "
                            f"(the events start at {pd.Timestamp(full.ts.min(), tz='UTC') if full.n_events else 'never'})")
        self.customers = customers
        has = index.block[1:] > index.block[:-1]
        seen = pd.Series(np.where(has, index.ts[np.minimum(index.block[:-1], index.n_events - 1)], np.iinfo(np.int64).max),
                         index=index.customers)
        if customers is not None and "first_seen" in customers.columns:
            stamps = to_utc(customers["first_seen"], what="customers.first_seen")
            table = pd.Series(stamps.array.asi8, index=customers[CUSTOMER_ID].astype(str).to_numpy())
            table = table[stamps.notna().to_numpy() & (table.to_numpy() < self.as_of.value)]
            table = table.groupby(level=0).min()
            extra = table.index.difference(index.customers)
            if len(extra):
                index = index.with_customers(index.customers.append(pd.Index(extra)))
                seen = pd.concat([seen, pd.Series(np.iinfo(np.int64).max, index=extra)])
            where = table.index.get_indexer(seen.index)
            listed = np.where(where >= 0, table.to_numpy()[np.maximum(where, 0)], np.iinfo(np.int64).max)
            seen = pd.Series(np.minimum(seen.to_numpy(), listed), index=seen.index)
        self.index = index
        #: what the views could not compute, in plain words (shown by the report)
        self.notes: list[str] = []
        #: first moment each customer was seen (UTC ns; int64 max = not seen before ``as_of``)
        self.first_seen_ns = seen.to_numpy(dtype=np.int64)

    # ---- basic facts -------------------------------------------------------------------------
    @property
    def catalog(self):
        return self.settings.catalog

    @property
    def customer_ids(self) -> pd.Index:
        return self.index.customers

    @property
    def known(self) -> np.ndarray:
        """Codes of the customers seen before ``as_of``."""
        return np.flatnonzero(self.first_seen_ns < self.as_of.value)

    def type_codes(self, names: Iterable[str]) -> np.ndarray:
        """Codes of the catalog types in ``names`` (names outside the catalog are skipped)."""
        wanted = set(names)
        return np.array([k for k, name in enumerate(self.index.touchpoints) if name in wanted], dtype=np.int16)

    def role_types(self, *roles: str) -> list[str]:
        return [name for name, tp in self.catalog.items() if tp.role in roles]

    # ---- type subsets, built once --------------------------------------------------------------
    def is_type(self, names: Iterable[str]) -> np.ndarray:
        """Per event of the index: is its type in ``names``? (a lookup table, not a set search)."""
        table = np.zeros(len(self.index.touchpoints), dtype=bool)
        table[self.type_codes(names)] = True
        return table[self.index.type_code]

    def events_of(self, names: Iterable[str]) -> EventIndex:
        """The events of the types ``names`` (one shared customer numbering), cached."""
        key = tuple(sorted(set(names) & set(self.index.touchpoints)))
        cache = self.__dict__.setdefault("_subsets", {})
        if key not in cache:
            cache[key] = (self.index if len(key) == len(self.index.touchpoints)
                          else _subset(self.index, self.is_type(key)))
        return cache[key]

    @cached_property
    def contact_types(self) -> tuple[str, ...]:
        """Every type except ``views.ignore_touchpoints`` (mass mailings are not contacts)."""
        ignore = set(self.settings.views.ignore_touchpoints)
        return tuple(t for t in self.index.touchpoints if t not in ignore)

    def role_frame(self, *roles: str) -> pd.DataFrame:
        """The events of ``roles`` as a canonical table (for :mod:`signals.labels`)."""
        sub = self.events_of(self.role_types(*roles))
        return pd.DataFrame({
            CUSTOMER_ID: pd.Categorical.from_codes(sub.cust, categories=self.index.customers),
            TS: pd.DatetimeIndex(sub.ts).tz_localize("UTC"),
            TOUCHPOINT: pd.Categorical.from_codes(sub.type_code, categories=list(self.index.touchpoints)),
            VALUE: sub.value,
        })

    # ---- rows --------------------------------------------------------------------------------
    def rows(self, cutoffs: pd.DataFrame) -> Rows:
        """Map ``(customer_id, cutoff)`` rows onto the history's customer codes.

        Every cutoff must lie at or before ``as_of`` and every customer must be known.
        """
        cutoffs = check_cutoffs(cutoffs)
        _, raw = index_rows(self.index, cutoffs)
        if (raw.cust >= len(self.index.customers)).any():
            unknown = cutoffs.loc[raw.cust >= len(self.index.customers), CUSTOMER_ID].astype(str).unique()[:5]
            raise DataError(f"customer(s) {list(unknown)} have no event before {self.as_of:%Y-%m-%d} UTC")
        if (raw.cutoff > self.as_of.value).any():
            raise DataError(f"cutoffs after the as-of instant {self.as_of} would need events the history does not hold")
        return Rows(raw.cust, raw.cutoff)

    def rows_at(self, instant_ns: int | None = None) -> Rows:
        """One row per customer seen before ``instant`` (default: ``as_of``), at that instant."""
        at = self.as_of.value if instant_ns is None else int(instant_ns)
        cust = np.flatnonzero(self.first_seen_ns < at)
        return Rows(cust, np.full(len(cust), at, dtype=np.int64))

    def frame(self, rows: Rows, *, categorical: bool = False) -> pd.DataFrame:
        """``customer_id`` (text, or categorical codes for internal use) and ``cutoff`` of ``rows``."""
        ids = (pd.Categorical.from_codes(rows.cust, categories=self.index.customers) if categorical
               else np.asarray(self.index.customers[rows.cust].astype(str)))
        return pd.DataFrame({CUSTOMER_ID: ids, CUTOFF: pd.DatetimeIndex(rows.cutoff).tz_localize("UTC")})

    def outcomes(self, rows: Rows) -> dict[str, np.ndarray]:
        """Later purchase and churn of each row, by the configured label rules (:mod:`signals.labels`).

        ``{"purchase": ..., "churn": ...}``: 1.0 / 0.0, NaN where the row is not in the task's
        population. Every row's outcome window must close by ``as_of`` (the grid of
        :func:`evidence_split` guarantees it).
        """
        horizon = max(self.settings.labels.purchase.horizon_days, self.settings.labels.churn.horizon_days)
        if len(rows) and rows.cutoff.max() + days_to_ns(horizon) > self.as_of.value:
            raise DataError("outcomes asked for cutoffs whose label window is not closed at the as-of instant")
        cutoffs = self.frame(rows, categorical=True)
        churn = self.settings.labels.churn
        roles = ("purchase", "renewal", "cancellation") if churn.mode == "contractual" else churn.activity_roles
        out = {}
        for task, task_roles in (("purchase", ("purchase",)), ("churn", roles)):
            try:
                labelled = label_cutoffs(self.role_frame(*task_roles), cutoffs, task, labels=self.settings.labels,
                                         catalog=self.catalog)
            except ValueError as exc:  # the catalog cannot express the task (no cancellation type, ...)
                self.notes.append(f"{task} outcomes unavailable: {exc}")
                out[task] = np.full(len(rows), np.nan)
                continue
            out[task] = labelled["label"].to_numpy(dtype=np.float64)
        return out

    # ---- counting ------------------------------------------------------------------------------
    def positions(self, rows: Rows, days_before: float = 0) -> np.ndarray:
        """``end_of_known`` in the full index at each row's ``cutoff - days_before`` (cached on ``rows``)."""
        cache = rows.__dict__.setdefault("_positions", {})
        key = (self, days_to_ns(days_before))   # the history itself: an id could be reused
        if key not in cache:
            cache[key] = end_of_known(self.index, rows.cust, rows.cutoff - key[1])
        return cache[key]

    def prefix(self, names: Iterable[str]) -> np.ndarray:
        """Running count of the events of ``names`` in index order (``prefix[i]``: before position ``i``), cached."""
        key = tuple(sorted(set(names) & set(self.index.touchpoints)))
        cache = self.__dict__.setdefault("_prefixes", {})
        if key not in cache:
            out = np.zeros(self.index.n_events + 1, dtype=np.int32)
            np.cumsum(self.is_type(key), out=out[1:])
            cache[key] = out
        return cache[key]

    def count(self, names: Iterable[str] | None, rows: Rows, days: float, *, end_days: float = 0) -> np.ndarray:
        """Events of the types ``names`` (None: every type) in ``[cutoff - days, cutoff - end_days)`` per row.

        The window positions are searched once per rows and offset and shared by every type group.
        """
        hi, lo = self.positions(rows, end_days), self.positions(rows, days)
        if names is None:
            return hi - lo
        prefix = self.prefix(names)
        return (prefix[hi] - prefix[lo]).astype(np.int64)

    def tenure_days(self, rows: Rows) -> np.ndarray:
        """Days from each row's customer's first-seen moment to its cutoff."""
        return (rows.cutoff - self.first_seen_ns[rows.cust]) / NS_PER_DAY

    def active(self, rows: Rows, *, mode: str | None = None) -> np.ndarray:
        """Is each row's customer active at its cutoff, by the churn label's rule (``labels.churn``)?

        Contractual: its last purchase / renewal / cancellation before the cutoff is a purchase or
        renewal (an active subscriber). Non-contractual: an activity event (``activity_roles``) in
        the lookback (``views.retention.lookback_days``, default ``labels.churn.lookback_days``).
        """
        churn = self.settings.labels.churn
        mode = mode or churn.mode
        if mode == "contractual":   # searched in the few contract events, not in every touch
            contract = self.events_of(self.role_types("purchase", "renewal", "cancellation"))
            if contract.n_events == 0:
                return np.zeros(len(rows), dtype=bool)
            now = end_of_known(contract, rows.cust, rows.cutoff)
            has = now > contract.block[rows.cust]
            paying = np.zeros(len(self.index.touchpoints) + 1, dtype=bool)
            paying[self.type_codes(self.role_types("purchase", "renewal"))] = True
            return paying[np.where(has, contract.type_code[np.maximum(now - 1, 0)], -1)]
        lookback = self.settings.views.retention.lookback_days or churn.lookback_days
        activity = self.events_of(self.role_types(*churn.activity_roles))
        return (end_of_known(activity, rows.cust, rows.cutoff)
                - end_of_known(activity, rows.cust, rows.cutoff - days_to_ns(lookback))) > 0


def evidence_split(history: History) -> tuple[Rows, Rows]:
    """The cutoff rows where the views are checked against outcomes: ``(fit, evidence)``.

    The grid is the training grid of :func:`signals.cutoffs.training_cutoffs`:
    ``cutoffs.n_training`` calendar cutoffs (``cutoffs.frequency``) whose longest outcome window
    (purchase and churn horizons, journey conversion) closes by ``as_of``, each with every customer
    seen ``cutoffs.min_history_days`` before it. The latest ``views.evidence_cutoffs`` are the
    **evidence** (out of time); the earlier ones whose outcome windows close before the first
    evidence cutoff (an embargo) are where the segment thresholds are **fit** (possibly none).

    Raises
    ------
    DataError
        The history is too short for one grid cutoff.
    """
    s = history.settings
    horizon = evidence_horizon_days(s)
    first = int(history.index.ts.min())
    # the grid's instants depend only on the first event and the data end: ask for them with one event
    probe = pd.DataFrame({CUSTOMER_ID: ["first"], TS: pd.DatetimeIndex([first]).tz_localize("UTC"),
                          TOUCHPOINT: [history.index.touchpoints[0]]})
    try:
        grid = training_cutoffs(probe, horizon_days=horizon, n_cutoffs=s.cutoffs.n_training,
                                frequency=s.cutoffs.frequency, timezone=s.timezone, data_end=history.as_of)
    except ValueError as exc:
        raise DataError(f"views: {exc}") from None
    instants = np.sort(pd.DatetimeIndex(grid[CUTOFF].unique()).as_unit("ns").asi8)
    n_evidence = min(s.views.evidence_cutoffs, len(instants))
    evidence_at = instants[-n_evidence:]
    fit_at = [t for t in instants[:-n_evidence] if t + days_to_ns(horizon) <= evidence_at[0]]
    return _grid_rows(history, fit_at), _grid_rows(history, evidence_at)


def _grid_rows(history: History, instants) -> Rows:
    """Every customer seen ``cutoffs.min_history_days`` before each instant, by instant then customer."""
    seen = history.first_seen_ns
    never = seen == np.iinfo(np.int64).max
    entry = np.where(never, seen, seen + days_to_ns(history.settings.cutoffs.min_history_days) * ~never)
    parts = [np.flatnonzero(entry < t) for t in instants]
    cust = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    cutoff = np.repeat(np.asarray(instants, dtype=np.int64), [len(p) for p in parts])
    return Rows(cust, cutoff)


def evidence_horizon_days(settings: Settings) -> int:
    """The longest outcome window a view checks: purchase and churn horizons, journey conversion."""
    return max(settings.labels.purchase.horizon_days, settings.labels.churn.horizon_days,
               settings.views.journey.conversion_days)
