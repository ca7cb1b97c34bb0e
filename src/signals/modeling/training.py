"""Train one task end to end, in memory: the computation behind ``signals train``.

:func:`fit_task` builds the point-in-time training set, splits it in time, fits the LightGBM
model, learns the points table and the temperature half-life, and scores the model and every
baseline on the test cutoffs (never seen while fitting) with bootstrap intervals over
customers. It reads and writes no files; :mod:`signals.jobs.train` does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from signals.cutoffs import training_cutoffs
from signals.dataset import LABEL, build_training_set
from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.features.window import index_events
from signals.labels import horizon_days
from signals.modeling.baselines import (
    LogisticBaseline,
    falling_frequency,
    prior_temperature,
    rfm_score,
)
from signals.modeling.estimators import Calibrator, SignalModel
from signals.modeling.explain import reasons
from signals.modeling.metrics import bootstrap_metrics, paired_auc_difference
from signals.modeling.points import (
    TASK_SIGN,
    choose_half_life,
    learned_temperature,
    points_table,
    touch_effects,
)
from signals.modeling.scoring import ScoringPolicy, evaluate_policy, fit_policy, temperature_table
from signals.modeling.splits import TimeSplit, time_split
from signals.schemas import CUSTOMER_ID, CUTOFF, check_events
from signals.settings import Settings

__all__ = ["MODEL_NAME", "TrainedTask", "fit_task", "truth_agreement"]

MODEL_NAME = "lightgbm"
LEARNED_TEMPERATURE = "learned_temperature"


@dataclass
class TrainedTask:
    """Everything a training run produced (models, tables, the data they were measured on)."""

    task: str
    spec: FeatureSpec
    model: SignalModel
    split: TimeSplit
    metrics: pd.DataFrame            # model x metric: estimate, low, high (test cutoffs)
    versus: pd.DataFrame             # ROC AUC of the model minus each baseline, paired bootstrap interval
    points: pd.DataFrame             # the learned points table (配点表)
    half_life_days: float
    half_life_table: pd.DataFrame
    rows: dict[str, int]
    test_scores: pd.DataFrame        # customer_id, cutoff, label and every model's score / probability
    top_reasons: pd.DataFrame        # the highest-scored rows of the last test cutoff with their reasons
    baseline_calibrators: dict[str, Calibrator] = field(default_factory=dict)
    policy: ScoringPolicy | None = None  # band cut points, alarm thresholds (validation) and alarm metrics (test)
    validation_scores: pd.DataFrame | None = None  # customer_id, cutoff, label, probability, temperatures

    @property
    def points_by_type(self) -> dict[str, float]:
        return dict(zip(self.points["touchpoint"], self.points["learned_points"], strict=True))

    def metric(self, model: str, metric: str) -> float:
        row = self.metrics[(self.metrics["model"] == model) & (self.metrics["metric"] == metric)]
        return float(row["estimate"].iloc[0])


def _note(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def fit_task(
    events: pd.DataFrame,
    settings: Settings,
    *,
    task: str,
    customers: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainedTask:
    """Fit and evaluate ``task`` (``churn`` or ``purchase``) on canonical ``events``.

    The training grid is ``settings.cutoffs.n_training`` cutoffs whose label windows are fully
    observed; :func:`signals.modeling.splits.time_split` divides it (with the embargo of
    ``settings.model.embargo``). ``progress`` receives one line per stage.
    """
    ms = settings.model
    horizon = horizon_days(task, settings.labels)
    spec = FeatureSpec.from_settings(settings)
    events = check_events(events, spec.touchpoints)
    index = index_events(events, spec.touchpoints)  # sorted once, shared by every feature build below
    _note(progress, f"cutoffs: {settings.cutoffs.n_training} {settings.cutoffs.frequency}, {horizon}-day horizon")
    cutoffs = training_cutoffs(
        events, horizon_days=horizon, n_cutoffs=settings.cutoffs.n_training, frequency=settings.cutoffs.frequency,
        timezone=settings.timezone, end=settings.cutoffs.end, customers=customers,
        min_history_days=settings.cutoffs.min_history_days,
    )
    _note(progress, f"features and labels for {len(cutoffs):,} rows")
    data = build_training_set(events, cutoffs, spec, task=task, labels=settings.labels, customers=customers,
                              index=index)
    split = time_split(data[CUTOFF], n_validation=ms.validation_cutoffs, n_test=ms.test_cutoffs,
                       horizon_days=horizon, embargo=ms.embargo)
    train_mask, val_mask, test_mask = split.masks(data)
    features = feature_columns(data)
    X_tr, y_tr = data.loc[train_mask, features], data.loc[train_mask, LABEL].to_numpy()
    X_va, y_va = data.loc[val_mask, features], data.loc[val_mask, LABEL].to_numpy()
    X_te, y_te = data.loc[test_mask, features], data.loc[test_mask, LABEL].to_numpy()

    _note(progress, f"LightGBM on {len(X_tr):,} rows ({int(y_tr.sum()):,} positive), early stopping on {len(X_va):,}")
    model = SignalModel(ms.lightgbm, ms.calibration, ms.seed).fit(X_tr, y_tr, X_va, y_va)

    _note(progress, "baselines")
    scores: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
        MODEL_NAME: (model.decision_function(X_te), model.probability(X_te)),
    }
    calibrators: dict[str, Calibrator] = {}

    def add_baseline(name: str, val_score: np.ndarray, test_score: np.ndarray) -> None:
        calibrators[name] = Calibrator(ms.calibration).fit(val_score, y_va)
        scores[name] = (test_score, calibrators[name].predict(test_score))

    logistic = LogisticBaseline().fit(X_tr, y_tr)
    add_baseline("logistic_regression", logistic.decision_function(X_va), logistic.decision_function(X_te))
    add_baseline("prior_temperature", prior_temperature(X_va, spec, task), prior_temperature(X_te, spec, task))
    add_baseline("rfm", rfm_score(X_tr, X_va, spec, task), rfm_score(X_tr, X_te, spec, task))
    add_baseline("falling_frequency", falling_frequency(X_va, spec, task), falling_frequency(X_te, spec, task))

    _note(progress, f"learned points on {min(ms.points_reference_rows, int(val_mask.sum())):,} validation rows")
    validation_rows = data.loc[val_mask, [CUSTOMER_ID, CUTOFF]]
    reference = validation_rows.sample(n=min(ms.points_reference_rows, len(validation_rows)), random_state=ms.seed)
    effects = touch_effects(model, events, reference, spec, customers=customers)
    points = points_table(effects, reference[CUSTOMER_ID], spec, task=task, rounds=ms.bootstrap_rounds, seed=ms.seed)
    learned = dict(zip(points["touchpoint"], points["learned_points"], strict=True))
    half_life, half_life_table, val_temps = choose_half_life(None, validation_rows, y_va, learned, spec, task=task,
                                                             grid=ms.half_life_grid_days, index=index)
    sign = TASK_SIGN[task]
    temp_val = sign * learned_temperature(val_temps, learned, half_life)
    test_temps = build_features(None, data.loc[test_mask, [CUSTOMER_ID, CUTOFF]], spec.temperature_only((half_life,)),
                                index=index)
    temp_test = sign * learned_temperature(test_temps, learned, half_life)
    add_baseline(LEARNED_TEMPERATURE, temp_val, temp_test)

    _note(progress, "bands and alarm thresholds on the validation cutoffs, alarm precision and recall on the test cutoffs")
    learned_spec = spec.with_learned_points(learned, half_life)
    validation_scores = pd.concat([
        validation_rows.reset_index(drop=True),
        pd.DataFrame({LABEL: y_va, "probability": model.probability(X_va)}),
        temperature_table(index, validation_rows.reset_index(drop=True), learned_spec),
    ], axis=1)
    policy = fit_policy(validation_scores, task=task, settings=settings.scoring)
    test_rows = data.loc[test_mask, [CUSTOMER_ID, CUTOFF]].reset_index(drop=True)
    test_frame = pd.concat([
        pd.DataFrame({LABEL: y_te, "probability": scores[MODEL_NAME][1]}),
        temperature_table(index, test_rows, learned_spec),
    ], axis=1)
    policy = evaluate_policy(policy, test_frame)

    _note(progress, f"metrics on {len(X_te):,} test rows, {ms.bootstrap_rounds} bootstrap rounds over customers")
    test_ids = data.loc[test_mask, CUSTOMER_ID].to_numpy()
    metrics = bootstrap_metrics(y_te, scores, test_ids, rounds=ms.bootstrap_rounds, seed=ms.seed)
    versus = pd.DataFrame([
        {"baseline": name, **paired_auc_difference(y_te, scores[MODEL_NAME][0], score, test_ids,
                                                   rounds=ms.bootstrap_rounds, seed=ms.seed)}
        for name, (score, _) in scores.items() if name != MODEL_NAME
    ])
    test_scores = data.loc[test_mask, [CUSTOMER_ID, CUTOFF, LABEL]].reset_index(drop=True)
    for name, (score, prob) in scores.items():
        test_scores[f"score__{name}"] = score
        test_scores[f"prob__{name}"] = prob
    last_test = data.loc[test_mask, CUTOFF] == max(split.test)
    X_last = data.loc[test_mask][last_test.to_numpy()]
    probability = model.probability(X_last[features])
    best = np.argsort(-probability, kind="stable")[:20]
    top = X_last.iloc[best]
    top_reasons = reasons(model, top[[CUSTOMER_ID, CUTOFF, *features]], catalog=spec.catalog)
    top_reasons.insert(2, "probability", probability[best])
    top_reasons.insert(3, "label", top[LABEL].to_numpy())
    rows = {
        "train": int(train_mask.sum()), "validation": int(val_mask.sum()), "test": int(test_mask.sum()),
        "train_positives": int(y_tr.sum()), "validation_positives": int(y_va.sum()), "test_positives": int(y_te.sum()),
        "features": len(features),
    }
    return TrainedTask(task, learned_spec, model, split, metrics, versus, points,
                       half_life, half_life_table, rows, test_scores, top_reasons.reset_index(drop=True), calibrators,
                       policy=policy, validation_scores=validation_scores)


def truth_agreement(trained: TrainedTask, truth: dict) -> dict:
    """How well the learned points recover the simulator's true weights (Spearman rank correlation).

    Compares the engagement types the truth defines, against the regime (before / after the
    behaviour shift) that covers most training cutoffs. For churn the truth's log-hazard weights
    are negated (points reward touches that lower churn).
    """
    weights = truth["weights"][trained.task]
    shift = truth.get("shift_date")
    regime = "before"
    if shift is not None:
        after = sum(t >= pd.Timestamp(shift, tz="UTC") for t in trained.split.train)
        regime = "after" if after * 2 >= len(trained.split.train) else "before"
    true = weights.get(regime, weights)
    types = [t for t in true if t in trained.points_by_type]
    learned = np.array([trained.points_by_type[t] for t in types])
    target = TASK_SIGN[trained.task] * np.array([true[t] for t in types])
    rho = spearmanr(learned, target).statistic
    return {"regime": regime, "spearman": float(rho), "types": types,
            "true_weights": dict(zip(types, target.tolist(), strict=True)),
            "learned_points": dict(zip(types, learned.tolist(), strict=True)),
            "half_life_days": trained.half_life_days, "true_half_life_days": truth.get("true_half_life_days")}

