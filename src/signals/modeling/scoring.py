"""Batch scoring, the pure parts: temperatures, bands, alarms and their thresholds.

What a scoring run adds to a model's calibrated probability, per customer and task:

**Temperature** (seed 002's 顧客接点温度) with the task's learned points ``p_k`` and its learned
half-life ``h``: ``sum_k p_k * D_k(T; h)`` with ``D_k`` the decayed count of type ``k`` before the
as-of instant ``T``; the same with the catalog's prior points; and its change over 14 and 30 days
(temperature at ``T`` minus temperature at ``T - 14 d`` / ``T - 30 d``). For churn the learned
points reward touches that lower the risk, so a high temperature is a safe customer.

**The customer's usual temperature**: the temperature the customer's own usual touch rate would
hold, ``sum_k p_k * r_k * h / ln 2``, with ``r_k`` its touches of type ``k`` per day in
``[T - B, T - R)`` (``B = surge_baseline_days``, ``R = surge_recent_days``; a customer younger than
``B`` uses the days it has had, at least 30). ``temperature_surge = temperature - usual``: how far
above its own baseline the customer runs now.

**Bands**: ``high`` / ``medium`` / ``low`` by cut points on the probability, chosen as quantiles of
the validation rows' probabilities (``scoring.bands``).

**Alarms**, thresholds chosen on the validation cutoffs (:func:`fit_policy`) for the precision
the config states, maximising recall:

- ``kizashi`` (purchase): ``temperature_surge >= s`` **and** ``probability >= p``;
- ``cooling`` (churn): ``probability >= p`` **or** (``temperature 30 days ago >= warm`` **and**
  ``temperature < cold``): a high risk, or a customer who was warm and has cooled down.

>>> import pandas as pd
>>> from signals.settings import ScoringSettings
>>> frame = pd.DataFrame({"label": [1, 0, 1, 0, 0, 0, 1, 0, 0, 0] * 10,
...                       "probability": [0.9, 0.2, 0.8, 0.1, 0.3, 0.2, 0.7, 0.1, 0.2, 0.1] * 10,
...                       "temperature_surge": [5.0, 0.5, 4.0, -1, 0, 0, 3.0, 0, 2.0, 0] * 10})
>>> policy = fit_policy(frame, task="purchase", settings=ScoringSettings())
>>> policy.alarm, policy.validation["precision"], policy.validation["recall"]
('kizashi', 1.0, 1.0)
>>> apply_policy(policy, frame)[1][:4].tolist()
['kizashi', None, 'kizashi', None]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from signals.errors import DataError
from signals.features import PointInTime
from signals.features.matrix import build_features
from signals.features.names import half_life_label
from signals.features.spec import FeatureSpec
from signals.features.window import EventIndex
from signals.schemas import CUSTOMER_ID, CUTOFF, NS_PER_DAY, check_cutoffs, to_utc
from signals.settings import LabelSettings, ScoringSettings

__all__ = [
    "ALARM_OF_TASK",
    "BANDS",
    "TEMPERATURE_LAGS_DAYS",
    "Scored",
    "ScoringPolicy",
    "alarm_metrics",
    "apply_policy",
    "base_spec",
    "evaluate_policy",
    "customers_before",
    "fit_policy",
    "in_population",
    "rank_descending",
    "score_models",
    "spec_mismatch",
    "summarize",
    "temperature_table",
]

BANDS = ("high", "medium", "low")
ALARM_OF_TASK = {"purchase": "kizashi", "churn": "cooling"}
TEMPERATURE_LAGS_DAYS = (14, 30)
_MIN_BASELINE_DAYS = 30.0


class ScoringPolicy(BaseModel):
    """Band cut points and alarm thresholds of one model, chosen on its validation cutoffs.

    Saved next to the model (``thresholds.json``); scoring applies it unchanged.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    band_cuts: dict[str, float]                      # high: p >= cut, medium: p >= cut
    band_rates: dict[str, float | None]              # validation positive rate per band
    alarm: str                                       # kizashi | cooling
    probability: float | None = None                 # alarm needs (kizashi) / is raised by (cooling) p >= this
    surge: float | None = None                       # kizashi: temperature_surge >= this
    warm: float | None = None                        # cooling: temperature 30 days ago >= this ...
    cold: float | None = None                        # ... and temperature now < this
    target_precision: float
    validation: dict[str, float | int | bool | None]  # precision, recall, alarms, rows, positives, reached
    test: dict[str, float | int | None] | None = None  # the same on the test cutoffs (never used to choose)

    def describe(self) -> str:
        """The alarm rule in words, with its thresholds."""
        if self.alarm == "kizashi":
            return (f"kizashi: temperature {self.surge:+.1f} points or more above the customer's usual, "
                    f"and purchase probability >= {self.probability:.3f}")
        parts = []
        if self.probability is not None:
            parts.append(f"churn probability >= {self.probability:.3f}")
        if self.cold is not None:
            parts.append(f"temperature below {self.cold:.1f} after being at {self.warm:.1f} or more 30 days before")
        return "cooling: " + " or ".join(parts)


