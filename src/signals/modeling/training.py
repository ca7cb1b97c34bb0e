"""Train one task end to end, in memory: the computation behind ``signals train``.

:func:`fit_task` chains four public steps, so a notebook can run them one by one or swap one:

1. :func:`training_set` builds the point-in-time features and labels on the cutoff grid;
2. :func:`fit_model` fits LightGBM on one split's training rows (early stopping and calibration
   on its validation rows);
3. :func:`learn_points` learns the points table (配点表) and the temperature half-life, with
   intervals from refitting the model (``fit_model`` again) on customer samples;
4. :func:`evaluate` scores the model and every baseline on the split's validation and test rows.

The evaluation is a rolling-origin backtest (:func:`signals.modeling.splits.rolling_origins`):
``model.backtest_origins`` test origins, each with its own embargoed training and validation
cutoffs and its own model. Metrics are reported per origin and pooled, with intervals that
resample origins and customers. The latest origin's model is the one kept (and its points are the
points). Test rows are never seen while fitting. It reads and writes no files;
:mod:`signals.jobs.train` does the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from signals.cutoffs import custom_cutoffs, first_seen, history_start, periods_of, training_cutoffs
from signals.dataset import LABEL, build_training_set
from signals.errors import DataError
from signals.features._context import available_cores
from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.features.window import EventIndex, index_events
from signals.labels import horizon_days
from signals.modeling.baselines import (
    LogisticBaseline,
    falling_frequency,
    prior_temperature,
    rfm_score,
)
from signals.modeling.estimators import Calibrator, SignalModel
from signals.modeling.explain import reasons
from signals.modeling.metrics import backtest_metrics, backtest_versus
from signals.modeling.points import (
    DEFINED,
    TASK_SIGN,
    WhatIf,
    choose_half_life,
    learned_temperature,
    points_table,
    summarize_effects,
    touch_effects,
    what_if,
)
from signals.modeling.scoring import ScoringPolicy, evaluate_policy, fit_policy, temperature_table
from signals.modeling.splits import (
    SplitPlan,
    TimeSplit,
    plan_split,
    rolling_origins,
    split_advice,
    split_fits,
    training_grid,
)
from signals.schemas import CUSTOMER_ID, CUTOFF, TS, check_events
from signals.settings import Settings

__all__ = [
    "BASELINES",
    "InOrder",
    "LEARNED_TEMPERATURE",
    "MODEL_NAME",
    "Evaluation",
    "LearnedPoints",
    "TrainedTask",
    "TrainingSet",
    "alarm_policy",
    "backtest_splits",
    "check_positives",
    "customer_samples",
    "evaluate",
    "fit_model",
    "fit_pool",
    "fit_task",
    "fit_workers",
    "learn_points",
    "plan_training_split",
    "training_set",
    "truth_agreement",
]

MODEL_NAME = "lightgbm"
LEARNED_TEMPERATURE = "learned_temperature"
BASELINES = ("logistic_regression", "prior_temperature", "rfm", "falling_frequency", LEARNED_TEMPERATURE)
ORIGIN = "origin"
PERIOD = "period"  # custom cutoffs: the calendar period of each row, which the split divides

Progress = Callable[[str], None] | None


def _note(progress: Progress, message: str) -> None:
    if progress is not None:
        progress(message)


# ---------------------------------------------------------------------------------------------
# 1. the training set


@dataclass
class TrainingSet:
    """Features and labels of one task on the training grid, with what later steps need.

    Attributes
    ----------
    task : str
    spec : FeatureSpec
    data : pd.DataFrame
        ``customer_id``, ``cutoff``, the features and ``label``, sorted by cutoff then customer.
    features : list of str
    index : EventIndex
        The events sorted once (what-ifs and temperatures reuse it).
    horizon_days : float
    customer_code : np.ndarray
        Per row, the position of its customer in ``customer_ids`` (customer samples use it).
    customer_ids : pd.Index
    first_event, data_end : pd.Timestamp
        The span of the events (the grid ends one horizon before ``data_end``).
    plan : SplitPlan
        The split the grid was built for.
    """

    task: str
    spec: FeatureSpec
    data: pd.DataFrame
    features: list[str]
    index: EventIndex
    horizon_days: float
    customer_code: np.ndarray
    customer_ids: pd.Index
    first_event: pd.Timestamp
    data_end: pd.Timestamp
    plan: SplitPlan

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        return sorted(pd.unique(self.data[CUTOFF]))

    def rows(self, mask: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """Features and labels of the rows in ``mask``."""
        return self.data.loc[mask, self.features], self.data.loc[mask, LABEL].to_numpy()


def plan_training_split(events: pd.DataFrame, settings: Settings, *, task: str, auto_split: bool = False) -> SplitPlan:
    """The split :func:`fit_task` uses for ``events``: the configured one, or with ``auto_split`` the
    largest honest split that fits the history (:func:`signals.modeling.splits.plan_split`).

    The history starts at ``cutoffs.start`` (:func:`signals.cutoffs.history_start`). With custom
    cutoffs (``cutoffs.kind``) the grid's cutoffs are the starts of the periods the custom cutoffs
    fall in, and the embargo grows by one period (``SplitPlan.margin_days``).

    Raises
    ------
    DataError
        The split does not fit the history; the message says which settings would make it fit,
        with numbers for this data.
    """
    if len(events) == 0:
        raise DataError("no events: cannot build a training grid")
    ms, cs = settings.model, settings.cutoffs
    margin = _period_margin(settings) if cs.custom_for(task) else 0.0
    wanted = SplitPlan(cs.n_training, ms.backtest_origins, ms.validation_cutoffs, ms.test_cutoffs, ms.embargo,
                       float(horizon_days(task, settings.labels)), cs.frequency, margin)
    first, end = history_start(events, cs.start, timezone=settings.timezone), events[TS].max()
    grid = training_grid(first, end, horizon_days=wanted.horizon_days + margin, frequency=cs.frequency,
                         timezone=settings.timezone, end=cs.end, n_cutoffs=None if auto_split else cs.n_training)
    plan = plan_split(grid, wanted) if auto_split else (wanted if len(grid) and split_fits(grid, wanted) else None)
    if plan is None:
        raise DataError(f"{task}: " + split_advice(first, end, wanted, task=task, timezone=settings.timezone,
                                                   end=cs.end))
    return plan


def _period_margin(settings: Settings) -> float:
    """The longest calendar period of the grid's frequency in whole days, a DST hour included
    (custom cutoffs spread over their period)."""
    return 32.0 if settings.cutoffs.frequency == "monthly" else 8.0


def training_set(
    events: pd.DataFrame,
    settings: Settings,
    *,
    task: str,
    customers: pd.DataFrame | None = None,
    plan: SplitPlan | None = None,
    index: EventIndex | None = None,
    progress: Progress = None,
    custom_table: pd.DataFrame | None = None,
) -> TrainingSet:
    """Build the point-in-time training set of ``task`` (step 1 of :func:`fit_task`).

    The grid is the latest ``plan.n_cutoffs`` calendar cutoffs whose label windows are fully
    observed (``plan`` defaults to the configured split, see :func:`plan_training_split`). With
    custom cutoffs for the task (``cutoffs.kind``: ``table`` from ``custom_table``, or
    ``anniversary``), the rows are the custom cutoffs inside the grid's periods whose label windows
    close in the data; each row's ``period`` (the grid cutoff that starts it) is what the split divides.
    """
    spec = FeatureSpec.from_settings(settings)
    events = check_events(events, spec.touchpoints)
    plan = plan or plan_training_split(events, settings, task=task)
    index = index or index_events(events, spec.touchpoints)  # sorted once, shared by every feature build
    cs = settings.cutoffs
    start = history_start(events, cs.start, timezone=settings.timezone)
    _note(progress, f"cutoffs: {plan.n_cutoffs} {plan.frequency}, {plan.horizon_days:g}-day horizon"
                    + (f", custom ({cs.kind}) within the periods" if cs.custom_for(task) else ""))
    cutoffs = training_cutoffs(  # custom cutoffs: whole periods whose last label window closes in the data
        events, horizon_days=plan.horizon_days + plan.margin_days, n_cutoffs=plan.n_cutoffs, frequency=plan.frequency,
        timezone=settings.timezone, end=cs.end, customers=customers, min_history_days=cs.min_history_days,
        start=start,
    )
    if cs.custom_for(task):
        cutoffs = _custom_training_rows(events, cutoffs, settings, plan=plan, table=custom_table, customers=customers)
    _note(progress, f"features and labels for {len(cutoffs):,} rows")
    data = build_training_set(events, cutoffs[[CUSTOMER_ID, CUTOFF]], spec, task=task, labels=settings.labels,
                              customers=customers, index=index)
    if cs.custom_for(task):  # the period of each row (the split divides periods)
        period = periods_of(data[CUTOFF], pd.DatetimeIndex(sorted(pd.unique(cutoffs[PERIOD]))),
                            frequency=plan.frequency, timezone=settings.timezone)[0]
        data = pd.concat([data, pd.DataFrame({PERIOD: pd.to_datetime(period).tz_localize("UTC")}, index=data.index)],
                         axis=1)
    code, ids = pd.factorize(data[CUSTOMER_ID].astype(str), sort=True)
    return TrainingSet(task, spec, data, feature_columns(data), index, plan.horizon_days, code.astype(np.int64),
                       pd.Index(ids), events[TS].min(), events[TS].max(), plan)


def _custom_training_rows(events: pd.DataFrame, grid_rows: pd.DataFrame, settings: Settings, *, plan: SplitPlan,
                          table: pd.DataFrame | None, customers: pd.DataFrame | None) -> pd.DataFrame:
    """The custom cutoffs inside the grid's periods, label windows closed, customers already seen.

    Returns ``customer_id, cutoff, period``.
    """
    cs = settings.cutoffs
    grid = pd.DatetimeIndex(sorted(pd.unique(grid_rows[CUTOFF])))
    rows = custom_cutoffs(events, cs, catalog=settings.catalog, timezone=settings.timezone, table=table)
    period, _ = periods_of(rows[CUTOFF], grid, frequency=plan.frequency, timezone=settings.timezone)
    rows = rows.assign(**{PERIOD: pd.to_datetime(period).tz_localize("UTC")})
    closed = rows[CUTOFF] + pd.Timedelta(days=plan.horizon_days) <= events[TS].max()
    seen = first_seen(events, customers, timezone=settings.timezone)
    entry = (seen.reindex(rows[CUSTOMER_ID].astype(str)).to_numpy(dtype="datetime64[ns]")
             + np.timedelta64(int(cs.min_history_days) * 86_400, "s"))
    known = ~np.isnat(entry) & (entry < rows[CUTOFF].to_numpy(dtype="datetime64[ns]"))
    rows = rows[rows[PERIOD].notna().to_numpy() & closed.to_numpy() & known].reset_index(drop=True)
    if len(rows) == 0:
        raise DataError(f"cutoffs.kind {cs.kind}: no custom cutoff falls in the training periods "
                        f"{grid[0]:%Y-%m-%d}..{grid[-1]:%Y-%m-%d} with its {plan.horizon_days:g}-day label window "
                        "closed in the data" + (f" (table {cs.table})" if cs.kind == "table" else ""))
    return rows


def backtest_splits(ts: TrainingSet) -> list[TimeSplit]:
    """The rolling-origin splits of ``ts.plan`` on the cutoffs that hold rows, oldest origin first."""
    plan = ts.plan
    key = PERIOD if PERIOD in ts.data.columns else CUTOFF
    try:
        splits = rolling_origins(sorted(pd.unique(ts.data[key])), n_origins=plan.n_origins,
                                 n_validation=plan.n_validation, n_test=plan.n_test,
                                 horizon_days=plan.horizon_days + plan.margin_days, embargo=plan.embargo)
        return [replace(split, key=key) for split in splits]
    except DataError as exc:
        raise DataError(f"{ts.task}: the task's rows fall on fewer cutoffs than the grid: {exc}; run with "
                        "--auto-split or use fewer origins / validation / test cutoffs") from None


def check_positives(ts: TrainingSet, splits: list[TimeSplit], minimum: int) -> None:
    """Every validation and test period must hold ``minimum`` positives and negatives.

    Raises
    ------
    DataError
        Naming the period, its counts and what to change.
    """
    problems = []
    for i, split in enumerate(splits, start=1):
        _, val_mask, test_mask = split.masks(ts.data)
        for part, mask, cutoffs in (("validation", val_mask, split.validation), ("test", test_mask, split.test)):
            y = ts.data.loc[mask, LABEL].to_numpy()
            positives, negatives = int(y.sum()), int(len(y) - y.sum())
            if positives < minimum or negatives < minimum:
                period = f"{cutoffs[0]:%Y-%m-%d}" + (f"..{cutoffs[-1]:%Y-%m-%d}" if len(cutoffs) > 1 else "")
                problems.append(f"the {part} period {period} (origin {i} of {len(splits)}) has {positives} positive(s) "
                                f"and {negatives} negative(s) in {len(y)} rows")
    if problems:
        horizon_key = f"labels.{ts.task}.horizon_days"
        raise DataError(
            f"{ts.task}: too few labels to measure: " + "; ".join(problems)
            + f". Each validation and test period needs at least {minimum} positives and {minimum} negatives "
            + f"(model.min_positives). Use more customers or history, a longer horizon ({horizon_key}, now "
            + f"{ts.horizon_days:g}), more validation / test cutoffs per origin (model.validation_cutoffs, "
            + "model.test_cutoffs) or fewer origins (model.backtest_origins); no model was written")


# ---------------------------------------------------------------------------------------------
# 2. the model


def fit_model(ts: TrainingSet, split: TimeSplit, settings: Settings, *,
              customer_weights: np.ndarray | None = None) -> SignalModel:
    """Fit LightGBM on ``split``'s training rows, stopping early and calibrating on its validation rows.

    ``customer_weights`` (one per ``ts.customer_ids``) reweighs every row by its customer's weight,
    for refits on customer samples (0 drops the customer). ``model.recency_half_life_days`` also
    weighs each training row by ``0.5 ** (days before the latest training cutoff / half-life)``
    (validation rows keep their weights: they are the most recent already).
    """
    ms = settings.model
    train, val, _ = split.masks(ts.data)
    recent = ms.recency_half_life_days is not None   # weights anchored at the split's latest training cutoff,
    latest = ts.data.loc[train, CUTOFF].max() if recent else None  # whatever customers a refit's sample keeps
    weight = None if customer_weights is None else np.asarray(customer_weights, dtype=np.float64)[ts.customer_code]
    if weight is not None:
        train, val = train & (weight > 0), val & (weight > 0)
    X_tr, y_tr = ts.rows(train)
    X_va, y_va = ts.rows(val)
    train_weight = None if weight is None else weight[train]
    if recent:
        recency = recency_weights(ts.data.loc[train, CUTOFF], ms.recency_half_life_days, latest=latest)
        train_weight = recency if train_weight is None else train_weight * recency
    return SignalModel(ms.lightgbm, ms.calibration, ms.seed).fit(
        X_tr, y_tr, X_va, y_va, weight=train_weight, val_weight=None if weight is None else weight[val])


def recency_weights(cutoffs: pd.Series, half_life_days: float, *, latest: pd.Timestamp | None = None) -> np.ndarray:
    """``0.5 ** (days before latest / half_life_days)`` per row: 1 at ``latest`` (default: the latest of ``cutoffs``).

    >>> import pandas as pd
    >>> recency_weights(pd.Series(pd.to_datetime(["2025-01-01", "2025-01-31", "2025-03-02"], utc=True)), 60).round(3)
    array([0.5  , 0.707, 1.   ])
    """
    latest = cutoffs.max() if latest is None else latest
    days = (latest - cutoffs).dt.total_seconds().to_numpy() / 86_400.0
    return 0.5 ** (days / half_life_days)


# ---------------------------------------------------------------------------------------------
# 3. the points


@dataclass
class LearnedPoints:
    """The points step's results.

    Attributes
    ----------
    table : pd.DataFrame
        The points table (:func:`signals.modeling.points.points_table`).
    draws : pd.DataFrame
        One row per (refit, type): the refit's ``own / shared / total`` log-odds and points.
    design : WhatIf
        The reference rows and what one more touch changes in them.
    half_life_days : float
    half_life_table : pd.DataFrame
        Validation ROC AUC of the learned temperature per candidate half-life.
    validation_temperature : np.ndarray
        The learned temperature (risk-signed) of the split's validation rows.
    """

    table: pd.DataFrame
    draws: pd.DataFrame
    design: WhatIf
    half_life_days: float
    half_life_table: pd.DataFrame
    validation_temperature: np.ndarray

    @property
    def points(self) -> dict[str, float]:
        """Own points per type (0 for types outside the task's population or the training data)."""
        table = self.table
        return {t: (float(p) if s == DEFINED and np.isfinite(p) else 0.0)
                for t, p, s in zip(table["touchpoint"], table["own_points"], table["status"], strict=True)}


class InOrder(Executor):
    """An executor that runs each call at once in the caller's thread (``model.parallel_fits: 1``).

    >>> InOrder().submit(pow, 2, 10).result()
    1024
    """

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the caller by future.result(), like a thread pool
            future.set_exception(exc)
        return future


def fit_workers(settings: Settings) -> int:
    """How many LightGBM fits :func:`fit_task` runs side by side: ``model.parallel_fits``, 0 = the cores."""
    n = settings.model.parallel_fits
    return n if n > 0 else available_cores()


def fit_pool(settings: Settings) -> tuple[Executor, Settings]:
    """The executor for the fits that may run side by side, and the settings they fit with.

    With more than one worker, every fit gets ``lightgbm.num_threads`` threads, 0 (all cores)
    meaning one: the fits share the cores instead of each spinning on all of them (on the demo
    world this made ``fit_task`` 0.87-0.89x the time of one fit after another on all cores,
    ``benchmarks/bench_training.py``). Trees do not depend on the thread count (``deterministic``,
    column-wise histograms; a test compares the results).

    LightGBM keeps the thread count of its latest call (training, Dataset or prediction) in one
    process-wide variable, and a fit whose thread count changes under it can crash. So while fits
    run on the pool, every LightGBM call in the process must use the same count: the fits and
    their predictions use the returned settings (:class:`SignalModel` passes its count to every
    prediction), and the caller makes no LightGBM call of its own until the pool is shut down.
    """
    workers = fit_workers(settings)
    if workers <= 1:
        return InOrder(), settings
    lgbm = settings.model.lightgbm
    if lgbm.num_threads == 0:
        model = settings.model.model_copy(update={"lightgbm": lgbm.model_copy(update={"num_threads": 1})})
        settings = settings.model_copy(update={"model": model})
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="signals-fit"), settings


