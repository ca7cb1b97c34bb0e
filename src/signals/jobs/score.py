"""The score job: every customer as of a date, both tasks, written back to the CRM.

``run_score`` loads each task's model (a bundle folder, or the MLflow registry by alias), checks
that the events can rebuild the features the model was trained on (its saved spec decides, never
the current config), scores every customer first seen before the as-of instant
(:func:`signals.modeling.scoring.score_models`; a task on custom cutoffs, ``cutoffs.kind`` and
``cutoffs.tasks``, only the customers due that day, :func:`due_customers`), writes the ``customer_signals`` rows through the
configured sink (:mod:`signals.io.sinks`) and, when tracking is on, logs the run to MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from signals.cutoffs import as_of_instant
from signals.errors import ConfigError, DataError
from signals.io.bundles import LoadedModel, load_bundle, load_registered
from signals.io.sinks import SinkResult, open_sink
from signals.labels import TASKS
from signals.modeling.scoring import score_models, spec_mismatch, summarize
from signals.schemas import TOUCHPOINT
from signals.settings import Settings

__all__ = ["ALIASES", "ScoreRun", "due_customers", "load_models", "run_score", "score"]

#: ``--model`` values that mean a registry alias (anything else is a folder).
ALIASES = ("champion", "challenger")


@dataclass
class ScoreRun:
    """What a scoring run produced."""

    as_of: pd.Timestamp
    signals: pd.DataFrame                  # customer_signals rows of every task (+ usual temperature, surge)
    models: list[LoadedModel]
    summary: dict                          # per task: rows, alarms, bands, score distribution, model
    written: SinkResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None


def load_models(settings: Settings, model: str | Path = "models", *, tasks: Sequence[str] = TASKS) -> list[LoadedModel]:
    """The models to score with: ``champion`` / ``challenger`` from the registry, or bundles.

    A folder is either one bundle (its task is scored) or holds one bundle per task
    (``models/purchase``, ``models/churn``); ``"models"`` means ``paths.models_dir``.
    """
    text = str(model)
    if text in ALIASES:
        return [load_registered(task, text, settings=settings) for task in tasks]
    folder = Path(settings.paths.models_dir) if text == "models" else Path(text)
    prefix = settings.mlflow.registered_model_prefix
    if (folder / "spec.json").is_file():
        loaded = load_bundle(folder, prefix=prefix)
        if loaded.task not in tasks:
            raise DataError(f"{folder} holds a {loaded.task} model; asked to score {list(tasks)}")
        return [loaded]
    return [load_bundle(folder / task, task=task, prefix=prefix) for task in tasks]


def _check(models: list[LoadedModel], events: pd.DataFrame, customers: pd.DataFrame | None,
           settings: Settings) -> None:
    tp = events[TOUCHPOINT]
    event_types = (list(tp.cat.categories) if isinstance(tp.dtype, pd.CategoricalDtype)
                   else sorted(tp.astype(str).unique()))
    for loaded in models:
        problems = spec_mismatch(loaded.spec, event_types=event_types, customers=customers)
        if problems:
            raise DataError(
                f"the {loaded.task} model ({loaded.source}) cannot score these events: " + "; ".join(problems)
                + ". The model's saved feature spec decides the features: score data that has them, "
                  "or retrain the model on this data")


def due_customers(settings: Settings, events: pd.DataFrame, instant: pd.Timestamp,
                  tasks: Sequence[str]) -> dict[str, pd.Index]:
    """The customers due at ``instant`` for each of ``tasks`` that trains and scores on custom cutoffs.

    A task in ``cutoffs.tasks`` with ``cutoffs.kind`` ``table`` or ``anniversary`` was trained on
    per-customer observation dates ("5 days before each monthly anniversary"): it is scored for the
    customers whose custom cutoff is ``instant`` (:func:`signals.cutoffs.custom_cutoffs` with
    ``start = end = instant``; the table is read from ``cutoffs.table``), not for everyone.
    Tasks on the calendar grid are absent from the result.
    """
    from signals.cutoffs import custom_cutoffs
    from signals.jobs.train import read_custom_cutoffs

    custom = [task for task in tasks if settings.cutoffs.custom_for(task)]
    if not custom:
        return {}
    rows = custom_cutoffs(events, settings.cutoffs, catalog=settings.catalog, timezone=settings.timezone,
                          table=read_custom_cutoffs(settings), start=instant, end=instant)
    ids = pd.Index(pd.unique(rows["customer_id"].astype(str)))
    return dict.fromkeys(custom, ids)


def run_score(
    settings: Settings,
    *,
    as_of,
    model: str | Path = "models",
    tasks: Sequence[str] = TASKS,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    write: bool = True,
    track: bool = False,
    progress: Callable[[str], None] | None = None,
    show_progress: bool = True,
) -> ScoreRun:
    """Score every customer as of ``as_of`` with each task's model and write the rows to the sink
    (a task on custom cutoffs: the customers due at ``as_of``, see :func:`due_customers`).

    ``events`` / ``customers`` default to ``paths.events`` / ``paths.customers``. ``progress``
    receives one line per stage; ``show_progress`` shows the sink's progress bar.
    """
    from signals.jobs.train import load_inputs

    started = time.perf_counter()
    if events is None:
        events, file_customers, _ = load_inputs(settings, require_static=False)
        customers = file_customers if customers is None else customers
    try:
        instant = as_of_instant(as_of, settings.timezone)
    except (ValueError, TypeError):
        raise ConfigError(f"as-of {as_of!r} is not a date or a time (e.g. 2026-01-01 or 2026-01-01T09:00)") from None
    models = load_models(settings, model, tasks=tasks)
    _check(models, events, customers, settings)
    due = due_customers(settings, events, instant, [m.task for m in models])
    if progress is not None:
        for task, ids in due.items():
            progress(f"{task}: custom cutoffs ({settings.cutoffs.kind}): {len(ids):,} customers due at {instant}")
    scored = score_models(events, models, instant, timezone=settings.timezone, customers=customers,
                          settings=settings.scoring, labels=settings.labels, progress=progress, due=due)
    if settings.scoring.views:
        clock = time.perf_counter()
        scored.signals = with_views(scored.signals, events, instant, settings, customers=customers)
        scored.seconds["views"] = time.perf_counter() - clock
    run = ScoreRun(instant, scored.signals, models, summarize(scored.signals), seconds=dict(scored.seconds))
    if write:
        clock = time.perf_counter()
        sink = open_sink(settings.sink)
        try:
            if progress is not None:
                progress(f"writing {len(scored.signals):,} rows to {sink.destination}")
            run.written = sink.write(scored.signals, progress=show_progress)
        finally:
            sink.dispose()
        run.seconds["write"] = time.perf_counter() - clock
    if track:
        run.mlflow_run_id = log_scoring_run(run, settings)
    run.seconds["total"] = time.perf_counter() - started
    return run


def with_views(signals: pd.DataFrame, events: pd.DataFrame, as_of, settings: Settings, *,
               customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """``signals`` with each customer's ``segment`` and ``journey_stage`` at ``as_of``
    (:func:`signals.views.crm_columns`, the seeds' views)."""
    from signals.views import crm_columns

    views = crm_columns(events, as_of, settings, customers=customers).set_index("customer_id")
    ids = pd.Index(views.index.astype(str))
    where = ids.get_indexer(signals["customer_id"].astype(str))
    out = signals.copy(deep=False)
    for name in ("segment", "journey_stage"):
        values = views[name].to_numpy(dtype=object)
        out[name] = pd.Series(np.where(where >= 0, values[np.maximum(where, 0)], None), dtype=object)
    return out


def score(settings: Settings | None = None, *, as_of, model: str | Path = "models", tasks: Sequence[str] = TASKS,
          events: pd.DataFrame | None = None, customers: pd.DataFrame | None = None, write: bool = True,
          track: bool = False) -> ScoreRun:
    """``signals score`` in Python: score every customer as of ``as_of`` and (by default) write the rows.

    ``settings`` default to the documented defaults; ``model`` is ``"models"`` (the bundles in
    ``paths.models_dir``), a bundle folder, or ``"champion"`` / ``"challenger"`` (the registry).
    Pass ``events`` (and ``customers``) to score frames in memory; ``write=False`` only returns
    the rows (``run.signals``). See :func:`run_score`.
    """
    from signals.settings import load_settings

    return run_score(settings or load_settings(), as_of=as_of, model=model, tasks=tasks, events=events,
                     customers=customers, write=write, track=track, show_progress=False)


def log_scoring_run(run: ScoreRun, settings: Settings) -> str:
    """Log a scoring run to MLflow: rows scored, alarm counts, the score distribution per task,
    the model versions used (params and tags), the summary, the top 50 customers per task and a
    score histogram (artifacts; a Spark run, whose rows stay on the cluster, logs no histogram).

    Goes through :class:`signals.io.tracking.Tracker` (the configured store, or the one
    ``MLFLOW_TRACKING_URI`` names; the experiment and artifact root of training runs). Raises
    :class:`~signals.errors.TrackingError` when the store fails; the rows are written by then.
    """
    import json
    import tempfile

    from signals.io.tracking import Tracker
    from signals.modeling.plots import plot_score_distribution, save_figure

    tracker = Tracker.connect(settings)
    day = f"{run.as_of.tz_convert(settings.timezone):%Y-%m-%d}"
    tags = {"role": "scoring", "as_of": day, "task": ",".join(m.task for m in run.models)}
    for m in run.models:
        tags[f"{m.task}.model_version"] = m.version
    params = {"as_of": run.as_of.isoformat(), "customers": run.summary and max(v["rows"] for v in run.summary.values())}
    for m in run.models:
        params[f"{m.task}.model"] = m.name
        params[f"{m.task}.model_version"] = m.version
        params[f"{m.task}.model_source"] = m.source[:500]
        if m.run_id:
            params[f"{m.task}.training_run_id"] = m.run_id
    if run.written is not None:
        params["sink"] = run.written.destination
    metrics = {}
    for task, info in run.summary.items():
        metrics[f"{task}.rows"] = info["rows"]
        metrics[f"{task}.alarms"] = info["alarms"]
        metrics[f"{task}.alarm_share"] = info["alarms"] / info["rows"] if info["rows"] else 0.0
        for band, count in info["bands"].items():
            metrics[f"{task}.band_{band}"] = count
        for key in ("score_mean", "score_p50", "score_p90", "score_p99", "score_max"):
            metrics[f"{task}.{key}"] = info[key]
    metrics.update({f"seconds.{k}": v for k, v in run.seconds.items()})
    run_id = tracker.start_run(f"score {day}", tags)
    try:
        tracker.log(run_id, params=params, metrics={k: v for k, v in metrics.items() if v is not None})
        # a Spark run (signals.jobs.spark.SparkScoreRun) keeps only its top rows on the driver: no histogram
        rows = getattr(run, "top_signals", None)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "scoring_summary.json").write_text(json.dumps(run.summary, indent=2, default=str))
            if rows is None:
                rows = run.signals
                save_figure(plot_score_distribution(rows), folder / "score_distribution.png")
            top = (rows.sort_values(["task", "rank"]).groupby("task").head(50)
                   [["task", "customer_id", "score", "rank", "band", "alarm", "temperature", "reason_1",
                     "reason_2", "reason_3"]])
            top.to_csv(folder / "top_customers.csv", index=False)
            tracker.log_artifacts(run_id, folder)
    except BaseException as exc:
        tracker.fail_run(run_id, exc)
        raise
    tracker.end_run(run_id)
    return run_id