# --------------------------------------------------------------------------------------------
# temperatures


def temperature_table(
    index: EventIndex,
    rows: pd.DataFrame,
    spec: FeatureSpec,
    *,
    lags_days: tuple[int, ...] = TEMPERATURE_LAGS_DAYS,
    cache: dict | None = None,
) -> pd.DataFrame:
    """Temperatures of ``rows`` (``customer_id, cutoff``) with the learned and the prior points.

    ``spec`` must carry learned points and their half-life (a trained model's spec). Returns, in
    row order: ``temperature``, ``temperature_prior``, ``temperature_<L>d_ago`` and
    ``temperature_change_<L>d`` for every lag ``L``, ``usual_temperature`` and
    ``temperature_surge`` (see the module docstring). The per-type decayed counts come from the
    feature builders' point-in-time context (the temperature ``L`` days ago from the touches of the
    last ``L`` days only); ``cache`` (a dict, for the same ``rows``) shares that context between
    models, so two tasks with the same half-life build it once.
    """
    if spec.learned_points is None or spec.learned_half_life_days is None:
        raise ValueError("the spec has no learned points: temperatures need a trained model's spec")
    cache = {} if cache is None else cache
    key = ("context", spec.touchpoints)
    if key not in cache:
        cache[key] = PointInTime(None, check_cutoffs(rows[[CUSTOMER_ID, CUTOFF]]), spec.touchpoints, index=index)
    ctx: PointInTime = cache[key]
    h = spec.learned_half_life_days
    types = spec.touchpoints
    learned = np.array([float(spec.learned_points.get(t, 0.0)) for t in types])
    prior = np.array([spec.catalog[t].prior_points for t in types])
    now = ctx.decayed(h)
    out = {"temperature": now @ learned, "temperature_prior": now @ prior}
    for lag in lags_days:
        change = ctx.decayed_change(h, lag) @ learned
        out[f"temperature_{lag}d_ago"] = out["temperature"] - change
        out[f"temperature_change_{lag}d"] = change
    fs = spec.features
    recent, baseline = fs.surge_recent_days, fs.surge_baseline_days
    ctx.positions(recent), ctx.positions(baseline)  # both windows known before the per-type prefix counts
    usual = np.column_stack([ctx.count_before(k, recent) - ctx.count_before(k, baseline)
                             for k in range(len(types))]).astype(np.float64)
    start, known = ctx.block_start(), ctx.positions(0)
    first = np.full(ctx.n_rows, np.nan)
    has = known > start
    first[has] = ctx.index.ts[start[has]]
    tenure = (ctx.rows.cutoff - first) / NS_PER_DAY
    days = np.clip(np.nan_to_num(tenure - recent, nan=0.0), _MIN_BASELINE_DAYS, baseline - recent)
    out["usual_temperature"] = (usual @ learned) / days * h / math.log(2)
    out["temperature_surge"] = out["temperature"] - out["usual_temperature"]
    return pd.DataFrame(out, index=rows.index)


