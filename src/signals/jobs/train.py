"""The train job: read events, fit and evaluate a task, write the model bundle and its figures.

A bundle (``paths.models_dir / <task>``) holds everything needed to score and to review:

==========================  ============================================================
``model/``                  LightGBM booster + calibrator (:meth:`SignalModel.save`) of the
                            latest backtest origin
``spec.json``               the feature spec, learned points and half-life included (scoring
                            rebuilds exactly these features)
``points.csv``              the learned points table (配点表): own-type points with refit
                            intervals, shared and total parts, log-odds effects, points per
                            typical month, "n/a" types with their reason
``points_refits.csv``       each refit behind the points' intervals
``points_by_origin.csv``    the points of every backtest origin's model (how they move)
``metrics.csv``             every model and baseline, pooled over the backtest origins, with
                            intervals over origins x customers
``metrics_by_origin.csv``   the same per origin
``versus.csv``              ROC AUC of the model minus each baseline, paired two-way bootstrap
``half_life.csv``           validation AUC of the learned temperature per candidate half-life
``top_reasons.csv``         the 20 highest-scored customers of the last test cutoff, with reasons
``validation_scores.parquet``  the kept model's validation rows with every model's score and
                            probability (band cut points and alarm thresholds are chosen here)
``thresholds.json``         band cut points and alarm thresholds (validation), alarm precision /
                            recall (test), read by ``signals score``
``test_scores.parquet``     every origin's test rows with every model's score and probability
``summary.json``            split and origins, row counts, settings, metrics with ``_low`` /
                            ``_high``, truth agreement (simulated data), seconds per step
``figures/*.png``           points, metrics, metrics by origin, gains, calibration, half-life
==========================  ============================================================

The bundle is written whole or not at all (:func:`signals.io.atomic.atomic_directory`), and
one run at a time per bundle (:func:`signals.io.atomic.folder_lock`: a second run fails at once,
saying who holds it). The model is saved to ``<bundle>.checkpoint/`` as soon as it is fitted,
so a later step that fails (or a killed process) never costs the finished model; the
checkpoint is removed once the bundle is in place.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from signals.errors import SignalsError
from signals.io.atomic import atomic_directory, folder_lock
from signals.io.tables import read_events, read_table, read_user_table, write_json, write_table
from signals.io.world import read_truth
from signals.modeling.plots import (
    plot_calibration,
    plot_gains,
    plot_half_life,
    plot_metrics,
    plot_metrics_by_origin,
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

__all__ = ["TrainRun", "checkpoint_folder", "load_inputs", "run_train", "summary_of", "write_bundle"]


@dataclass
class TrainRun:
    trained: TrainedTask
    bundle: Path
    truth: dict | None
    seconds: float
    run_id: str | None = None  # the MLflow run, when tracked


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


def read_custom_cutoffs(settings: Settings) -> pd.DataFrame | None:
    """The cutoffs table of ``cutoffs.kind: table`` as read (None for the other kinds)."""
    cs = settings.cutoffs
    if cs.kind != "table":
        return None
    return read_user_table(cs.table, what="cutoffs.table")


def _dates(stamps) -> list[str]:
    return [f"{pd.Timestamp(t):%Y-%m-%d}" for t in stamps]


def summary_of(trained: TrainedTask, *, truth: dict | None, settings: Settings, seconds: float,
               auto_split: bool = False) -> dict:
    """The JSON summary of a run (strict JSON once written: NaN becomes null).

    ``metrics`` is flat, ``<model>.<metric>`` with ``..._low`` / ``..._high`` interval ends (pooled
    over the backtest origins), ready to log as tracking metrics.
    """
    metrics: dict[str, float] = {}
    for r in trained.metrics.itertuples():
        metrics[f"{r.model}.{r.metric}"] = r.estimate
        metrics[f"{r.model}.{r.metric}_low"] = r.low
        metrics[f"{r.model}.{r.metric}_high"] = r.high
    points = trained.points
    return {
        "task": trained.task,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_range": _dates(trained.data_range) if trained.data_range else None,
        "split": trained.split.describe(),
        "auto_split": auto_split,
        "plan": trained.plan.__dict__ if trained.plan else None,
        "origins": [{"origin": f"{s.origin:%Y-%m-%d}", "train": _dates(s.train), "validation": _dates(s.validation),
                     "test": _dates(s.test), "embargo": s.mode} for s in trained.splits],
        "rows": trained.rows,
        "best_iteration": trained.model.best_iteration_,
        "half_life_days": trained.half_life_days,
        "metrics": metrics,
        "auc_minus_baseline": {r.baseline: [r.estimate, r.low, r.high] for r in trained.versus.itertuples()},
        "points": {r.touchpoint: {"status": r.status, "own_points": r.own_points, "own_points_low": r.own_points_refit_low,
                                  "own_points_high": r.own_points_refit_high, "own_logodds": r.own_logodds,
                                  "shared_logodds": r.shared_logodds, "total_logodds": r.total_logodds}
                   for r in points.itertuples()},
        "points_interval": str(points["interval"].iloc[0]) if len(points) else "none",
        "truth_agreement": truth_agreement(trained, truth) if truth is not None else None,
        "alarm": ({"rule": trained.policy.describe(), "validation": trained.policy.validation,
                   "test": trained.policy.test} if trained.policy is not None else None),
        "settings": json.loads(settings.model_dump_json(include={"cutoffs", "labels", "model", "features", "scoring"})),
        "seconds": round(seconds, 1),
        "seconds_by_step": trained.seconds,
    }


def write_bundle(trained: TrainedTask, folder: Path, *, truth: dict | None, settings: Settings, seconds: float,
                 auto_split: bool = False) -> Path:
    """Write the model bundle of ``trained`` (see the module docstring) into ``folder`` and return it.

    Writes in place: :func:`run_train` calls it on a temporary folder that then replaces the bundle.
    """
    folder = Path(folder)
    trained.model.save(folder / "model")
    (folder / "spec.json").write_text(trained.spec.to_json(), encoding="utf-8")
    write_table(trained.points, folder / "points.csv")
    write_table(trained.point_draws, folder / "points_refits.csv")
    write_table(trained.points_by_origin, folder / "points_by_origin.csv")
    write_table(trained.metrics, folder / "metrics.csv")
    write_table(trained.metrics_by_origin, folder / "metrics_by_origin.csv")
    write_table(trained.versus, folder / "versus.csv")
    write_table(trained.half_life_table, folder / "half_life.csv")
    write_table(trained.top_reasons, folder / "top_reasons.csv")
    if trained.policy is not None:
        (folder / "thresholds.json").write_text(trained.policy.model_dump_json(indent=2), encoding="utf-8")
    write_table(trained.validation_scores, folder / "validation_scores.parquet")
    write_table(trained.test_scores, folder / "test_scores.parquet")
    summary = summary_of(trained, truth=truth, settings=settings, seconds=seconds, auto_split=auto_split)
    write_json(summary, folder / "summary.json")
    task = trained.task
    models = [MODEL_NAME, LEARNED_TEMPERATURE, "logistic_regression", "prior_temperature", "rfm", "falling_frequency"]
    agreement = summary["truth_agreement"]
    truth_points = agreement["true_weights"] if agreement else None
    figures = {
        "points.png": plot_points(trained.points, task=task, truth=truth_points),
        "metrics.png": plot_metrics(trained.metrics, task=task),
        "metrics_by_origin.png": plot_metrics_by_origin(trained.metrics_by_origin, task=task, models=models),
        "gains.png": plot_gains(trained.test_scores, task=task, models=models),
        "calibration.png": plot_calibration(trained.test_scores, task=task,
                                            models=[MODEL_NAME, LEARNED_TEMPERATURE, "logistic_regression"]),
        "half_life.png": plot_half_life(trained.half_life_table, task=task, chosen=trained.half_life_days,
                                        true_half_life=truth.get("true_half_life_days") if truth else None),
    }
    for name, fig in figures.items():
        save_figure(fig, folder / "figures" / name)
    return folder


def checkpoint_folder(bundle: Path) -> Path:
    """Where :func:`run_train` keeps the fitted model until the whole bundle is written."""
    bundle = Path(bundle)
    return bundle.with_name(f"{bundle.name}.checkpoint")


def run_train(
    settings: Settings,
    *,
    task: str,
    out_dir: Path | None = None,
    auto_split: bool = False,
    progress: Callable[[str], None] | None = None,
    track: bool = False,
) -> TrainRun:
    """Train ``task`` on ``paths.events`` and write its bundle to ``out_dir`` (default ``paths.models_dir/<task>``).

    Holds the bundle's lock for the whole run, saves the fitted model to
    :func:`checkpoint_folder` before the later steps, and replaces the bundle in one step at the
    end. Nothing is written when the data cannot support the task (a
    :class:`~signals.errors.DataError` before the model is fitted). With ``track=True`` the run is
    also logged to MLflow (:func:`signals.io.tracking.log_training_run`) once the bundle is in place.

    Raises
    ------
    OutputError
        Another run holds the bundle, or it cannot be written.
    DataError
        The split does not fit the history, or a validation / test period has too few positives.
    TrackingError
        ``track=True`` and the MLflow store cannot be reached (checked before training) or fails
        while the run is logged (the bundle is written by then).
    """
    started = time.perf_counter()
    tracker = None
    if track:
        from signals.io.tracking import Tracker, log_training_run

        tracker = Tracker.connect(settings)  # fail fast, before any training
    bundle = Path(out_dir or Path(settings.paths.models_dir) / task)
    checkpoint = checkpoint_folder(bundle)
    with folder_lock(bundle, what=f"signals train --task {task}"):
        events, customers, truth = load_inputs(settings)

        def keep_model(model, spec, split) -> None:
            with atomic_directory(checkpoint) as tmp:
                model.save(tmp / "model")
                (tmp / "spec.json").write_text(spec.to_json(), encoding="utf-8")
                write_json({"task": task, "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                            "split": split.describe(),
                            "note": f"the fitted model of a `signals train --task {task}` run that had not finished; "
                                    f"it is removed once {bundle} is written (its spec has no learned points yet)"},
                           tmp / "checkpoint.json")
            if progress is not None:
                progress(f"model saved to {checkpoint} (kept if a later step fails)")

        try:
            trained = fit_task(events, settings, task=task, customers=customers, auto_split=auto_split,
                               progress=progress, on_model=keep_model, cutoffs=read_custom_cutoffs(settings))
        except Exception as exc:
            if not checkpoint.is_dir():
                raise
            kept = f"the fitted model is kept in {checkpoint}"
            if isinstance(exc, SignalsError):  # one line for the user: say it in the message
                with contextlib.suppress(TypeError):
                    raise type(exc)(f"{exc}; {kept}") from exc
            exc.add_note(kept)
            raise
        seconds = time.perf_counter() - started
        with atomic_directory(bundle) as tmp:
            write_bundle(trained, tmp, truth=truth, settings=settings, seconds=seconds, auto_split=auto_split)
        with contextlib.suppress(OSError):
            shutil.rmtree(checkpoint)
        run = TrainRun(trained, bundle, truth, seconds)
        if tracker is not None:
            run.run_id = log_training_run(run, settings, events=events, customers=customers, tracker=tracker)
    return run
