"""Learned points (配点): what one more touch of each type, happening now, is worth to a model.

**What they are.** The points are *predictive* values at the cutoff: how much the model's
log-odds move when a customer's history gains one more touch of a type, one second before the
cutoff. They are not causal effects: a touch that sales aims at already-warm accounts earns
points for the warmth it signals (``simulate.confounding`` builds such a world, and
``benchmarks/points_truth.py`` measures how far the points then stray from the causal weights).

**The what-if** (:func:`what_if`). For a sample of reference rows (customers at a cutoff), one
touch of each type is added one second before the cutoff. One extra event changes every
feature by a known amount, so the what-if starts from the rows' own feature vectors and changes
only what the event changes:

- counts, decayed sums (temperatures), temperature trends and values add the single event's own
  features, built by the same builders (:func:`single_touch_features`);
- recencies become one second; the tenure changes only for a customer without touches;
- the overdue ratio, the surge and the falling-frequency ratio are recomputed from the row's
  counts, read from the event index with the point-in-time rule;
- static attributes do not move.

Memory is O(reference rows x features) per type, whatever the length of the histories (a
rebuild with the extra event would copy every reference history once per type). A test checks
every changed feature against such a full rebuild.

**Own and shared** (:func:`touch_effects`). A touch of any type moves the unweighted features of
``all`` touches and of its initiator group by the same amount (``freq__all__30d``,
``recency__all__days``, ``temp__all__hl30d``, ``surge__*``, ``overdue__all__ratio``,
``freq__customer__*``): "a touch happened". Those are the *shared* features. The type's own
features (named after it) and the points-weighted temperatures (``temp_prior__all__*``,
``temp_prior_delta__all__*``, which move by the type's own prior points) are its *own* features. The
log-odds change splits exactly into ``own + shared = total`` by the two-player Shapley rule::

    own    = ((f(own) - f(none)) + (f(both) - f(shared))) / 2
    shared = ((f(shared) - f(none)) + (f(both) - f(own))) / 2

The points table shows the **own** part as the points (a newsletter sent to everybody no longer
inherits what the average touch is worth), with the shared part and the total next to it.

**Where they are defined** (:func:`what_if`). A type gets points only if one more touch keeps
the row in the task's population (a purchase takes a customer out of the purchase task's
population; a cancellation out of churn's) and inside the support of the training rows (some
training rows had such a touch in the last ``min(windows_days)`` days, and the row's counts stay
within the training range). Other types read "n/a" with the reason, and the scale ignores them.

**Scale.** ``points_k = sign * own_k * s`` with ``s = sum |prior_k| / sum |own_k|`` over the
defined types, so the defined points have the same total as the hand-set ones; ``sign`` is +1
for purchase and -1 for churn (a touch that lowers churn risk earns points).

**Intervals** come from refitting the whole model on customer samples (see
:func:`signals.modeling.training.learn_points`); their column names say so (``*_refit_low``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from signals.features.matrix import build_features, feature_columns
from signals.features.names import half_life_label, parse_feature_name, window_label
from signals.features.spec import FeatureSpec
from signals.features.window import (
    EventIndex,
    days_to_ns,
    end_of_known,
    index_events,
    index_rows,
    ragged_ranges,
)
from signals.labels import label_cutoffs
from signals.modeling.metrics import roc_auc
from signals.schemas import (
    CUSTOMER_ID,
    CUTOFF,
    NS_PER_DAY,
    NS_PER_SECOND,
    TOUCHPOINT,
    TS,
    VALUE,
    check_events,
)
from signals.settings import LabelSettings

__all__ = [
    "MIN_DEFINED_SHARE",
    "MIN_SUPPORT_ROWS",
    "NA_POPULATION",
    "NA_SUPPORT",
    "TASK_SIGN",
    "TouchEffects",
    "WhatIf",
    "choose_half_life",
    "learned_temperature",
    "points_table",
    "single_touch_features",
    "summarize_effects",
    "touch_effects",
    "what_if",
]

TASK_SIGN = {"purchase": 1.0, "churn": -1.0}
INJECT_BEFORE_NS = NS_PER_SECOND
#: Slots whose features move the same way whatever the type of the extra touch ("a touch happened").
SHARED_SLOTS = ("all", "customer", "company")
#: Families weighted by each type's points: they move by the type's own points, so they are its own.
WEIGHTED_FAMILIES = frozenset({"temp_prior", "temp_prior_delta", "temp_learned"})
#: A type is in the training support only if at least this many training rows had such a touch
#: in the shortest feature window before their cutoff.
MIN_SUPPORT_ROWS = 30
#: ... and only if the what-if is defined for at least this share of the reference rows.
MIN_DEFINED_SHARE = 0.5
NA_POPULATION = "n/a (outside the task's population)"
NA_SUPPORT = "n/a (outside the training data)"
DEFINED = "defined"

_ADDITIVE = frozenset({"freq", "temp", "temp_prior", "temp_learned", "temp_delta", "temp_prior_delta", "value", "value_net",
                       "freq_change"})
_RECOMPUTED = frozenset({"recency", "tenure", "overdue", "surge", "freq_ratio"})
#: A type's mean and last value per window: recomputed from its count in the window and the extra touch's value.
_VALUE_RECOMPUTED = frozenset({"value_mean", "value_last"})
_TOTAL_DAYS = 36_500.0  # the "total" window: every touch before the cutoff
_SECOND_DAYS = 1 / 86_400  # the last second before the cutoff (touches in one second are one moment)


# ---------------------------------------------------------------------------------------------
# the what-if design


def _value_types(spec: FeatureSpec) -> list[str]:
    from signals.features.value import summed_types

    return summed_types(spec.catalog)


def _typical_values(index: EventIndex, spec: FeatureSpec, before_ns: int) -> dict[str, float]:
    """The median positive value of each value-bearing type before ``before_ns`` (the amount an injected touch carries)."""
    out = {}
    for name in _value_types(spec):
        at = np.flatnonzero(index.type_code == spec.touchpoints.index(name))
        values = index.value[at[(index.ts[at] < before_ns) & (index.value[at] > 0)]]
        out[name] = float(np.median(values)) if len(values) else 0.0
    return out


def single_touch_features(spec: FeatureSpec, values: dict[str, float] | None = None) -> pd.DataFrame:
    """The features of a history holding just one touch, one second before the cutoff, per type.

    One row per type (indexed by type). For every additive feature (counts, decayed sums,
    trends, values) this is exactly what one more touch adds; built by the package's own builders.
    """
    values = values or {}
    families = tuple(f for f in spec.families if f != "static")
    bare = spec.model_copy(update={"families": families,
                                   "features": spec.features.model_copy(update={"static_columns": ()})})
    cutoff = pd.Timestamp("2000-01-01", tz="UTC")
    types = list(spec.touchpoints)
    events = pd.DataFrame({
        CUSTOMER_ID: [str(i) for i in range(len(types))],
        TS: pd.DatetimeIndex([cutoff - pd.Timedelta(INJECT_BEFORE_NS, unit="ns")] * len(types)),
        TOUCHPOINT: pd.Categorical(types, categories=types),
        VALUE: [float(values.get(t, 0.0)) for t in types],
    })
    cutoffs = pd.DataFrame({CUSTOMER_ID: events[CUSTOMER_ID], CUTOFF: pd.DatetimeIndex([cutoff] * len(types))})
    X = build_features(events, cutoffs, bare)
    return X[feature_columns(X)].set_axis(types, axis=0)


@dataclass(frozen=True)
class _RowHistory:
    """Per reference row, what the recomputed features need: counts and first / last touch times."""

    cutoff: np.ndarray
    n_before: np.ndarray
    first_ts: np.ndarray
    last_ts: np.ndarray
    counts: dict[tuple[str, float, float], np.ndarray]


def _row_history(index: EventIndex, rows, spec: FeatureSpec, windows: list[tuple[str, float, float]]) -> _RowHistory:
    """Counts of touches of a slot (``all``, ``customer``, ``company`` or a type) in
    ``[T - start, T - end)`` for each row, with the point-in-time rule."""
    start = index.block[rows.cust]
    now = end_of_known(index, rows.cust, rows.cutoff)
    n_before = now - start
    has = n_before > 0
    first = np.zeros(len(rows), dtype=np.int64)
    last = np.zeros(len(rows), dtype=np.int64)
    if index.n_events:
        first[has] = index.ts[start[has]]
        last[has] = index.ts[now[has] - 1]
    counts = {}
    prefixes: dict[str, np.ndarray] = {}
    for slot, lo_days, hi_days in windows:
        lo = end_of_known(index, rows.cust, rows.cutoff - days_to_ns(lo_days))
        hi = end_of_known(index, rows.cust, rows.cutoff - days_to_ns(hi_days))
        if slot == "all":
            counts[slot, lo_days, hi_days] = hi - lo
            continue
        if slot not in prefixes:
            members = [k for k, name in enumerate(spec.touchpoints)
                       if name == slot or spec.catalog[name].initiated_by == slot]
            prefix = np.zeros(index.n_events + 1, dtype=np.int32)  # as the feature builders' own prefix counts
            np.cumsum(np.isin(index.type_code, members), out=prefix[1:])
            prefixes[slot] = prefix
        counts[slot, lo_days, hi_days] = prefixes[slot][hi] - prefixes[slot][lo]
    return _RowHistory(rows.cutoff, n_before, first, last, counts)


def _slot_includes(slot: str, name: str, spec: FeatureSpec) -> bool:
    return slot == name or slot == "all" or (slot in ("customer", "company") and spec.catalog[name].initiated_by == slot)


def _population_roles(task: str, labels: LabelSettings) -> tuple[str, ...]:
    """The roles whose events decide a row's membership of the task's population."""
    if task == "purchase":
        return ("purchase",) if labels.purchase.quiet_days > 0 else ()
    if labels.churn.mode == "contractual":
        return ("purchase", "renewal", "cancellation")
    return tuple(labels.churn.activity_roles)


def _population_rule(task: str, labels: LabelSettings) -> str:
    if task == "purchase":
        return f"customers with no purchase in the {labels.purchase.quiet_days} days before the cutoff"
    if labels.churn.mode == "contractual":
        return "active subscribers (whose last contract event is a purchase or a renewal)"
    return f"customers active in the {labels.churn.lookback_days} days before the cutoff"


def _stays_eligible(index: EventIndex, rows, spec: FeatureSpec, task: str, labels: LabelSettings,
                    name: str) -> np.ndarray:
    """Whether each reference row stays in ``task``'s population after one more ``name`` touch."""
    roles = _population_roles(task, labels)
    if spec.catalog[name].role not in roles:
        return np.ones(len(rows), dtype=bool)
    member_codes = [k for k, t in enumerate(spec.touchpoints) if spec.catalog[t].role in roles]
    positions = np.flatnonzero(np.isin(index.type_code, member_codes))
    lo = np.searchsorted(positions, index.block[rows.cust])
    hi = np.searchsorted(positions, end_of_known(index, rows.cust, rows.cutoff))
    picked = positions[ragged_ranges(lo, hi - lo)]
    owner = np.repeat(np.arange(len(rows)), hi - lo)
    k = spec.touchpoints.index(name)
    ids = np.concatenate([owner, np.arange(len(rows))]).astype(str)
    events = pd.DataFrame({
        CUSTOMER_ID: ids,
        TS: pd.to_datetime(np.concatenate([index.ts[picked], rows.cutoff - INJECT_BEFORE_NS]), utc=True),
        TOUCHPOINT: pd.Categorical.from_codes(np.concatenate([index.type_code[picked], np.full(len(rows), k)]),
                                              categories=list(spec.touchpoints)),
        VALUE: 0.0,
    })
    cutoffs = pd.DataFrame({CUSTOMER_ID: np.arange(len(rows)).astype(str),
                            CUTOFF: pd.to_datetime(rows.cutoff, utc=True)})
    labelled = label_cutoffs(events, cutoffs, task, labels=labels, catalog=spec.catalog)
    return labelled["eligible"].to_numpy(dtype=bool)