# --------------------------------------------------------------------------------------------
# bands and alarms


def alarm_metrics(alarm: np.ndarray, label: np.ndarray) -> dict[str, float | int | None]:
    """Precision, recall and counts of a boolean alarm against 0/1 labels."""
    alarm = np.asarray(alarm, dtype=bool)
    label = np.asarray(label, dtype=bool)
    hits = int((alarm & label).sum())
    n_alarm, positives = int(alarm.sum()), int(label.sum())
    base = positives / len(label) if len(label) else None
    precision = hits / n_alarm if n_alarm else None
    return {
        "precision": precision,
        "recall": hits / positives if positives else None,
        "alarms": n_alarm,
        "hits": hits,
        "rows": len(label),
        "positives": positives,
        "base_rate": base,
        "lift": precision / base if precision is not None and base else None,
    }


def _bands(probability: np.ndarray, cuts: dict[str, float]) -> np.ndarray:
    return np.where(probability >= cuts["high"], "high", np.where(probability >= cuts["medium"], "medium", "low"))


def _alarm_mask(policy: ScoringPolicy, frame: pd.DataFrame) -> np.ndarray:
    p = frame["probability"].to_numpy(np.float64)
    if policy.alarm == "kizashi":
        return (frame["temperature_surge"].to_numpy(np.float64) >= policy.surge) & (p >= policy.probability)
    mask = np.zeros(len(frame), dtype=bool)
    if policy.probability is not None:
        mask |= p >= policy.probability
    if policy.cold is not None:
        mask |= ((frame["temperature_30d_ago"].to_numpy(np.float64) >= policy.warm)
                 & (frame["temperature"].to_numpy(np.float64) < policy.cold))
    return mask


