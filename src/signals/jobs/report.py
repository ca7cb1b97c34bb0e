"""The report and timeline jobs: read events, trained bundles and scores; compute the views; write.

``run_report`` writes **one** self-contained HTML page (``paths.reports_dir/report_<date>.html``
by default) atomically: a reader sees the old page or the new one, never half a page, and two
runs cannot write the same page at once. To log it somewhere (MLflow), pass ``log_artifact``: it
is called with the written path, e.g. ``run_report(settings, log_artifact=mlflow.log_artifact)``.

``run_timeline`` draws the temperature timeline of one or a few customers as PNG files.

Inputs, all optional except the events:

- ``paths.events`` (and ``paths.customers`` when it exists);
- trained bundles ``paths.models_dir/<task>/`` (``points.csv`` and ``spec.json``): their learned
  points are drawn next to the priors; without them the report says so;
- scores of the scoring job: a file given with ``scores`` (Parquet / CSV), else the sink table
  (``sink.table``) when ``sink.kind`` is ``sqlite`` and its database file exists.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from signals.cutoffs import as_of_instant
from signals.errors import DataError
from signals.features.spec import FeatureSpec
from signals.io.atomic import atomic_file, folder_lock
from signals.io.tables import read_table
from signals.jobs.train import load_inputs
from signals.labels import TASKS
from signals.settings import Settings
from signals.views import History, Timeline, alarm_lines, default_curves, segment_rows, timeline
from signals.views.plots import plot_timeline, png_bytes
from signals.views.report import LearnedModel, Report, build_report

__all__ = ["ReportRun", "TimelineRun", "default_as_of", "load_learned", "load_scores", "log_report_run", "run_report",
           "run_timeline"]


@dataclass
class ReportRun:
    report: Report
    path: Path
    as_of: pd.Timestamp
    seconds: float


@dataclass
class TimelineRun:
    timeline: Timeline
    files: dict[str, Path]
    segments: dict[str, str]


def default_as_of(events: pd.DataFrame, timezone: str) -> pd.Timestamp:
    """The local midnight after the last event: every event is known, the day is complete."""
    last = pd.Timestamp(events["ts"].max()).tz_convert(timezone)
    return as_of_instant((last.normalize() + pd.Timedelta(days=1)).tz_localize(None), timezone)


def load_learned(models_dir: str | Path) -> tuple[dict[str, LearnedModel], dict[str, str]]:
    """Learned points and half-life of every trained bundle in ``models_dir/<task>``; for the tasks
    without one, why (shown in the report)."""
    learned, missing = {}, {}
    for task in TASKS:
        folder = Path(models_dir) / task
        points_path, spec_path = folder / "points.csv", folder / "spec.json"
        if not points_path.is_file() or not spec_path.is_file():
            missing[task] = f"no trained bundle at {folder} (points.csv and spec.json)"
            continue
        try:
            spec = FeatureSpec.from_json(spec_path.read_text(encoding="utf-8"))
            points = read_table(points_path)
        except (ValueError, OSError) as exc:
            missing[task] = f"the bundle at {folder} cannot be read ({exc})"
            continue
        if spec.learned_half_life_days is None or not {"touchpoint", "learned_points"} <= set(points.columns):
            missing[task] = f"the bundle at {folder} has no learned points"
            continue
        learned[task] = LearnedModel(task, points, spec.learned_half_life_days, str(folder))
    return learned, missing


def load_scores(settings: Settings, path: str | Path | None = None) -> tuple[pd.DataFrame | None, str]:
    """Scores of the scoring job and where they came from (the note says where they were looked for).

    ``path`` (Parquet / CSV) must exist when given. Without it, the sink table is read when
    ``sink.kind`` is ``sqlite`` and the database file exists (the URL is never printed: it may
    hold credentials); other sinks need ``path``.
    """
    if path is not None:
        return read_table(path), str(path)
    sink = settings.sink
    if sink.kind != "sqlite":
        return None, f"sink.kind is {sink.kind}: pass the scores file with --scores"
    url = os.environ.get(sink.url_env, sink.url) if sink.url_env else sink.url
    match = re.match(r"sqlite:///(.+)$", url)
    if not match or not Path(match.group(1)).is_file():
        return None, f"no SQLite CRM database with table {sink.table!r} yet"
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        if not sqlalchemy.inspect(engine).has_table(sink.table):
            return None, f"the CRM database {match.group(1)} has no table {sink.table!r} yet"
        with engine.connect() as connection:
            return pd.read_sql_table(sink.table, connection), f"table {sink.table!r} of {match.group(1)}"
    except sqlalchemy.exc.SQLAlchemyError as exc:
        return None, f"the CRM table {sink.table!r} cannot be read ({type(exc).__name__})"
    finally:
        engine.dispose()


def _history(settings: Settings, as_of) -> tuple[History, pd.Timestamp]:
    events, customers, _ = load_inputs(settings)
    instant = as_of_instant(as_of, settings.timezone) if as_of is not None else default_as_of(events, settings.timezone)
    return History(events, instant, settings, customers=customers, validate=False), instant


def run_report(
    settings: Settings,
    *,
    as_of=None,
    out: str | Path | None = None,
    customer_ids: Sequence[str] | None = None,
    scores: str | Path | None = None,
    models_dir: str | Path | None = None,
    config_name: str = "",
    progress: Callable[[str], None] | None = None,
    log_artifact: Callable[[Path], object] | None = None,
) -> ReportRun:
    """Compute every view as of ``as_of`` (default: the day after the last event) and write the HTML page.

    ``out`` defaults to ``paths.reports_dir/report_<local date>.html``. ``log_artifact`` is called
    with the written path (the MLflow hook).
    """
    started = time.perf_counter()
    history, instant = _history(settings, as_of)
    learned, missing = load_learned(models_dir or settings.paths.models_dir)
    score_table, score_note = load_scores(settings, scores)
    report = build_report(history, learned=learned, learned_missing=missing, scores=score_table,
                          scores_note=score_note, timeline_ids=list(customer_ids) if customer_ids else None,
                          config_name=config_name, progress=progress)
    local = instant.tz_convert(settings.timezone)
    path = Path(out) if out is not None else Path(settings.paths.reports_dir) / f"report_{local:%Y-%m-%d}.html"
    with folder_lock(path, what="signals report"), atomic_file(path) as tmp:
        tmp.write_text(report.html, encoding="utf-8")
    if log_artifact is not None:
        log_artifact(path)
    return ReportRun(report, path, instant, time.perf_counter() - started)


def log_report_run(run: ReportRun, settings: Settings) -> str:
    """Log a written report to MLflow and return the run id.

    One run ``report <local date>`` (tags ``role: report``, ``as_of``) in the experiment and store of the
    training runs (:class:`signals.io.tracking.Tracker`), with the HTML page as an artifact
    (``report/``), the segment and dose-response verdicts as tags and the page's figure count and
    seconds as metrics. Raises :class:`~signals.errors.TrackingError` when the store fails; the page
    is written by then.
    """
    from signals.io.tracking import Tracker

    tracker = Tracker.connect(settings)
    day = f"{run.as_of.tz_convert(settings.timezone):%Y-%m-%d}"
    summary = run.report.summary
    tags = {"role": "report", "as_of": day,
            "segments_verdict": str(summary["segment_verdict"]["text"])[:4000],
            "dose_verdict": str(summary["dose_verdict"])[:4000]}
    run_id = tracker.start_run(f"report {day}", tags)
    try:
        tracker.log(run_id, params={"as_of": run.as_of.isoformat(), "page": run.path.name},
                    metrics={"figures": float(len(summary["figures"])), "seconds": float(run.seconds)})
        tracker.log_artifact(run_id, run.path, "report")
    except BaseException as exc:
        tracker.fail_run(run_id, exc)
        raise
    tracker.end_run(run_id)
    return run_id


def _file_name(customer_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", customer_id)[:80] or "customer"


def run_timeline(
    settings: Settings,
    customer_ids: Sequence[str],
    *,
    as_of=None,
    out_dir: str | Path | None = None,
    days: int | None = None,
    models_dir: str | Path | None = None,
) -> TimelineRun:
    """Draw the temperature timeline of ``customer_ids`` to ``out_dir/timeline_<id>_<date>.png``
    (default ``paths.reports_dir``): prior and learned temperatures, touches by type, alarms."""
    if not customer_ids:
        raise DataError("name at least one customer id")
    history, instant = _history(settings, as_of)
    learned, _ = load_learned(models_dir or settings.paths.models_dir)
    curves = default_curves(history, {t: m.curve for t, m in learned.items()})
    drawn = timeline(history, [str(c) for c in customer_ids], curves, alarm_lines(history, curves), days=days)
    rows = history.rows_at()
    seg = segment_rows(history, rows).set_index("customer_id")["segment"].astype(str)
    folder = Path(out_dir) if out_dir is not None else Path(settings.paths.reports_dir)
    files = {}
    local = instant.tz_convert(settings.timezone)
    for cid in dict.fromkeys(str(c) for c in customer_ids):
        path = folder / f"timeline_{_file_name(cid)}_{local:%Y-%m-%d}.png"
        data = png_bytes(plot_timeline(drawn, cid, segment=seg.get(cid)), dpi=110)
        with atomic_file(path) as tmp:
            tmp.write_bytes(data)
        files[cid] = path
    return TimelineRun(drawn, files, {c: seg.get(c, "") for c in files})
