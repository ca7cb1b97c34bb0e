"""The train job: read events, fit and evaluate a task, write the model bundle and its figures.

A bundle (``paths.models_dir / <task>``) holds everything needed to score and to review:

====================  ==================================================================
``model/``            LightGBM booster + calibrator (:meth:`SignalModel.save`)
``spec.json``         the feature spec, learned points and half-life included (scoring
                      rebuilds exactly these features)
``points.csv``        the learned points table (配点表) next to the priors
``metrics.csv``       every model and baseline on the test cutoffs, 95% intervals
``versus.csv``        ROC AUC of the model minus each baseline, paired bootstrap interval
``half_life.csv``     validation AUC of the learned temperature per candidate half-life
``top_reasons.csv``   the 20 highest-scored customers of the last test cutoff, with their reasons
``thresholds.json``   band cut points and alarm thresholds (validation), alarm precision/recall (test)
``summary.json``      split, row counts, settings, truth agreement (simulated data), seconds
``figures/*.png``     points, metrics, gains, calibration, half-life
====================  ==================================================================
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from signals.io.tables import read_events, read_table, write_json, write_table
from signals.io.world import read_truth
from signals.modeling.plots import (
    plot_calibration,
    plot_gains,
    plot_half_life,
    plot_metrics,
    plot_points,
    save_figure,
)
from signals.modeling.training import (
    LEARNED_TEMPERATURE,
    MODEL_NAME,
    TrainedTask,
    fit_task,
    truth_agreement,
)
from signals.settings import Settings

__all__ = ["TrainRun", "load_inputs", "run_train", "write_bundle"]


@dataclass
class TrainRun:
    trained: TrainedTask
    bundle: Path
    truth: dict | None
    seconds: float


def load_inputs(settings: Settings, *, require_static: bool = True) -> tuple[pd.DataFrame, pd.DataFrame | None, dict | None]:
    """Events (required), customers (if the file exists or static columns need it) and the
    simulator's truth (if ``paths.truth`` exists). ``require_static=False``: a missing customers
    table is left for the caller to judge (scoring checks the model's saved spec instead)."""
    paths = settings.paths
    if not Path(paths.events).is_file():
        raise FileNotFoundError(f"no events at {paths.events}: run `signals simulate` or `signals ingest` first")
    events = read_events(paths.events, settings.catalog)
    customers = read_table(paths.customers) if Path(paths.customers).is_file() else None
    if require_static and settings.features.static_columns and customers is None:
        raise FileNotFoundError(f"features.static_columns needs a customers table at {paths.customers}")
    truth = read_truth(paths.truth) if Path(paths.truth).is_file() else None
    return events, customers, truth


def write_bundle(trained: TrainedTask, folder: Path, *, truth: dict | None, settings: Settings, seconds: float) -> Path:
    """Write the model bundle of ``trained`` (see the module docstring) and return its folder."""
    folder = Path(folder)
    trained.model.save(folder / "model")
    (folder / "spec.json").write_text(trained.spec.to_json(), encoding="utf-8")
    write_table(trained.points, folder / "points.csv")
    write_table(trained.metrics, folder / "metrics.csv")
    write_table(trained.versus, folder / "versus.csv")
    write_table(trained.half_life_table, folder / "half_life.csv")
    write_table(trained.top_reasons, folder / "top_reasons.csv")
    if trained.policy is not None:
        (folder / "thresholds.json").write_text(trained.policy.model_dump_json(indent=2), encoding="utf-8")
    agreement = truth_agreement(trained, truth) if truth is not None else None
    summary = {
        "task": trained.task,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "split": trained.split.describe(),
        "rows": trained.rows,
        "best_iteration": trained.model.best_iteration_,
        "half_life_days": trained.half_life_days,
        "metrics": {f"{r.model}.{r.metric}": r.estimate for r in trained.metrics.itertuples()},
        "auc_minus_baseline": {r.baseline: [r.estimate, r.low, r.high] for r in trained.versus.itertuples()},
        "truth_agreement": agreement,
        "alarm": ({"rule": trained.policy.describe(), "validation": trained.policy.validation,
                   "test": trained.policy.test} if trained.policy is not None else None),
        "settings": json.loads(settings.model_dump_json(include={"cutoffs", "labels", "model", "features"})),
        "seconds": round(seconds, 1),
    }
    write_json(summary, folder / "summary.json")
    task = trained.task
    models = [MODEL_NAME, LEARNED_TEMPERATURE, "logistic_regression", "prior_temperature", "rfm", "falling_frequency"]
    truth_points = agreement["true_weights"] if agreement else None
    figures = {
        "points.png": plot_points(trained.points, task=task, truth=truth_points),
        "metrics.png": plot_metrics(trained.metrics, task=task),
        "gains.png": plot_gains(trained.test_scores, task=task, models=models),
        "calibration.png": plot_calibration(trained.test_scores, task=task,
                                            models=[MODEL_NAME, LEARNED_TEMPERATURE, "logistic_regression"]),
        "half_life.png": plot_half_life(trained.half_life_table, task=task, chosen=trained.half_life_days,
                                        true_half_life=truth.get("true_half_life_days") if truth else None),
    }
    for name, fig in figures.items():
        save_figure(fig, folder / "figures" / name)
    return folder


def run_train(
    settings: Settings,
    *,
    task: str,
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainRun:
    """Train ``task`` on ``paths.events`` and write its bundle to ``out_dir`` (default ``paths.models_dir/<task>``)."""
    started = time.perf_counter()
    events, customers, truth = load_inputs(settings)
    trained = fit_task(events, settings, task=task, customers=customers, progress=progress)
    seconds = time.perf_counter() - started
    bundle = write_bundle(trained, Path(out_dir or Path(settings.paths.models_dir) / task), truth=truth,
                          settings=settings, seconds=seconds)
    return TrainRun(trained, bundle, truth, seconds)