def apply_policy(policy: ScoringPolicy, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(band, alarm)`` per row of ``frame`` (``probability`` and the temperature columns);
    ``alarm`` is the alarm's name or None."""
    band = _bands(frame["probability"].to_numpy(np.float64), policy.band_cuts)
    alarm = np.where(_alarm_mask(policy, frame), policy.alarm, None).astype(object)
    return band, alarm


def _pick(candidates: list[tuple[dict, np.ndarray]], label: np.ndarray, target: float,
          min_alarms: int, min_lift: float) -> tuple[dict, dict, bool]:
    """The candidate with the highest recall whose precision reaches ``target`` and at least
    ``min_lift`` times the base rate (with at least ``min_alarms`` alarms); failing that, the most
    precise one. Returns (thresholds, metrics, reached)."""
    scored = [(thresholds, alarm_metrics(mask, label)) for thresholds, mask in candidates]
    enough = [(t, m) for t, m in scored if m["alarms"] >= min_alarms] or [(t, m) for t, m in scored if m["alarms"]]
    if not enough:
        return scored[0][0], scored[0][1], False
    reached = [(t, m) for t, m in enough if m["precision"] >= target and (m["lift"] or 0.0) >= min_lift]
    if reached:
        best = max(reached, key=lambda tm: (tm[1]["recall"] or 0.0, tm[1]["precision"]))
        return best[0], best[1], True
    best = max(enough, key=lambda tm: (tm[1]["precision"], tm[1]["recall"] or 0.0))
    return best[0], best[1], False


def _quantiles(values: np.ndarray, levels) -> list[float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return []
    return sorted({float(q) for q in np.quantile(values, levels)})


def fit_policy(frame: pd.DataFrame, *, task: str, settings: ScoringSettings) -> ScoringPolicy:
    """Choose band cut points and alarm thresholds on validation rows.

    ``frame`` has ``label`` (0/1), ``probability`` and the columns the task's alarm uses
    (kizashi: ``temperature_surge``; cooling: ``temperature`` and ``temperature_30d_ago``).
    Thresholds reach ``settings.alarms.<alarm>_precision`` (and ``min_lift`` times the base rate)
    with the highest recall when some candidate does (``validation["reached"]``), else they are the
    most precise candidate.
    """
    y = frame["label"].to_numpy().astype(bool)
    p = frame["probability"].to_numpy(np.float64)
    bands, alarms = settings.bands, settings.alarms
    cuts = {"high": float(np.quantile(p, 1 - bands.high_share)),
            "medium": float(np.quantile(p, 1 - bands.high_share - bands.medium_share))}
    band = _bands(p, cuts)
    rates = {b: (float(y[band == b].mean()) if (band == b).any() else None) for b in BANDS}
    alarm = ALARM_OF_TASK[task]
    levels = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99]
    p_grid = _quantiles(p, levels)
    candidates: list[tuple[dict, np.ndarray]] = []
    if alarm == "kizashi":
        target = alarms.kizashi_precision
        surge = frame["temperature_surge"].to_numpy(np.float64)
        s_grid = sorted({0.0, *[s for s in _quantiles(surge[surge > 0], [0.1, 0.25, 0.5, 0.75, 0.9, 0.95]) if s > 0]})
        for s in s_grid:
            above = surge >= s if s > 0 else surge > 0
            for q in p_grid:
                candidates.append(({"surge": float(np.nextafter(0, 1)) if s == 0 else s, "probability": q},
                                   above & (p >= q)))
    else:
        target = alarms.cooling_precision
        temp, before = frame["temperature"].to_numpy(np.float64), frame["temperature_30d_ago"].to_numpy(np.float64)
        warm = float(np.quantile(before, alarms.warm_quantile)) if len(before) else 0.0
        was_warm = before >= warm
        c_grid = [c for c in _quantiles(temp[was_warm], [0.02, 0.05, 0.1, 0.2, 0.3]) if c < warm]
        for q in [*_quantiles(p, [0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995]), None]:
            high = p >= q if q is not None else np.zeros(len(p), dtype=bool)
            for c in [*c_grid, None]:
                if q is None and c is None:
                    continue
                cooled = was_warm & (temp < c) if c is not None else np.zeros(len(p), dtype=bool)
                candidates.append(({"probability": q, "warm": warm if c is not None else None, "cold": c},
                                   high | cooled))
    thresholds, metrics, reached = _pick(candidates, y, target, alarms.min_alarms, alarms.min_lift)
    return ScoringPolicy(task=task, band_cuts=cuts, band_rates=rates, alarm=alarm, target_precision=target,
                         validation={**metrics, "reached": reached}, **thresholds)


def evaluate_policy(policy: ScoringPolicy, frame: pd.DataFrame) -> ScoringPolicy:
    """A copy of ``policy`` with its alarm's precision and recall on ``frame`` (test rows with ``label``)."""
    metrics = alarm_metrics(_alarm_mask(policy, frame), frame["label"].to_numpy())
    return policy.model_copy(update={"test": metrics})


# --------------------------------------------------------------------------------------------
# checks and the scored rows


def spec_mismatch(spec: FeatureSpec, *, event_types, customers: pd.DataFrame | None) -> list[str]:
    """What the data lack (or add) compared with a model's saved feature spec, in words.

    ``event_types`` are the touchpoint types the events can hold (their catalog's names, or the
    types present). Empty when the data fit.
    """
    problems = []
    event_types = [str(t) for t in event_types]
    missing = [t for t in spec.touchpoints if t not in event_types]
    if missing:
        problems.append(f"touchpoint type(s) {missing} of the model's catalog are not in the events' catalog")
    extra = [t for t in event_types if t not in spec.touchpoints]
    if extra:
        problems.append(f"the events have touchpoint type(s) {extra} the model was not trained on")
    if spec.static_columns:
        if customers is None:
            problems.append(f"the model uses the static column(s) {list(spec.static_columns)} but there is "
                            "no customers table")
        else:
            absent = [c for c in spec.static_columns if c not in customers.columns]
            if absent:
                problems.append(f"static column(s) {absent} are absent from the customers table "
                                f"(it has {[c for c in customers.columns if c != CUSTOMER_ID]})")
    return problems


def base_spec(spec: FeatureSpec) -> FeatureSpec:
    """The spec without its learned points (the features the model itself was fitted on)."""
    return spec.model_copy(update={"learned_points": None, "learned_half_life_days": None})


def rank_descending(score: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """1 = highest score; ties broken by ``ids`` (default: by position), so ranks are unique and reproducible."""
    order = np.argsort(-score, kind="stable") if ids is None else np.lexsort((ids, -score))
    rank = np.empty(len(score), dtype=np.int64)
    rank[order] = np.arange(1, len(score) + 1)
    return rank


@dataclass
class Scored:
    """The scored rows of every task and what it took."""

    signals: pd.DataFrame                       # customer_signals columns (+ usual_temperature, temperature_surge)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage
    rows: int = 0                               # customers scored (per task)


def score_models(
    events: pd.DataFrame | None,
    models: list,
    as_of,
    *,
    timezone: str = "UTC",
    customers: pd.DataFrame | None = None,
    settings: ScoringSettings | None = None,
    labels: LabelSettings | None = None,
    index: EventIndex | None = None,
    scored_at: pd.Timestamp | None = None,
    rows: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
    due: Mapping[str, Collection[str]] | None = None,
) -> Scored:
    """Score every customer of each task's population as of ``as_of`` (see the module docstring).

    ``models`` are :class:`signals.io.bundles.LoadedModel` (task, model, spec, policy, labels,
    name, version, run_id). Every customer first seen before the as-of instant gets features (built
    once per distinct base spec); ``rows`` (``customer_id, cutoff``, every cutoff the as-of
    instant) names the customers instead, e.g. one group of them on Spark
    (:func:`signals.spark.score_signals_spark`). Each task scores the customers of its population then (churn:
    active subscribers; purchase: no purchase in the quiet period), by the label rules the model
    was trained with (``loaded.labels``, else ``labels``, else the defaults). ``due`` maps a task
    trained on custom cutoffs to the customer ids whose cutoff is the as-of instant (the accounts
    due that day, :func:`signals.cutoffs.custom_cutoffs`): only those of its population are scored.
    Returns the ``customer_signals`` rows of all tasks with the seconds per stage.
    """
    from signals.cutoffs import as_of_instant
    from signals.features.window import index_events
    from signals.modeling.explain import reasons

    settings = settings or ScoringSettings()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now
        if progress is not None:
            progress(f"{stage}: {seconds[stage]:.1f} s")

    instant = as_of_instant(as_of, timezone)
    scored_at = scored_at or pd.Timestamp.now(tz="UTC").floor("s")
    touchpoints = models[0].spec.touchpoints
    if any(m.spec.touchpoints != touchpoints for m in models):
        raise DataError("the models were trained on different catalogs: score them separately")
    if index is None:
        index = index_events(events, touchpoints)
    if rows is None:
        rows = customers_before(index, instant, customers)
    else:
        rows = check_cutoffs(rows[[CUSTOMER_ID, CUTOFF]])
        if not (rows[CUTOFF] == instant).all():
            raise ValueError(f"every row to score must be at the as-of instant {instant}")
    if rows.empty:
        raise DataError(f"no customer was seen before {instant}: nothing to score")
    lap("cutoffs")
    matrices: dict[str, pd.DataFrame] = {}
    cache: dict = {}
    out = []
    for loaded in models:
        spec = base_spec(loaded.spec)
        key = spec.model_dump_json()
        if key not in matrices:
            matrices[key] = build_features(None, rows, spec, customers=customers, index=index)
            lap("features")
        X_all = matrices[key]
        temps_all = temperature_table(index, rows, loaded.spec, cache=cache)
        rules = getattr(loaded, "labels", None) or labels or LabelSettings()
        member = in_population(X_all, loaded.task, rules, loaded.spec.catalog)
        if due is not None and loaded.task in due:
            member &= rows[CUSTOMER_ID].astype(str).isin(pd.Index(due[loaded.task]).astype(str)).to_numpy()
        positions = np.flatnonzero(member)
        temps, task_rows = temps_all.iloc[positions], rows.iloc[positions]
        lap("temperatures")
        model = loaded.model
        missing = [c for c in model.feature_names_ if c not in X_all.columns]
        learned = f"temp_learned__all__{half_life_label(loaded.spec.learned_half_life_days)}"
        if missing and missing != [learned]:
            raise DataError(f"the {loaded.task} model needs features its spec does not build: {missing[:5]}")
        shap = model.tree_shap()
        probability = np.empty(len(positions))
        parts = []
        block = 2 * settings.reason_chunk_rows  # rows converted at a time: memory stays bounded
        source = X_all.assign(**{learned: temps_all["temperature"].to_numpy()}) if missing else X_all
        for start in range(0, len(positions), block):
            take = positions[start:start + block]
            data = shap.matrix(source, take)  # converted once: the predictions and the contributions read it
            raw = model.booster_.predict(np.ascontiguousarray(data), raw_score=True,
                                         num_iteration=model.best_iteration_)
            probability[start:start + len(take)] = model.calibrator_.predict(raw)
            lap("predict")
            parts.append(reasons(model, source, catalog=loaded.spec.catalog, top=3,
                                 chunk_rows=settings.reason_chunk_rows, matrix=data, positions=take))
            del data
            lap("reasons")
        why = pd.concat(parts, ignore_index=True) if parts else reasons(model, X_all.iloc[:0], catalog=loaded.spec.catalog)
        frame = temps.assign(probability=probability)
        band, alarm = apply_policy(loaded.policy, frame)
        n = len(task_rows)
        out.append(pd.DataFrame({
            "customer_id": pd.Series(np.asarray(task_rows[CUSTOMER_ID].array, dtype=object), dtype=object),
            "as_of": pd.DatetimeIndex(np.full(n, instant.value), tz="UTC"),
            "task": loaded.task,
            "model_name": loaded.name,
            "model_version": loaded.version,
            "run_id": loaded.run_id,
            "score": probability,
            "rank": rank_descending(probability),  # rows are in customer id order: ties go by id
            "band": band,
            "temperature": temps["temperature"].to_numpy(),
            "temperature_prior": temps["temperature_prior"].to_numpy(),
            "temperature_change_14d": temps["temperature_change_14d"].to_numpy(),
            "temperature_change_30d": temps["temperature_change_30d"].to_numpy(),
            "alarm": alarm,
            "reason_1": why["reason_1"].to_numpy(),
            "reason_2": why["reason_2"].to_numpy(),
            "reason_3": why["reason_3"].to_numpy(),
            "segment": None,
            "journey_stage": None,
            "scored_at": pd.DatetimeIndex(np.full(n, scored_at.value), tz="UTC"),
            "usual_temperature": temps["usual_temperature"].to_numpy(),
            "temperature_surge": temps["temperature_surge"].to_numpy(),
        }))
        lap("assemble")
    return Scored(pd.concat(out, ignore_index=True), seconds, len(rows))


def customers_before(index: EventIndex, instant: pd.Timestamp, customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """``(customer_id, cutoff)`` for every customer first seen before ``instant``, in id order.

    First seen: the earlier of its first event and ``customers.first_seen`` (as
    :func:`signals.cutoffs.scoring_cutoffs`, read from the event index instead of the events).
    """
    starts, ends = index.block[:-1], index.block[1:]
    first = np.full(len(index.customers), np.iinfo(np.int64).max, dtype=np.int64)
    has = starts < ends
    first[has] = index.ts[starts[has]]
    categories = pd.Index(index.customers.astype(str))
    if customers is not None and "first_seen" in customers.columns:
        stamp = to_utc(customers["first_seen"], what="customers.first_seen").to_numpy(dtype="datetime64[ns]").view(np.int64)
        ids = customers[CUSTOMER_ID].astype(str).to_numpy()
        where = categories.get_indexer(ids)
        new = where < 0
        if new.any():  # customers without any event: appended codes
            extra = pd.Index(pd.unique(ids[new]))
            categories = categories.append(extra)
            first = np.concatenate([first, np.full(len(extra), np.iinfo(np.int64).max, dtype=np.int64)])
            where = categories.get_indexer(ids)
        known = stamp > np.iinfo(np.int64).min  # NaT: unknown
        np.minimum.at(first, where[known], stamp[known])
    keep = np.flatnonzero(first < instant.value)
    order = keep if categories.is_monotonic_increasing else keep[np.argsort(categories.to_numpy()[keep], kind="stable")]
    # ids as a categorical over the index's customers: every later lookup is by code, not by string
    ids = pd.Categorical.from_codes(order, categories=categories)
    return pd.DataFrame({CUSTOMER_ID: ids, CUTOFF: pd.DatetimeIndex(np.full(len(order), instant.value), tz="UTC")})


def in_population(X: pd.DataFrame, task: str, labels: LabelSettings, catalog) -> np.ndarray:
    """Rows in the task's population at their cutoff, by the label rules, from the recency features
    (past only; the same rule as ``eligible`` in :mod:`signals.labels`).

    purchase: no purchase in ``[T - quiet_days, T)``; churn, contractual: the last purchase /
    renewal / cancellation before ``T`` is a purchase or renewal; non-contractual: an activity in
    ``[T - lookback_days, T)``.
    """

    def last(roles) -> np.ndarray:
        names = [f"recency__{t}__days" for t, tp in catalog.items() if tp.role in roles]
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise DataError(f"the population of {task} needs the recency features {missing}")
        if not names:
            return np.full(len(X), np.nan)
        return np.fmin.reduce([X[c].to_numpy(np.float64) for c in names]) if len(names) > 1 else \
            X[names[0]].to_numpy(np.float64)

    if task == "purchase":
        quiet = labels.purchase.quiet_days
        recency = last(("purchase",))
        return np.isnan(recency) | (recency >= quiet) if quiet > 0 else np.ones(len(X), dtype=bool)
    churn = labels.churn
    if churn.mode == "contractual":
        active, cancelled = last(("purchase", "renewal")), last(("cancellation",))
        return ~np.isnan(active) & (np.isnan(cancelled) | (active < cancelled))
    recency = last(churn.activity_roles)
    return ~np.isnan(recency) & (recency < churn.lookback_days)


def summarize(signals: pd.DataFrame) -> dict:
    """Per task: rows, alarms, band counts and the score distribution (for logs and MLflow)."""
    out = {}
    for task, part in signals.groupby("task", sort=True):
        score = part["score"].to_numpy()
        out[task] = {
            "rows": len(part),
            "alarms": int(part["alarm"].notna().sum()),
            "alarm": ALARM_OF_TASK.get(task),
            "bands": {b: int((part["band"] == b).sum()) for b in BANDS},
            "score_mean": float(score.mean()),
            **{f"score_p{q}": float(np.quantile(score, q / 100)) for q in (50, 90, 99)},
            "score_max": float(score.max()),
            "model": f"{part['model_name'].iloc[0]} {part['model_version'].iloc[0]}",
        }
    return out