@dataclass
class WhatIf:
    """The what-if design of a set of reference rows: their features, and for each type the
    features one more touch changes, split into the type's own and the shared ones.

    Attributes
    ----------
    X : pd.DataFrame
        The reference rows' features (as the model sees them).
    customers : np.ndarray
        The customer of each reference row (the resampling unit of intervals).
    types : tuple of str
    changes : dict
        ``changes[type]["own" | "shared"]`` maps a feature name to its values after one more touch.
    defined : np.ndarray
        ``(rows, types)``: the what-if keeps the row in the population and inside the training support.
    status, reason : dict of str
        Per type: ``"defined"`` or an ``"n/a (...)"`` status, and why.
    touches_per_month : dict of float
        Per type: the reference rows' mean touches per 30.44 days over the longest frequency window.
    values : dict of float
        The amount an injected touch of a value-bearing type carries (the type's median positive
        value before the latest reference cutoff).
    """

    X: pd.DataFrame
    customers: np.ndarray
    types: tuple[str, ...]
    changes: dict[str, dict[str, dict[str, np.ndarray]]]
    defined: np.ndarray
    status: dict[str, str]
    reason: dict[str, str]
    touches_per_month: dict[str, float]
    values: dict[str, float]
    _stacked: tuple[pd.DataFrame, dict] | None = field(default=None, repr=False)

    def variant(self, name: str, groups: tuple[str, ...]) -> pd.DataFrame:
        """The reference rows with the ``groups`` (``"own"``, ``"shared"``) of one more ``name`` touch applied."""
        out = self.X.copy()
        changed = {column: values for group in groups for column, values in self.changes[name][group].items()}
        if changed:
            out[list(changed)] = pd.DataFrame(changed, index=out.index)
        return out

    def stacked(self) -> tuple[pd.DataFrame, dict[tuple[str, tuple[str, ...]], int]]:
        """Every distinct variant stacked in one frame (built once, scored by each model in one call).

        Returns the frame (block ``b`` is rows ``b * len(X) .. (b + 1) * len(X)``; block 0 is the
        rows as they are) and the block of each ``(type, groups)``. Variants that change the same
        features the same way (the shared part of types with one initiator) share a block.
        """
        if self._stacked is None:
            blocks: dict[tuple[str, tuple[str, ...]], int] = {}
            frames = [self.X]
            seen: list[tuple[dict[str, np.ndarray], int]] = []
            for name in self.types:
                for groups in (("own",), ("shared",), ("own", "shared")):
                    changed = {c: v for g in groups for c, v in self.changes[name][g].items()}
                    if not changed:
                        blocks[name, groups] = 0
                        continue
                    match = next((b for other, b in seen if other.keys() == changed.keys()
                                  and all(np.array_equal(other[c], changed[c], equal_nan=True) for c in changed)), None)
                    if match is None:
                        match = len(frames)
                        frames.append(self.variant(name, groups))
                        seen.append((changed, match))
                    blocks[name, groups] = match
            self._stacked = (pd.concat(frames, ignore_index=True), blocks)
        return self._stacked

    @property
    def defined_types(self) -> list[str]:
        return [t for t in self.types if self.status[t] == DEFINED]