def customer_samples(ts: TrainingSet, split: TimeSplit, n: int, method: str, *, seed: int,
                     attempts: int = 5) -> list[np.ndarray]:
    """``n`` customer weight vectors for the points' refits (``half_sample`` or ``bootstrap``).

    Each sample keeps positives and negatives in ``split``'s training and validation rows; a
    sample that does not is drawn again (at most ``attempts`` times in a row).

    Raises
    ------
    DataError
        ``attempts`` samples in a row left a part without positives or negatives.
    """
    rng = np.random.default_rng(seed)
    train, val, _ = split.masks(ts.data)
    y = ts.data[LABEL].to_numpy()
    present = np.unique(ts.customer_code[train | val])
    parts = [(y[mask], ts.customer_code[mask]) for mask in (train, val)]  # labels and customers of each part
    samples = []
    for r in range(n):
        for _ in range(attempts):
            weights = _customer_sample(rng, len(ts.customer_ids), present, method)
            kept = [labels[weights[codes] > 0] for labels, codes in parts]
            if all(0 < k.sum() < len(k) for k in kept):
                samples.append(weights)
                break
        else:
            raise DataError(f"points: {attempts} samples of customers in a row (refit {r + 1} of {n}, "
                            f"{method.replace('_', ' ')}) left the training or validation rows without positives or "
                            "negatives; use more customers or history, or model.points_interval: none")
    return samples


