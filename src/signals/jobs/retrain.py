"""The retrain job: a challenger on the rolling window ending at an as-of date, compared with the
champion on the same out-of-time cutoffs, promoted only by the configured rule.

For each task, ``signals retrain --as-of DATE``

1. keeps only the events before DATE (what was known then) and fits the challenger with
   :func:`signals.fit_task` on the latest ``cutoffs.n_training`` cutoffs whose label windows
   closed before DATE (its own train / validation / test split, embargoed; a backtest of
   ``mlflow.retrain_backtest_origins`` origins, default 1: the decision reads the latest one);
2. scores the challenger and the current champion (``models:/<prefix>-<task>@champion``) on the
   challenger's test cutoffs, the latest labelled ones, with one paired customer bootstrap;
3. decides with :func:`decide_promotion`: promote when the challenger's ROC AUC is not worse than
   the champion's by more than ``mlflow.promotion.auc_margin`` and its ECE is at most
   ``mlflow.promotion.max_ece``; with no champion yet, the first challenger becomes champion;
4. computes the drift report (PSI per feature between the training window and the as-of
   population; the label base rate then and now) and the points diff against the champion;
5. logs one run (``purchase 2025-10-31``, role ``challenger``, the decision and its reason as
   tags, the champion's metrics next to the challenger's), registers the pyfunc model as a new
   version, points ``challenger`` at it and, if promoted, moves ``champion`` in one registry call.

The registry is touched last: a failure before step 5 leaves the registry as it was, and a
failure during step 5 leaves ``champion`` where it was (an alias moves whole or not at all); the
error says which.

:func:`run_backfill` replays this monthly (``--from --to --every 1M``) under one parent run and
plots each touchpoint's learned points per retrain (``points_over_time.png``).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signals.cutoffs import as_of_instant, scoring_cutoffs, training_cutoffs
from signals.dataset import LABEL, build_training_set
from signals.errors import DataError
from signals.features.matrix import build_features, feature_columns
from signals.io.tables import write_json, write_table
from signals.io.tracking import (
    CHALLENGER,
    CHAMPION,
    Tracker,
    as_of_label,
    data_source,
    log_trained,
    model_name,
    note,
)
from signals.labels import TASKS, horizon_days
from signals.modeling.drift import base_rate_change, drift_report, points_and_effect, points_diff
from signals.modeling.metrics import bootstrap_metrics, paired_auc_difference
from signals.modeling.pyfunc import SignalBundle, load_signal_model
from signals.modeling.training import TrainedTask, fit_task, truth_agreement
from signals.schemas import CUSTOMER_ID, CUTOFF, TS
from signals.settings import PromotionSettings, Settings

__all__ = [
    "BackfillResult",
    "Decision",
    "RetrainResult",
    "TaskRetrain",
    "as_of_dates",
    "decide_promotion",
    "evaluate_bundle",
    "latest_test_rows",
    "points_history",
    "run_backfill",
    "retrain_settings",
    "run_retrain",
]


# --------------------------------------------------------------------------------------------
# the promotion rule (pure)

@dataclass(frozen=True)
class Decision:
    """Whether the challenger becomes champion, and why (logged as the ``decision`` / ``reason`` tags)."""

    promote: bool
    reason: str

    @property
    def label(self) -> str:
        return "promote" if self.promote else "keep champion"


def decide_promotion(challenger: dict[str, float], champion: dict[str, float] | None,
                     rule: PromotionSettings) -> Decision:
    """The promotion rule on metrics measured on the same test cutoffs.

    ``challenger`` and ``champion`` hold ``roc_auc`` and ``ece``. Promote when
    ``challenger AUC >= champion AUC - auc_margin`` and ``challenger ECE <= max_ece``; with no
    champion (``None``), the first challenger is promoted whatever its metrics (the reason says
    if it misses the ECE bound).

    >>> rule = PromotionSettings(auc_margin=0.005, max_ece=0.02)
    >>> decide_promotion({"roc_auc": 0.70, "ece": 0.01}, {"roc_auc": 0.72, "ece": 0.01}, rule).promote
    False
    >>> decide_promotion({"roc_auc": 0.716, "ece": 0.01}, {"roc_auc": 0.72, "ece": 0.01}, rule).reason
    'ROC AUC 0.7160 vs champion 0.7200 (-0.0040, margin 0.005) and ECE 0.0100 <= 0.02'
    >>> decide_promotion({"roc_auc": 0.75, "ece": 0.05}, {"roc_auc": 0.72, "ece": 0.01}, rule).reason
    'ECE 0.0500 above the bound 0.02 (ROC AUC 0.7500 vs champion 0.7200)'
    >>> decide_promotion({"roc_auc": 0.6, "ece": 0.05}, None, rule)
    Decision(promote=True, reason='no champion yet: the first challenger becomes champion (ECE 0.0500 above the bound 0.02)')
    """
    auc, ece = challenger["roc_auc"], challenger["ece"]
    ece_ok = bool(np.isfinite(ece) and ece <= rule.max_ece)
    if champion is None:
        note_ = "" if ece_ok else f" (ECE {ece:.4f} above the bound {rule.max_ece:g})"
        return Decision(True, f"no champion yet: the first challenger becomes champion{note_}")
    diff = auc - champion["roc_auc"]
    auc_ok = bool(np.isfinite(diff) and diff >= -rule.auc_margin)
    if not ece_ok:
        return Decision(False, f"ECE {ece:.4f} above the bound {rule.max_ece:g} "
                               f"(ROC AUC {auc:.4f} vs champion {champion['roc_auc']:.4f})")
    if not auc_ok:
        return Decision(False, f"ROC AUC {auc:.4f} vs champion {champion['roc_auc']:.4f} ({diff:+.4f}) is worse "
                               f"by more than the margin {rule.auc_margin:g}")
    return Decision(True, f"ROC AUC {auc:.4f} vs champion {champion['roc_auc']:.4f} ({diff:+.4f}, margin "
                          f"{rule.auc_margin:g}) and ECE {ece:.4f} <= {rule.max_ece:g}")


def as_of_dates(start, end, every: str = "1M") -> list[pd.Timestamp]:
    """As-of dates from ``start`` to ``end`` (inclusive) every ``every``: ``1M`` (months), ``2W``
    (weeks) or ``14D`` (days). Months keep the day of the month (clipped to the month's end).

    >>> [f"{d:%Y-%m-%d}" for d in as_of_dates("2025-01-01", "2025-04-15", "1M")]
    ['2025-01-01', '2025-02-01', '2025-03-01', '2025-04-01']
    >>> [f"{d:%Y-%m-%d}" for d in as_of_dates("2025-01-01", "2025-01-20", "1W")]
    ['2025-01-01', '2025-01-08', '2025-01-15']
    """
    match = re.fullmatch(r"\s*(\d+)\s*([MWD])\s*", str(every).upper())
    if not match or int(match[1]) == 0:
        raise ValueError(f"--every must look like 1M, 2W or 14D, got {every!r}")
    n, unit = int(match[1]), match[2]
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if last < first:
        raise ValueError(f"--to ({last:%Y-%m-%d}) is before --from ({first:%Y-%m-%d})")
    step = {"M": pd.DateOffset(months=n), "W": pd.DateOffset(weeks=n), "D": pd.DateOffset(days=n)}[unit]
    out, k = [], 0
    while (current := first + step * k) <= last:
        out.append(current)
        k += 1
    return out


# --------------------------------------------------------------------------------------------
# evaluation on the challenger's test rows

def evaluate_bundle(bundle: SignalBundle, events: pd.DataFrame, rows: pd.DataFrame, *,
                    customers: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw score and calibrated probability of a saved model on ``rows`` (``customer_id, cutoff``),
    with features rebuilt from ``events`` by the model's own spec (types it does not know are
    invisible to it, as they would be when it scores)."""
    known = events[events["touchpoint"].astype(str).isin(bundle.spec.touchpoints)]
    X = build_features(known, rows[[CUSTOMER_ID, CUTOFF]].reset_index(drop=True), bundle.spec, customers=customers)
    X_model = bundle.model_input(X)
    return bundle.model.decision_function(X_model), bundle.model.probability(X_model)


def latest_test_rows(trained: TrainedTask) -> pd.DataFrame:
    """The test rows of the kept model's origin (the latest out-of-time cutoffs), with its scores.

    ``trained.test_scores`` holds every backtest origin's test rows, each scored by that origin's
    own model; only the latest origin's were scored by the model a retrain registers.
    """
    scores = trained.test_scores
    if "origin" in scores.columns:
        return scores[scores["origin"] == trained.split.origin].reset_index(drop=True)
    return scores[scores[CUTOFF].isin(trained.split.test)].reset_index(drop=True)


def _comparison(trained: TrainedTask, champion_scores: tuple[np.ndarray, np.ndarray] | None,
                settings: Settings) -> tuple[pd.DataFrame, dict[str, float] | None]:
    """Challenger and champion metrics on the same rows and bootstrap draws, and the paired AUC difference."""
    ms = settings.model
    scores = latest_test_rows(trained)
    y, ids = scores[LABEL].to_numpy(), scores[CUSTOMER_ID].to_numpy()
    models = {"challenger": (scores["score__lightgbm"].to_numpy(), scores["prob__lightgbm"].to_numpy())}
    if champion_scores is not None:
        models["champion"] = champion_scores
    table = bootstrap_metrics(y, models, ids, rounds=ms.bootstrap_rounds, seed=ms.seed)
    paired = None
    if champion_scores is not None:
        paired = paired_auc_difference(y, models["challenger"][0], champion_scores[0], ids,
                                       rounds=ms.bootstrap_rounds, seed=ms.seed)
    return table, paired


def _metric(table: pd.DataFrame, model: str) -> dict[str, float]:
    part = table[table["model"] == model]
    return dict(zip(part["metric"], part["estimate"].astype(float), strict=True))


# --------------------------------------------------------------------------------------------
# the job

@dataclass
class TaskRetrain:
    """One task's retrain: the challenger, the comparison, the decision and what moved."""

    task: str
    as_of: pd.Timestamp
    trained: TrainedTask
    decision: Decision
    comparison: pd.DataFrame            # model (challenger / champion) x metric: estimate, low, high
    paired_auc: dict[str, float] | None  # challenger minus champion ROC AUC, paired bootstrap
    champion_before: str | None          # the champion's version before this retrain
    drift: pd.DataFrame
    base_rate: dict[str, float]
    points_diff: pd.DataFrame
    run_id: str | None = None
    version: str | None = None
    champion_after: str | None = None
    truth: dict | None = None
    champion_scores: tuple[np.ndarray, np.ndarray] | None = None  # raw score, probability on the test rows
    label: str = ""                      # the as-of date in the config's time zone (run names, tags)
    seconds: float = 0.0
    seconds_by_step: dict[str, float] = field(default_factory=dict)  # train, compare, drift, track

    @property
    def test_rows(self) -> pd.DataFrame:
        """The rows both models were scored on (customer_id, cutoff, label, the challenger's scores)."""
        return latest_test_rows(self.trained)

    @property
    def challenger_metrics(self) -> dict[str, float]:
        return _metric(self.comparison, "challenger")

    @property
    def champion_metrics(self) -> dict[str, float] | None:
        return _metric(self.comparison, "champion") if self.champion_before is not None else None


@dataclass
class RetrainResult:
    as_of: pd.Timestamp
    tasks: dict[str, TaskRetrain] = field(default_factory=dict)
    seconds: float = 0.0


def _note(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _load_inputs(settings: Settings):
    from signals.jobs.train import load_inputs

    return load_inputs(settings)


DRIFT_SAMPLE_ROWS = 30_000  # rows per side of the drift report: PSI over deciles needs no more


def _sample(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    if len(rows) <= DRIFT_SAMPLE_ROWS:
        return rows
    return rows.sample(n=DRIFT_SAMPLE_ROWS, random_state=seed).sort_values([CUTOFF, CUSTOMER_ID], kind="stable")


def _drift(trained: TrainedTask, events: pd.DataFrame, as_of: pd.Timestamp, settings: Settings,
           customers: pd.DataFrame | None) -> tuple[pd.DataFrame, dict[str, float]]:
    """PSI per feature between the challenger's training rows and the eligible as-of population
    (each a random sample of at most ``DRIFT_SAMPLE_ROWS`` (customer, cutoff) rows), and the
    label base rate of the training rows vs the latest labelled (test) rows."""
    task = trained.task
    horizon = horizon_days(task, settings.labels)
    grid = training_cutoffs(events, horizon_days=horizon, n_cutoffs=settings.cutoffs.n_training,
                            frequency=settings.cutoffs.frequency, timezone=settings.timezone, end=None,
                            customers=customers, min_history_days=settings.cutoffs.min_history_days)
    grid = _sample(grid[grid[CUTOFF].isin(trained.split.train)], settings.model.seed)
    spec = trained.spec.model_copy(update={"learned_points": None, "learned_half_life_days": None})
    reference = build_training_set(events, grid, spec, task=task, labels=settings.labels, customers=customers)
    population = _sample(scoring_cutoffs(events, as_of, customers=customers), settings.model.seed)
    # eligibility at the as-of date uses only the past; the (empty) future gives no label
    current = build_training_set(events, population, spec, task=task, labels=settings.labels, customers=customers)
    features = [c for c in feature_columns(reference) if c in trained.model.feature_names_]
    report = drift_report(reference, current, features)
    rates = base_rate_change(reference[LABEL].to_numpy(), latest_test_rows(trained)[LABEL].to_numpy())
    rates["current_population_rows"] = int(len(current))
    return report, rates


def retrain_settings(settings: Settings) -> Settings:
    """The settings a retrain fits with: the rolling window ends at the as-of date (no
    ``cutoffs.end``) and the challenger's backtest has ``mlflow.retrain_backtest_origins`` origins
    (null: ``model.backtest_origins``). The kept model, its points and the test cutoffs the decision
    reads are those of the latest origin whatever the count.

    >>> from signals.settings import load_settings
    >>> retrain_settings(load_settings()).model.backtest_origins
    1
    >>> retrain_settings(load_settings(overrides=["mlflow.retrain_backtest_origins=null"])).model.backtest_origins
    4
    """
    origins = settings.mlflow.retrain_backtest_origins or settings.model.backtest_origins
    return settings.model_copy(update={"cutoffs": settings.cutoffs.model_copy(update={"end": None}),
                                       "model": settings.model.model_copy(update={"backtest_origins": origins})})


def _retrain_task(tracker: Tracker | None, settings: Settings, task: str, as_of: pd.Timestamp,
                  events: pd.DataFrame, customers: pd.DataFrame | None, truth: dict | None, *,
                  parent_run_id: str | None, progress: Callable[[str], None] | None) -> TaskRetrain:
    started = time.perf_counter()
    wall_started = time.time()
    label = as_of_label(as_of, settings.timezone)
    name = model_name(settings, task)
    say = lambda message: _note(progress, f"{task} {label}: {message}")  # noqa: E731

    champion_version = tracker.alias_version(name, CHAMPION) if tracker is not None else None
    champion_as_of = (champion_version.tags or {}).get("as_of_utc") if champion_version is not None else None
    if champion_as_of and pd.Timestamp(champion_as_of) > as_of:
        raise DataError(
            f"{task}: the champion (version {champion_version.version}) is as of {champion_version.tags.get('as_of')}, "
            f"later than this retrain's as-of {label}: a challenger must be trained on data at least as recent "
            f"(use a later --as-of, or another mlflow.registered_model_prefix to replay history)")
    say(f"training the challenger on the window ending {label}")
    steps: dict[str, float] = {}
    tick = time.perf_counter()
    trained = fit_task(events, settings, task=task, customers=customers,
                       progress=(lambda m: say(f"  {m}")) if progress else None)
    steps["train"] = time.perf_counter() - tick
    tick = time.perf_counter()
    champion: SignalBundle | None = None
    champion_scores = None
    scratch = tempfile.TemporaryDirectory(prefix="signals-champion-")
    if champion_version is not None:
        say(f"scoring the champion (version {champion_version.version}) on the same test cutoffs")
        champion = load_signal_model(f"models:/{name}/{champion_version.version}", tracking_uri=tracker.uri,
                                     registry_uri=tracker.registry_uri, dst=scratch.name)
        first_test = min(trained.split.test)
        seen = champion.info.get("fitted_labels_end")
        if seen is not None and pd.Timestamp(seen) > first_test:
            raise DataError(
                f"{task}: the champion (version {champion_version.version}, as of {champion.info.get('as_of')}) was "
                f"fitted on labels up to {pd.Timestamp(seen):%Y-%m-%d}, after this retrain's first test cutoff "
                f"{first_test:%Y-%m-%d}: comparing them there would score the champion on outcomes it has seen. "
                f"Retrain at a later --as-of than the champion's")
        champion_scores = evaluate_bundle(champion, events, latest_test_rows(trained), customers=customers)
    comparison, paired = _comparison(trained, champion_scores, settings)
    challenger_m = _metric(comparison, "challenger")
    champion_m = _metric(comparison, "champion") if champion_scores is not None else None
    decision = decide_promotion(challenger_m, champion_m, settings.mlflow.promotion)
    say(f"decision: {decision.label} ({decision.reason})")
    steps["compare"] = time.perf_counter() - tick

    say("drift report and points diff")
    tick = time.perf_counter()
    drift, rates = _drift(trained, events, as_of, settings, customers)
    if champion is not None:
        rates["champion_train_rate"] = _champion_train_rate(champion)
    diff = points_diff(trained.points, champion.points if champion is not None else None)
    scratch.cleanup()
    result = TaskRetrain(task, as_of, trained, decision, comparison, paired,
                         None if champion_version is None else str(champion_version.version),
                         drift, rates, diff, truth=truth, champion_scores=champion_scores, label=label,
                         seconds_by_step=steps)
    steps["drift"] = time.perf_counter() - tick
    tick = time.perf_counter()
    if tracker is not None:
        _track(tracker, result, settings, events, customers, parent_run_id=parent_run_id, say=say,
               started=wall_started)
    else:
        result.champion_after = result.champion_before
    steps["track"] = time.perf_counter() - tick
    result.seconds = time.perf_counter() - started
    return result


def _champion_train_rate(champion: SignalBundle) -> float:
    rows = champion.info.get("rows") or {}
    n, pos = rows.get("train"), rows.get("train_positives")
    return float(pos) / float(n) if n else float("nan")


def _retrain_metrics(result: TaskRetrain) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in result.comparison.itertuples():
        key = f"{r.model}.{r.metric}"
        out[key], out[f"{key}_low"], out[f"{key}_high"] = r.estimate, r.low, r.high
    if result.paired_auc is not None:
        p = result.paired_auc
        out["challenger_minus_champion.roc_auc"] = p["estimate"]
        out["challenger_minus_champion.roc_auc_low"] = p["low"]
        out["challenger_minus_champion.roc_auc_high"] = p["high"]
    drift = result.drift
    out["drift.max_psi"] = float(drift["psi"].max()) if len(drift) else float("nan")
    out["drift.features_major"] = float((drift["level"] == "major").sum())
    out["drift.features_moderate"] = float((drift["level"] == "moderate").sum())
    for key, value in result.base_rate.items():
        out[f"base_rate.{key}"] = value
    for r in result.points_diff.itertuples():
        out[f"points_change.{r.touchpoint}"] = r.change
    out["promoted"] = float(result.decision.promote)
    for step, seconds in result.seconds_by_step.items():
        out[f"seconds.retrain.{step}"] = seconds
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(float(v))}


def _track(tracker: Tracker, result: TaskRetrain, settings: Settings, events: pd.DataFrame,
           customers: pd.DataFrame | None, *, parent_run_id: str | None, say: Callable[[str], None],
           started: float) -> None:
    from signals.jobs.train import write_bundle

    task, trained, decision = result.task, result.trained, result.decision
    name = model_name(settings, task)
    label = as_of_label(result.as_of, settings.timezone)
    before = result.champion_before
    unchanged = (f"{name}@{CHAMPION} still points at version {before}" if before is not None
                 else f"{name} has no {CHAMPION} yet") + "; nothing was promoted"
    tags = {"task": task, "as_of": label, "role": CHALLENGER, "data_source": data_source(settings, result.truth),
            "decision": decision.label, "reason": decision.reason, "champion_before": before or "none",
            "mlflow.note.content": note(trained, extra=f" Decision: **{decision.label}**: {decision.reason}.")}
    run_id = tracker.start_run(f"{task} {label}", tags, parent_run_id=parent_run_id, started=started)
    result.run_id = run_id
    try:
        with tempfile.TemporaryDirectory(prefix="signals-retrain-") as tmp:
            say("logging the run (params, metrics, bundle, pyfunc model)")
            bundle = write_bundle(trained, Path(tmp) / "bundle", truth=result.truth, settings=settings,
                                  seconds=time.time() - started)
            with tracker.step("logging the run", state=unchanged):
                log_trained(tracker, run_id, trained, bundle, settings, events=events, customers=customers,
                            as_of=result.as_of)
            report = Path(tmp) / "retrain"
            write_table(result.drift, report / "drift.csv")
            write_table(result.points_diff, report / "points_diff.csv")
            write_table(result.comparison, report / "comparison.csv")
            write_json({"as_of": result.as_of.isoformat(), "task": task, "decision": decision.label,
                        "reason": decision.reason, "promote": decision.promote, "champion_before": before,
                        "rule": settings.mlflow.promotion.model_dump(), "paired_auc": result.paired_auc,
                        "base_rate": result.base_rate}, report / "decision.json")
            tracker.log_artifacts(run_id, report, "retrain")
            tracker.log(run_id, metrics=_retrain_metrics(result))
        say("registering the model version")
        with tracker.step("registering the model version", state=unchanged):
            version = tracker.register(name, run_id, tags={"as_of": label, "as_of_utc": result.as_of.isoformat(),
                                                           "task": task, "decision": decision.label})
        result.version = str(version.version)
        tracker.set_alias(name, CHALLENGER, version.version, state=unchanged)
        tracker.log(run_id, tags={"model_version": result.version})
        if decision.promote:
            say(f"moving {CHAMPION} to version {version.version}")
            tracker.set_alias(name, CHAMPION, version.version, state=unchanged)
            result.champion_after = result.version
            tracker.log(run_id, tags={"role": CHAMPION})
        else:
            result.champion_after = before
    except BaseException as exc:
        tracker.fail_run(run_id, exc)
        raise
    tracker.end_run(run_id)


def _truncate(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    known = events[events[TS] < as_of]
    if len(known) == 0:
        raise DataError(f"no events before {as_of:%Y-%m-%d %H:%M} UTC: nothing to retrain on")
    return known.reset_index(drop=True)


def run_retrain(
    settings: Settings,
    *,
    as_of,
    tasks: Sequence[str] = TASKS,
    track: bool = True,
    progress: Callable[[str], None] | None = None,
    inputs: tuple[pd.DataFrame, pd.DataFrame | None, dict | None] | None = None,
    tracker: Tracker | None = None,
    parent_run_id: str | None = None,
) -> RetrainResult:
    """Retrain ``tasks`` as of ``as_of`` (a date: its first moment in ``settings.timezone``).

    ``inputs`` (events, customers, truth) default to the files of ``settings.paths``. With
    ``track=False`` nothing is logged or registered (the comparison then has no champion).
    Raises :class:`~signals.errors.TrackingError` when the store fails (before any training when
    it cannot be reached at all) and :class:`~signals.errors.DataError` when the data cannot
    support the retrain.
    """
    started = time.perf_counter()
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    instant = as_of_instant(as_of, settings.timezone)
    if track and tracker is None:
        tracker = Tracker.connect(settings)  # fail fast, before any training
    events, customers, truth = inputs if inputs is not None else _load_inputs(settings)
    known = _truncate(events, instant)
    window = retrain_settings(settings)
    result = RetrainResult(instant)
    for task in tasks:
        result.tasks[task] = _retrain_task(tracker if track else None, window, task, instant, known, customers,
                                           truth, parent_run_id=parent_run_id, progress=progress)
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class BackfillResult:
    retrains: list[RetrainResult]
    history: pd.DataFrame               # as_of, task, touchpoint, points, effect, ... (points_history)
    figure: Path | None
    parent_run_id: str | None
    seconds: float = 0.0


def points_history(retrains: Sequence[RetrainResult]) -> pd.DataFrame:
    """Every retrain's learned points in one long table: ``as_of, task, touchpoint, points`` (the
    type's own points), ``effect`` (its log-odds effect), the rest of the points table, and the
    retrain's decision and version."""
    frames = []
    for retrain in retrains:
        for task, r in retrain.tasks.items():
            table = r.trained.points.reset_index(drop=True)
            standard = points_and_effect(table)
            part = pd.concat([standard, table.drop(columns=["touchpoint"])], axis=1)
            part.insert(0, "task", task)
            part.insert(0, "as_of", retrain.as_of)
            if r.truth is not None:
                part["truth_regime"] = truth_agreement(r.trained, r.truth)["regime"]
            part["promoted"] = r.decision.promote
            part["version"] = r.version
            part["challenger_auc"] = r.challenger_metrics.get("roc_auc")
            frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def run_backfill(
    settings: Settings,
    *,
    start,
    end,
    every: str = "1M",
    tasks: Sequence[str] = TASKS,
    track: bool = True,
    progress: Callable[[str], None] | None = None,
    show_progress: bool = True,
    inputs: tuple[pd.DataFrame, pd.DataFrame | None, dict | None] | None = None,
    out_dir: Path | None = None,
    on_retrain: Callable[[RetrainResult], Any] | None = None,
) -> BackfillResult:
    """Replay retraining at every as-of date from ``start`` to ``end`` (see :func:`as_of_dates`).

    All retrains run under one parent run (role ``backfill``) that also gets
    ``points_over_time.png`` / ``.csv``, written as well to ``out_dir`` (default
    ``paths.reports_dir``). ``on_retrain`` is called after each retrain (e.g. to print it).
    """
    from signals._progress import track as progress_bar
    from signals.io.atomic import atomic_file
    from signals.modeling.plots import plot_points_over_time

    started = time.perf_counter()
    dates = as_of_dates(start, end, every)
    tracker = Tracker.connect(settings) if track else None
    events, customers, truth = inputs if inputs is not None else _load_inputs(settings)
    parent = None
    if tracker is not None:
        first, last = as_of_label(dates[0]), as_of_label(dates[-1])
        parent = tracker.start_run(f"backfill {first}..{last} every {every}",
                                   {"role": "backfill", "task": ",".join(tasks), "as_of": last,
                                    "data_source": data_source(settings, truth)})
    retrains: list[RetrainResult] = []
    try:
        for date in progress_bar(dates, description="retrains", enabled=show_progress):
            retrain = run_retrain(settings, as_of=date, tasks=tasks, track=track, progress=progress,
                                  inputs=(events, customers, truth), tracker=tracker, parent_run_id=parent)
            retrains.append(retrain)
            if on_retrain is not None:
                on_retrain(retrain)
        history = points_history(retrains)
        folder = Path(out_dir or settings.paths.reports_dir)
        figure = folder / "points_over_time.png"
        fig = plot_points_over_time(history, truth=truth)
        with atomic_file(figure) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        write_table(history, folder / "points_over_time.csv")
        if tracker is not None:
            tracker.log_artifact(parent, figure)
            tracker.log_artifact(parent, folder / "points_over_time.csv")
            tracker.log(parent, metrics={"retrains": len(retrains),
                                         "promotions": float(sum(r.decision.promote for x in retrains
                                                                 for r in x.tasks.values()))})
    except BaseException as exc:
        if tracker is not None:
            tracker.fail_run(parent, exc)
        raise
    if tracker is not None:
        tracker.end_run(parent)
    return BackfillResult(retrains, history, figure, parent, time.perf_counter() - started)