def what_if(
    events: pd.DataFrame | None,
    reference: pd.DataFrame,
    spec: FeatureSpec,
    *,
    index: EventIndex | None = None,
    X: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    task: str | None = None,
    labels: LabelSettings | None = None,
    training: pd.DataFrame | None = None,
) -> WhatIf:
    """What one more touch of each type, one second before the cutoff, changes in ``reference``'s features.

    Parameters
    ----------
    events : canonical events (may be None when ``index`` is given)
    reference : pd.DataFrame
        ``(customer_id, cutoff)`` rows.
    spec : FeatureSpec
        The model's feature spec.
    index : EventIndex, optional
        ``index_events(events, spec.touchpoints)``, to reuse one.
    X : pd.DataFrame, optional
        ``reference``'s features, in its row order (built here when omitted; pass the training
        set's rows to skip the build).
    customers : pd.DataFrame, optional
        For static attributes, when ``X`` is built here.
    task, labels : optional
        With both, a type is undefined on rows that one more touch takes out of the task's
        population (a purchase for the purchase task, a cancellation for churn).
    training : pd.DataFrame, optional
        The training rows' features: with it, a type is undefined outside their support (see
        the module docstring).

    Returns
    -------
    WhatIf
    """
    if index is None:
        index = index_events(check_events(events, spec.touchpoints), spec.touchpoints)
    reference = reference[[CUSTOMER_ID, CUTOFF]].reset_index(drop=True)
    if X is None:
        X = build_features(None, reference, spec, customers=customers, index=index)
    X = X[feature_columns(X)].reset_index(drop=True)
    index, rows = index_rows(index, reference)
    types = tuple(spec.touchpoints)
    values = _typical_values(index, spec, int(rows.cutoff.max()) if len(rows) else 0)
    unit = single_touch_features(spec, values)
    fs = spec.features
    windows = []
    for column in X.columns:
        family, slot, window = parse_feature_name(column)
        if family == "surge":
            windows += [(slot, fs.surge_recent_days, 0.0), (slot, fs.surge_baseline_days, fs.surge_recent_days)]
        elif family == "freq_ratio":
            windows += [(slot, fs.falling_window_days, 0.0), (slot, 2.0 * fs.falling_window_days, fs.falling_window_days)]
        elif family in _VALUE_RECOMPUTED:
            windows += [(slot, _window_days(window), 0.0), (slot, _SECOND_DAYS, 0.0)]
    history = _row_history(index, rows, spec, sorted(set(windows)))
    inject = rows.cutoff - INJECT_BEFORE_NS
    changes: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for name in types:
        own: dict[str, np.ndarray] = {}
        shared: dict[str, np.ndarray] = {}
        for column in X.columns:
            family, slot, window = parse_feature_name(column)
            if family == "static" or (slot in types and slot != name):
                continue
            if slot not in types and slot not in SHARED_SLOTS:
                raise ValueError(f"the what-if does not know the slot of feature {column!r}")
            group = shared if slot in SHARED_SLOTS and family not in WEIGHTED_FAMILIES else own
            old = X[column].to_numpy()
            if family in _ADDITIVE:
                step = unit.at[name, column]
                if step != 0:
                    group[column] = old + step
            elif family in _RECOMPUTED:
                if not _slot_includes(slot, name, spec):
                    continue
                group[column] = _recomputed(family, slot, old, history, inject, fs)
            elif family in _VALUE_RECOMPUTED:
                value = values.get(name, 0.0)
                if family == "value_last":  # the extra touch is the latest; in a second with others, the largest
                    same_second = history.counts[slot, _SECOND_DAYS, 0.0] > 0
                    group[column] = np.where(same_second, np.fmax(old, value), value)
                    continue
                n = history.counts[slot, _window_days(window), 0.0]
                sums = f"value__{slot}__{window}"
                total = X[sums].to_numpy() if sums in X.columns else np.where(n > 0, old * n, 0.0)
                group[column] = (total + value) / (n + 1)
            else:
                raise ValueError(f"the what-if does not know how one more touch changes {column!r} "
                                 f"(family {family!r}); add its rule to signals.modeling.points")
        changes[name] = {"own": own, "shared": shared}

    defined = np.ones((len(rows), len(types)), dtype=bool)
    status = dict.fromkeys(types, DEFINED)
    reason = dict.fromkeys(types, "")
    if task is not None and labels is not None:
        rule = _population_rule(task, labels)
        for j, name in enumerate(types):
            stays = _stays_eligible(index, rows, spec, task, labels, name)
            defined[:, j] &= stays
            if stays.mean() < MIN_DEFINED_SHARE:
                status[name] = NA_POPULATION
                reason[name] = (f"one more {spec.catalog[name].noun(name)} just before the cutoff takes "
                                f"{1 - stays.mean():.0%} of the rows out of the {task} task's population ({rule})")
    if training is not None:
        _support(X, training, spec, defined, status, reason)
    for j, name in enumerate(types):
        if status[name] == DEFINED and defined[:, j].mean() < MIN_DEFINED_SHARE:
            status[name] = NA_SUPPORT
            reason[name] = (f"after one more {spec.catalog[name].noun(name)} only {defined[:, j].mean():.0%} of the "
                            "reference rows stay within the counts seen in training")
    longest = max(fs.windows_days)
    per_month = {}
    for name in types:
        column = f"freq__{name}__{window_label(longest)}"
        per_month[name] = float(X[column].mean() * 30.4375 / longest) if column in X.columns and len(X) else float("nan")
    return WhatIf(X, index.customers[rows.cust].to_numpy(), types, changes, defined, status, reason, per_month,
                  values)