def _customer_sample(rng: np.random.Generator, n: int, present: np.ndarray, method: str) -> np.ndarray:
    """Weights over ``n`` customers: a half sample without replacement or a bootstrap draw of the
    ``present`` ones (customers absent from the split keep weight 0)."""
    weights = np.zeros(n)
    if method == "half_sample":
        weights[rng.choice(present, size=max(len(present) // 2, 1), replace=False)] = 1.0
    else:
        weights[present] = np.bincount(rng.integers(0, len(present), len(present)), minlength=len(present))
    return weights


def learn_points(
    model,
    ts: TrainingSet,
    split: TimeSplit,
    settings: Settings,
    *,
    refit: Callable[..., object] | None = fit_model,
    progress: Progress = None,
    pool: Executor | None = None,
) -> LearnedPoints:
    """The points table of ``model`` and the learned-temperature half-life (step 3 of :func:`fit_task`).

    The what-if (:func:`signals.modeling.points.what_if`) runs on ``model.points_reference_rows``
    validation rows of ``split``. With ``refit`` (default :func:`fit_model`) and
    ``model.points_interval`` not ``none``, the whole fit is repeated ``model.points_refits``
    times on customer samples (``half_sample``: half the customers without replacement, whose
    spread around the full fit equals the full fit's sampling spread, at half the cost;
    ``bootstrap``: customers with replacement), each refit scoring the same what-if on its own
    customers' reference rows: the intervals include refitting noise, not only the spread across
    customers. ``refit=None`` skips them (intervals NaN). The samples are drawn up front
    (:func:`customer_samples`), so the refits may run side by side on ``pool`` (an
    :class:`~concurrent.futures.Executor`) with the same results as one after another.
    """
    ms = settings.model
    train, val, _ = split.masks(ts.data)
    validation = ts.data.loc[val, [CUSTOMER_ID, CUTOFF]]
    reference = validation.sample(n=min(ms.points_reference_rows, len(validation)), random_state=ms.seed)
    design = what_if(None, reference, ts.spec, index=ts.index, X=ts.data.loc[reference.index, ts.features],
                     task=ts.task, labels=settings.labels, training=ts.data.loc[train, ts.features])
    summary = summarize_effects(touch_effects(model, design), design)
    draws: list[pd.DataFrame] = []
    method = ms.points_interval
    if refit is not None and method != "none":
        samples = customer_samples(ts, split, ms.points_refits, method, seed=ms.seed + 1)
        reference_code = ts.customer_ids.get_indexer(reference[CUSTOMER_ID].astype(str))

        def refit_effects(weights: np.ndarray) -> pd.DataFrame:
            refitted = refit(ts, split, settings, customer_weights=weights)
            return summarize_effects(touch_effects(refitted, design), design, weights[reference_code])

        runner = pool if pool is not None else InOrder()
        futures = [runner.submit(refit_effects, weights) for weights in samples]
        for r, future in enumerate(futures):
            draws.append(future.result())
            _note(progress, f"points: refit {r + 1} of {ms.points_refits} done ({method.replace('_', ' ')} of customers)")
    interval = {"half_sample": f"95% from {ms.points_refits} refits on half samples of customers",
                "bootstrap": f"95% from {ms.points_refits} refits on bootstrap samples of customers"}.get(method, "none")
    table = points_table(summary, design, ts.spec, task=ts.task, draws=draws or None, interval=interval)
    draw_table = pd.concat([d.rename_axis("touchpoint").reset_index().assign(refit=i) for i, d in enumerate(draws)],
                           ignore_index=True) if draws else pd.DataFrame(columns=["refit", "touchpoint"])
    learned = LearnedPoints(table, draw_table, design, float("nan"), pd.DataFrame(), np.empty(0))
    y_va = ts.data.loc[val, LABEL].to_numpy()
    half_life, half_life_table, temps = choose_half_life(None, validation, y_va, learned.points, ts.spec,
                                                         task=ts.task, grid=ms.half_life_grid_days, index=ts.index)
    learned.half_life_days = half_life
    learned.half_life_table = half_life_table
    learned.validation_temperature = TASK_SIGN[ts.task] * learned_temperature(temps, learned.points, half_life)
    return learned


# ---------------------------------------------------------------------------------------------
# 4. the evaluation


@dataclass
class Evaluation:
    """The scores of the model and every baseline on one split's validation and test rows.

    ``test_scores`` / ``validation_scores``: ``customer_id, cutoff, label, origin`` and, per model,
    ``score__<model>`` (higher = more likely positive) and ``prob__<model>`` (calibrated on the
    validation rows). ``calibrators``: the baselines' calibrators.
    """

    split: TimeSplit
    test_scores: pd.DataFrame
    validation_scores: pd.DataFrame
    calibrators: dict[str, Calibrator] = field(default_factory=dict)


def evaluate(model: SignalModel, ts: TrainingSet, split: TimeSplit, settings: Settings, *,
             points: LearnedPoints | None = None) -> Evaluation:
    """Score ``model`` and the baselines on ``split``'s validation and test rows (step 4 of :func:`fit_task`).

    Baselines: logistic regression on the same features, the prior-points temperature, RFM, the
    falling-frequency rule and (with ``points``) the learned-points temperature; each is
    calibrated on the validation rows, like the model.
    """
    ms = settings.model
    spec, task = ts.spec, ts.task
    train, val, test = split.masks(ts.data)
    X_tr, y_tr = ts.rows(train)
    X_va, y_va = ts.rows(val)
    X_te, _ = ts.rows(test)
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {MODEL_NAME: (model.decision_function(X_va),
                                                                     model.decision_function(X_te))}
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {MODEL_NAME: (model.probability(X_va), model.probability(X_te))}
    calibrators: dict[str, Calibrator] = {}

    def add(name: str, val_score: np.ndarray, test_score: np.ndarray) -> None:
        calibrators[name] = Calibrator(ms.calibration).fit(val_score, y_va)
        scores[name] = (val_score, test_score)
        probs[name] = (calibrators[name].predict(val_score), calibrators[name].predict(test_score))

    logistic = LogisticBaseline(seed=ms.seed).fit(X_tr, y_tr)
    add("logistic_regression", logistic.decision_function(X_va), logistic.decision_function(X_te))
    add("prior_temperature", prior_temperature(X_va, spec, task), prior_temperature(X_te, spec, task))
    add("rfm", rfm_score(X_tr, X_va, spec, task), rfm_score(X_tr, X_te, spec, task))
    add("falling_frequency", falling_frequency(X_va, spec, task), falling_frequency(X_te, spec, task))
    if points is not None:
        temps = build_features(None, ts.data.loc[test, [CUSTOMER_ID, CUTOFF]],
                               spec.temperature_only((points.half_life_days,)), index=ts.index)
        test_temperature = TASK_SIGN[task] * learned_temperature(temps, points.points, points.half_life_days)
        add(LEARNED_TEMPERATURE, points.validation_temperature, test_temperature)

    def frame(mask: np.ndarray, part: int) -> pd.DataFrame:
        out = ts.data.loc[mask, [CUSTOMER_ID, CUTOFF, LABEL]].reset_index(drop=True)
        out[ORIGIN] = split.origin
        for name in scores:
            out[f"score__{name}"] = scores[name][part]
            out[f"prob__{name}"] = probs[name][part]
        return out

    return Evaluation(split, frame(test, 1), frame(val, 0), calibrators)


def alarm_policy(ts: TrainingSet, split: TimeSplit, learned_spec: FeatureSpec, evaluation: Evaluation,
                 settings: Settings) -> ScoringPolicy:
    """Band cut points and alarm thresholds chosen on ``split``'s validation rows, measured on its test rows.

    The model's calibrated probability comes from ``evaluation`` (the same rows, in order); the
    temperatures from ``learned_spec`` (the learned points and half-life the bundle saves), so
    scoring applies exactly the rule chosen here.
    """
    _, val, test = split.masks(ts.data)

    def frame(scores: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
        rows = ts.data.loc[mask, [CUSTOMER_ID, CUTOFF]].reset_index(drop=True)
        return pd.concat([
            rows,
            pd.DataFrame({LABEL: scores[LABEL].to_numpy(), "probability": scores[f"prob__{MODEL_NAME}"].to_numpy()}),
            temperature_table(ts.index, rows, learned_spec),
        ], axis=1)

    policy = fit_policy(frame(evaluation.validation_scores, val), task=ts.task, settings=settings.scoring)
    return evaluate_policy(policy, frame(evaluation.test_scores, test))


# ---------------------------------------------------------------------------------------------
# the whole task


@dataclass
class TrainedTask:
    """Everything a training run produced (models, tables, the data they were measured on).

    The model, points and validation scores are the latest origin's (the model to deploy); the
    metrics pool every origin of the backtest.
    """

    task: str
    spec: FeatureSpec                # with the learned points and half-life (scoring rebuilds from it)
    model: SignalModel               # the latest origin's model
    split: TimeSplit                 # the latest origin's split
    metrics: pd.DataFrame            # pooled over origins: model, metric, estimate, low, high, origins
    versus: pd.DataFrame             # ROC AUC of the model minus each baseline, pooled, paired two-way bootstrap
    points: pd.DataFrame             # the learned points table (配点表) of the latest model
    half_life_days: float
    half_life_table: pd.DataFrame
    rows: dict[str, int]
    test_scores: pd.DataFrame        # every origin's test rows: customer_id, cutoff, label, origin, score__*, prob__*
    top_reasons: pd.DataFrame        # the highest-scored rows of the last test cutoff with their reasons
    baseline_calibrators: dict[str, Calibrator] = field(default_factory=dict)
    splits: list[TimeSplit] = field(default_factory=list)          # every origin, oldest first
    metrics_by_origin: pd.DataFrame = field(default_factory=pd.DataFrame)
    validation_scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # the latest model's validation rows
    point_draws: pd.DataFrame = field(default_factory=pd.DataFrame)        # the refits behind the intervals
    points_by_origin: pd.DataFrame = field(default_factory=pd.DataFrame)   # origin, touchpoint, own points / log-odds
    plan: SplitPlan | None = None
    data_range: tuple[pd.Timestamp, pd.Timestamp] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    policy: ScoringPolicy | None = None  # band cut points, alarm thresholds (validation) and alarm metrics (test)

    @property
    def points_by_type(self) -> dict[str, float]:
        """Own points of the types that have them (the ones the learned temperature uses)."""
        table = self.points[self.points["status"] == DEFINED]
        return dict(zip(table["touchpoint"], table["own_points"], strict=True))

    def metric(self, model: str, metric: str) -> float:
        row = self.metrics[(self.metrics["model"] == model) & (self.metrics["metric"] == metric)]
        return float(row["estimate"].iloc[0])


def fit_task(
    events: pd.DataFrame,
    settings: Settings,
    *,
    task: str,
    customers: pd.DataFrame | None = None,
    auto_split: bool = False,
    progress: Progress = None,
    on_model: Callable[[SignalModel, FeatureSpec, TimeSplit], None] | None = None,
    cutoffs: pd.DataFrame | None = None,
) -> TrainedTask:
    """Fit and evaluate ``task`` (``churn`` or ``purchase``) on canonical ``events``.

    Chains :func:`training_set`, :func:`fit_model`, :func:`learn_points` and :func:`evaluate` over
    the origins of a rolling-origin backtest. The latest origin's model is fitted first and handed
    to ``on_model`` (the train job saves it there, so no later step can lose it); then its points
    get their refit intervals, and every earlier origin is fitted and evaluated (with its own
    points, so its learned temperature never sees later data). The refits and the earlier origins
    run side by side on ``model.parallel_fits`` threads (:func:`fit_pool`), with the same results
    as one after another.

    Parameters
    ----------
    auto_split : bool
        Use every cutoff the history allows and the largest honest split that fits
        (:func:`plan_training_split`) instead of the configured one.
    cutoffs : DataFrame, optional
        With ``cutoffs.kind: table``, the cutoffs table as read (the train job reads ``cutoffs.table``).

    Raises
    ------
    DataError
        The split does not fit the history (the message says what would), or a validation or
        test period has fewer than ``model.min_positives`` positives or negatives.
    """
    ms = settings.model
    timings: dict[str, float] = {}
    started = time.perf_counter()
    spec = FeatureSpec.from_settings(settings)
    events = check_events(events, spec.touchpoints)
    plan = plan_training_split(events, settings, task=task, auto_split=auto_split)
    if auto_split:
        _note(progress, f"auto-split: {plan.describe()}")
    ts = training_set(events, settings, task=task, customers=customers, plan=plan, progress=progress,
                      custom_table=cutoffs)
    splits = backtest_splits(ts)
    check_positives(ts, splits, ms.min_positives)
    timings["training_set"] = time.perf_counter() - started

    final = splits[-1]
    tick = time.perf_counter()
    train, val, _ = final.masks(ts.data)
    _note(progress, f"LightGBM (origin {len(splits)} of {len(splits)}, test {final.origin:%Y-%m-%d}) on "
                    f"{int(train.sum()):,} rows ({int(ts.data.loc[train, LABEL].sum()):,} positive), early stopping "
                    f"on {int(val.sum()):,}")
    model = fit_model(ts, final, settings)
    timings["fit_model"] = time.perf_counter() - tick
    if on_model is not None:
        on_model(model, spec, final)

    evaluations: list[Evaluation] = []
    by_origin_points = []
    tick = time.perf_counter()
    refits = ms.points_refits if ms.points_interval != "none" else 0
    pool, fit_settings = fit_pool(settings)
    workers = fit_workers(settings)
    side_by_side = f", {workers} fits side by side" if workers > 1 else ""
    _note(progress, f"learned points on {min(ms.points_reference_rows, int(val.sum())):,} validation rows"
                    + (f", {refits} refits for the intervals{side_by_side}" if refits else ""))
    try:
        # the kept model's what-if runs here before any fit starts on the pool: while fits run side by
        # side, every LightGBM call in the process must use their thread count (see fit_pool)
        learned = learn_points(model, ts, final, fit_settings, refit=fit_model, progress=progress, pool=pool)
        timings["learn_points"] = time.perf_counter() - tick
        if len(splits) > 1:
            _note(progress, f"backtest origins 1-{len(splits) - 1} of {len(splits)} (tests "
                            f"{', '.join(f'{s.origin:%Y-%m-%d}' for s in splits[:-1])}): model, points, baselines"
                            + side_by_side)
        backtests = [pool.submit(_backtest_origin, ts, split, fit_settings) for split in splits[:-1]]
        for i, (split, future) in enumerate(zip(splits[:-1], backtests, strict=True), start=1):
            evaluation, origin_points = future.result()
            _note(progress, f"backtest origin {i} of {len(splits)} (test {split.origin:%Y-%m-%d}) done")
            evaluations.append(evaluation)
            by_origin_points.append(origin_points.table.assign(origin=split.origin))
        timings["backtest"] = time.perf_counter() - tick  # from the same start: includes learn_points
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    tick = time.perf_counter()
    _note(progress, "baselines on the latest origin")
    last = evaluate(model, ts, final, settings, points=learned)
    evaluations.append(last)
    by_origin_points.append(learned.table.assign(origin=final.origin))

    test_scores = pd.concat([e.test_scores for e in evaluations], ignore_index=True)
    _note(progress, f"metrics on {len(test_scores):,} test rows of {len(splits)} origin(s), {ms.bootstrap_rounds} "
                    "bootstrap rounds over origins x customers")
    y = test_scores[LABEL].to_numpy()
    models = {name: (test_scores[f"score__{name}"].to_numpy(), test_scores[f"prob__{name}"].to_numpy())
              for name in [MODEL_NAME, *BASELINES]}
    metrics, metrics_by_origin = backtest_metrics(y, models, test_scores[CUSTOMER_ID].to_numpy(),
                                                  test_scores[ORIGIN].to_numpy(), rounds=ms.bootstrap_rounds,
                                                  seed=ms.seed)
    versus = backtest_versus(y, models[MODEL_NAME][0], {name: models[name][0] for name in BASELINES},
                             test_scores[CUSTOMER_ID].to_numpy(), test_scores[ORIGIN].to_numpy(),
                             rounds=ms.bootstrap_rounds, seed=ms.seed)
    timings["evaluate"] = time.perf_counter() - tick

    _note(progress, "bands and alarm thresholds on the validation cutoffs, alarm precision and recall on the test cutoffs")
    learned_spec = spec.with_learned_points(learned.points, learned.half_life_days)
    policy = alarm_policy(ts, final, learned_spec, last, settings)

    test = final.masks(ts.data)[2]
    last_cutoff = ts.data.loc[test, final.key] == max(final.test)  # the last test cutoff (or period)
    X_last = ts.data.loc[test][last_cutoff.to_numpy()]
    probability = model.probability(X_last[ts.features])
    best = np.argsort(-probability, kind="stable")[:20]
    top = X_last.iloc[best]
    top_reasons = reasons(model, top[[CUSTOMER_ID, CUTOFF, *ts.features]], catalog=spec.catalog)
    top_reasons.insert(2, "probability", probability[best])
    top_reasons.insert(3, "label", top[LABEL].to_numpy())
    train, val, test = final.masks(ts.data)
    y_all = ts.data[LABEL].to_numpy()
    rows = {
        "train": int(train.sum()), "validation": int(val.sum()), "test": int(test.sum()),
        "train_positives": int(y_all[train].sum()), "validation_positives": int(y_all[val].sum()),
        "test_positives": int(y_all[test].sum()), "features": len(ts.features),
        "origins": len(splits), "test_all_origins": len(test_scores), "test_positives_all_origins": int(y.sum()),
    }
    points_over_time = pd.concat(by_origin_points, ignore_index=True)[
        ["origin", "touchpoint", "status", "own_points", "own_logodds", "shared_logodds", "total_logodds"]]
    timings["total"] = time.perf_counter() - started
    return TrainedTask(
        task, learned_spec, model, final, metrics, versus,
        learned.table, learned.half_life_days, learned.half_life_table, rows, test_scores,
        top_reasons.reset_index(drop=True), last.calibrators, splits, metrics_by_origin,
        last.validation_scores, learned.draws, points_over_time, plan, (ts.first_event, ts.data_end),
        {k: round(v, 2) for k, v in timings.items()}, policy=policy,
    )


def _backtest_origin(ts: TrainingSet, split: TimeSplit, settings: Settings) -> tuple[Evaluation, LearnedPoints]:
    """One earlier origin of the backtest: its own model, its own points (no refits) and its evaluation."""
    model = fit_model(ts, split, settings)
    points = learn_points(model, ts, split, settings, refit=None)
    return evaluate(model, ts, split, settings, points=points), points


def truth_agreement(trained: TrainedTask, truth: dict) -> dict:
    """How well the learned points recover the simulator's true weights (Spearman rank correlation).

    Compares the engagement types the truth defines and the model has points for, against the
    regime (before / after the behaviour shift) that covers most training cutoffs. For churn the
    truth's log-hazard weights are negated (points reward touches that lower churn).
    """
    weights = truth["weights"][trained.task]
    shift = truth.get("shift_date")
    regime = "before"
    if shift is not None:
        after = sum(t >= pd.Timestamp(shift, tz="UTC") for t in trained.split.train)
        regime = "after" if after * 2 >= len(trained.split.train) else "before"
    true = weights.get(regime, weights)
    learned_points = trained.points_by_type
    types = [t for t in true if t in learned_points]
    learned = np.array([learned_points[t] for t in types])
    target = TASK_SIGN[trained.task] * np.array([true[t] for t in types])
    rho = spearmanr(learned, target).statistic if len(types) > 2 else float("nan")
    return {"regime": regime, "spearman": float(rho), "types": types,
            "true_weights": dict(zip(types, target.tolist(), strict=True)),
            "learned_points": dict(zip(types, learned.tolist(), strict=True)),
            "half_life_days": trained.half_life_days, "true_half_life_days": truth.get("true_half_life_days")}