def _window_days(window: str) -> float:
    """``"30d"`` -> 30.0; ``"total"`` -> a window reaching before any event."""
    return _TOTAL_DAYS if window == "total" else float(window[:-1])


def _recomputed(family: str, slot: str, old: np.ndarray, h: _RowHistory, inject: np.ndarray, fs) -> np.ndarray:
    """The value of a non-additive feature after one more touch at ``inject`` (same formulas as the builders)."""
    day = float(NS_PER_DAY)
    if family == "recency":
        new = (h.cutoff - inject) / day
        return np.where(np.isnan(old), new, np.minimum(old, new))
    if family == "tenure":
        return np.where(h.n_before > 0, old, (h.cutoff - inject) / day)
    if family == "overdue":
        n = h.n_before + 1
        first = np.where(h.n_before > 0, h.first_ts, inject)
        last = np.where(h.n_before > 0, np.maximum(h.last_ts, inject), inject)
        span_ns = (last - first).astype(np.float64)
        out = np.full(len(old), np.nan)
        ok = (n >= 2) & (span_ns > 0)
        recency = (h.cutoff - last) / day
        usual_gap_days = span_ns[ok] / (n[ok] - 1) / day
        out[ok] = recency[ok] / usual_gap_days
        return out
    if family == "surge":
        recent, baseline = fs.surge_recent_days, fs.surge_baseline_days
        n_recent = h.counts[slot, recent, 0.0] + 1
        n_earlier = h.counts[slot, baseline, recent]
        earlier_days = baseline - recent
        return (np.log((n_recent + recent / baseline) / recent)
                - np.log((n_earlier + earlier_days / baseline) / earlier_days))
    if family == "freq_ratio":
        f = fs.falling_window_days
        last = h.counts[slot, f, 0.0] + 1
        before = h.counts[slot, 2.0 * f, f]
        return (last + 1.0) / (before + 1.0)
    raise AssertionError(family)  # pragma: no cover


def _support(X: pd.DataFrame, training: pd.DataFrame, spec: FeatureSpec, defined: np.ndarray,
             status: dict[str, str], reason: dict[str, str]) -> None:
    """Mark types / rows outside the training support (see the module docstring)."""
    shortest = min(spec.features.windows_days)
    for j, name in enumerate(spec.touchpoints):
        recency = f"recency__{name}__days"
        count = f"freq__{name}__{window_label(shortest)}"
        noun = spec.catalog[name].noun(name)
        if recency in training.columns:
            recent = int((training[recency].to_numpy() <= shortest).sum())
        elif count in training.columns:
            recent = int((training[count].to_numpy() > 0).sum())
        else:
            continue
        if recent < MIN_SUPPORT_ROWS and status[name] == DEFINED:
            status[name] = NA_SUPPORT
            reason[name] = (f"only {recent} training row(s) had a {noun} in the {shortest} days before the cutoff "
                            f"(at least {MIN_SUPPORT_ROWS} needed): the model never learned what a recent one means")
        for w in spec.features.windows_days:
            column = f"freq__{name}__{window_label(w)}"
            if column in X.columns and column in training.columns:
                defined[:, j] &= X[column].to_numpy() + 1 <= training[column].to_numpy().max(initial=0)


# ---------------------------------------------------------------------------------------------
# effects, their summary and the table


@dataclass
class TouchEffects:
    """Per reference row and type, the log-odds change of one more touch: ``own + shared = total``."""

    own: pd.DataFrame
    shared: pd.DataFrame
    total: pd.DataFrame


def touch_effects(model, design: WhatIf) -> TouchEffects:
    """The model's log-odds change for one more touch of each type, split into own and shared parts.

    ``model`` needs ``decision_function(X)`` (log-odds). Four evaluations per type (none, own,
    shared, both) give the two-player Shapley split of the module docstring.
    """
    frame, blocks = design.stacked()
    n = len(design.X)
    scores = np.asarray(model.decision_function(frame), dtype=np.float64).reshape(-1, n)
    base = scores[0]
    own, shared, total = {}, {}, {}
    for name in design.types:
        f_own, f_shared, f_both = (scores[blocks[name, groups]] for groups in (("own",), ("shared",), ("own", "shared")))
        own[name] = 0.5 * ((f_own - base) + (f_both - f_shared))
        shared[name] = 0.5 * ((f_shared - base) + (f_both - f_own))
        total[name] = f_both - base
    frame = lambda d: pd.DataFrame(d, index=design.X.index)  # noqa: E731
    return TouchEffects(frame(own), frame(shared), frame(total))


def summarize_effects(effects: TouchEffects, design: WhatIf, weights: np.ndarray | None = None) -> pd.DataFrame:
    """Mean own / shared / total log-odds effect of each type over the rows where it is defined.

    ``weights`` weigh the reference rows (a customer sample); types that are not defined get NaN.
    Returns a frame indexed by type with ``own_logodds``, ``shared_logodds``, ``total_logodds``.
    """
    w = np.ones(len(design.X)) if weights is None else np.asarray(weights, dtype=np.float64)
    out = {}
    for part in ("own", "shared", "total"):
        matrix = getattr(effects, part)
        values = []
        for j, name in enumerate(design.types):
            rw = w * design.defined[:, j]
            ok = design.status[name] == DEFINED and rw.sum() > 0
            values.append(float(np.sum(rw * matrix[name].to_numpy()) / rw.sum()) if ok else float("nan"))
        out[f"{part}_logodds"] = values
    return pd.DataFrame(out, index=list(design.types))


def _scale(summary: pd.DataFrame, spec: FeatureSpec, defined: list[str]) -> float:
    own = summary.loc[defined, "own_logodds"].abs().sum() if defined else 0.0
    prior = sum(abs(spec.catalog[t].prior_points) for t in defined)
    return float(prior / own) if own > 0 else 0.0


def _with_points(summary: pd.DataFrame, spec: FeatureSpec, task: str, defined: list[str]) -> pd.DataFrame:
    scale = _scale(summary, spec, defined)
    out = summary.copy()
    for part in ("own", "shared", "total"):
        out[f"{part}_points"] = TASK_SIGN[task] * out[f"{part}_logodds"] * scale
    out["scale"] = scale
    return out


def points_table(
    summary: pd.DataFrame,
    design: WhatIf,
    spec: FeatureSpec,
    *,
    task: str,
    draws: list[pd.DataFrame] | None = None,
    interval: str = "none",
    level: float = 0.95,
) -> pd.DataFrame:
    """The learned points table (配点表) next to the priors.

    Parameters
    ----------
    summary : the full fit's :func:`summarize_effects`
    design : the :class:`WhatIf` it was computed on (status, reasons, monthly rates)
    draws : the same summary for each refit of the model (on a customer sample), or None
    interval : how the draws were made (written in the ``interval`` column)

    Returns
    -------
    pd.DataFrame
        One row per type: ``touchpoint, channel, initiated_by, role, prior_points, status, reason,
        defined_share``; ``learned_points`` (the points the learned temperature and the spec use:
        ``own_points``, 0 where the type is n/a); ``own_points`` (the type's own effect, see the module
        docstring) with ``own_points_refit_low`` / ``_high``; ``shared_points`` and
        ``total_points`` (with theirs); ``touches_per_month`` and ``own_points_per_month``;
        ``own_logodds``, ``shared_logodds``, ``total_logodds`` (the raw log-odds effects, comparable
        between retrains whatever the scale) with their refit intervals; ``scale``, ``refits``,
        ``interval``. Intervals are ``estimate -/+ t * sd`` of the refits (Student's t with
        ``refits - 1`` degrees of freedom); NaN without refits. Undefined types carry NaN.
    """
    defined = design.defined_types
    estimate = _with_points(summary, spec, task, defined)
    types = list(design.types)
    table = pd.DataFrame({
        "touchpoint": types,
        "channel": [spec.catalog[t].channel for t in types],
        "initiated_by": [spec.catalog[t].initiated_by for t in types],
        "role": [spec.catalog[t].role for t in types],
        "prior_points": [float(spec.catalog[t].prior_points) for t in types],
        "status": [design.status[t] for t in types],
        "reason": [design.reason[t] for t in types],
        "defined_share": design.defined.mean(axis=0) if len(design.X) else np.zeros(len(types)),
    })
    quantities = [f"{p}_{u}" for u in ("points", "logodds") for p in ("own", "shared", "total")]
    spread = {q: np.full(len(types), np.nan) for q in quantities}
    refits = 0
    if draws:
        stacked = {q: np.vstack([_with_points(d, spec, task, defined)[q].to_numpy() for d in draws]) for q in quantities}
        refits = len(draws)
        factor = student_t.ppf(0.5 + level / 2.0, refits - 1)
        for q in quantities:
            spread[q] = factor * np.std(stacked[q], axis=0, ddof=1)
    for q in quantities:
        value = estimate.loc[types, q].to_numpy(dtype=np.float64)
        table[q] = value
        table[f"{q}_refit_low"] = value - spread[q]
        table[f"{q}_refit_high"] = value + spread[q]
    table["learned_points"] = np.where(table["status"] == DEFINED, np.nan_to_num(table["own_points"]), 0.0)
    table["touches_per_month"] = [design.touches_per_month[t] for t in types]
    table["own_points_per_month"] = table["own_points"] * table["touches_per_month"]
    table["scale"] = float(estimate["scale"].iloc[0]) if len(estimate) else 0.0
    table["refits"] = refits
    table["interval"] = interval if refits else "none"
    order = ["touchpoint", "channel", "initiated_by", "role", "prior_points", "status", "reason", "defined_share",
             "learned_points", "own_points", "own_points_refit_low", "own_points_refit_high",
             "shared_points", "shared_points_refit_low", "shared_points_refit_high",
             "total_points", "total_points_refit_low", "total_points_refit_high",
             "touches_per_month", "own_points_per_month",
             "own_logodds", "own_logodds_refit_low", "own_logodds_refit_high",
             "shared_logodds", "shared_logodds_refit_low", "shared_logodds_refit_high",
             "total_logodds", "total_logodds_refit_low", "total_logodds_refit_high",
             "scale", "refits", "interval"]
    return table[order]


# ---------------------------------------------------------------------------------------------
# the learned temperature


def learned_temperature(temps: pd.DataFrame, points: dict[str, float], half_life_days: float) -> np.ndarray:
    """``sum_k points_k * temp__k__hl<h>d`` from a frame that has the per-type temperatures."""
    label = half_life_label(half_life_days)
    total = np.zeros(len(temps))
    for name, value in points.items():
        total += value * temps[f"temp__{name}__{label}"].to_numpy()
    return total


def choose_half_life(
    events: pd.DataFrame | None,
    rows: pd.DataFrame,
    y,
    points: dict[str, float],
    spec: FeatureSpec,
    *,
    task: str,
    grid: tuple[float, ...],
    index: EventIndex | None = None,
) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """The half-life of the grid whose learned temperature ranks ``rows`` best (ROC AUC on ``y``).

    For churn the risk score is minus the temperature. Returns the best half-life, the table of
    (half_life_days, roc_auc) for every candidate, and the per-type temperatures of ``rows`` at
    every candidate (to score them without rebuilding). ``index`` reuses a prebuilt event index.
    """
    temps = build_features(events, rows[[CUSTOMER_ID, CUTOFF]], spec.temperature_only(tuple(grid)), index=index)
    sign = TASK_SIGN[task]
    table = pd.DataFrame({
        "half_life_days": list(grid),
        "roc_auc": [roc_auc(y, sign * learned_temperature(temps, points, h)) for h in grid],
    })
    best = float(table.loc[table["roc_auc"].idxmax(), "half_life_days"])
    return best, table, temps
