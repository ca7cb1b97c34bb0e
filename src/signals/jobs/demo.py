"""The demo job: the whole pipeline on a simulated CRM, with a short report at every stage.

simulate (with messy raw exports) -> ingest -> monthly retrains of both tasks (the first registers
the champions, the next ones are challengers promoted only by the configured rule) -> score every
customer as of the last date with the champions -> ``customer_signals`` in the SQLite CRM file ->
a summary a sales manager can read: alarm counts, the top customers with their reasons, the learned
points next to the priors, where the MLflow runs and the CRM table are, and the command that opens
the MLflow UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console

from signals.io.tracking import redact, tracking_uri
from signals.jobs.ingest import run_ingest
from signals.jobs.retrain import run_backfill
from signals.jobs.score import ScoreRun, run_score
from signals.jobs.simulate import run_simulate
from signals.jobs.train import load_inputs
from signals.settings import Settings

__all__ = ["DEMO_RETRAINS", "demo_summary", "retrain_dates", "run_demo"]

#: Monthly retrains before scoring: the first registers the champions, the others are challengers.
DEMO_RETRAINS = 3


def run_demo(
    settings: Settings,
    *,
    console: Console,
    show_ingest: Callable | None = None,
    show_retrain: Callable | None = None,
    show_scoring: Callable | None = None,
    retrains: int = DEMO_RETRAINS,
) -> dict:
    """simulate -> ingest -> monthly retrains (champions registered) -> score as of the end -> CRM file -> summary."""
    started = time.perf_counter()
    console.rule("1. simulate a CRM with known truth and a behaviour shift")
    sim = run_simulate(settings, messy=bool(settings.ingest.sources), progress=True)
    console.print(f"{sim['customers']:,} customers, {sim['events']:,} touchpoints, shift {sim['shift_date']} "
                  f"({sim['seconds']:.1f} s)")
    if settings.ingest.sources:
        console.rule("2. ingest the raw exports of three systems")
        result = run_ingest(settings, strict=False)
        if show_ingest is not None:
            show_ingest(result)
        console.print(f"{len(result.events):,} canonical events; {len(result.rejects):,} rejected rows with "
                      f"reasons -> {settings.paths.rejects}; {len(result.duplicates):,} duplicates with the row "
                      f"each repeats -> {settings.paths.duplicates}")
    end = pd.Timestamp(settings.simulate.end)
    first = end - pd.DateOffset(months=retrains)
    last = end - pd.DateOffset(months=1)
    console.rule(f"3. train both tasks monthly, {first:%Y-%m-%d} .. {last:%Y-%m-%d}: champions and challengers")
    inputs = load_inputs(settings)
    dates = retrain_dates(settings, first.date(), last.date())
    backfill = None
    if dates:
        backfill = run_backfill(settings, start=dates[0], end=dates[-1], every="1M", inputs=inputs,
                                show_progress=False, progress=lambda m: console.print(f"  {m}", style="dim"),
                                on_retrain=show_retrain)
    else:
        console.print(f"the registry's champions ({redact(tracking_uri(settings))}) are as of {last:%Y-%m-%d} or "
                      "later (an earlier demo run): scoring with them. A fresh mlflow.db, or another "
                      "mlflow.registered_model_prefix, replays the retrains")
    console.rule(f"4. score every customer as of {end:%Y-%m-%d} with the champions, write the CRM table")
    scored = run_score(settings, as_of=end.date(), model="champion", events=inputs[0], customers=inputs[1],
                       track=True, progress=lambda m: console.print(f"  {m}", style="dim"))
    if show_scoring is not None:
        show_scoring(scored)
    seconds = time.perf_counter() - started
    console.rule(f"summary (done in {seconds:.0f} s)")
    console.print(demo_summary(scored, settings))
    return {"simulate": sim, "backfill": backfill, "score": scored, "seconds": seconds}


def retrain_dates(settings: Settings, first, last) -> list[pd.Timestamp]:
    """The monthly as-of dates from ``first`` to ``last`` later than every task's current champion.

    A champion is never challenged by a model of an earlier date (``signals retrain`` refuses it),
    so a second demo run on the same registry retrains only what is new, if anything.
    """
    from signals.cutoffs import as_of_instant
    from signals.io.tracking import CHAMPION, Tracker, model_name
    from signals.jobs.retrain import as_of_dates
    from signals.labels import TASKS

    tracker = Tracker.connect(settings)
    latest = []
    for task in TASKS:
        version = tracker.alias_version(model_name(settings, task), CHAMPION)
        stamp = (version.tags or {}).get("as_of_utc") if version is not None else None
        if stamp:
            latest.append(pd.Timestamp(stamp))
    dates = as_of_dates(first, last, "1M")
    return [d for d in dates if not latest or as_of_instant(d.date(), settings.timezone) > max(latest)]


def demo_summary(scored: ScoreRun, settings: Settings, *, top: int = 5) -> str:
    """The closing summary: alarms, top customers with reasons, learned vs prior points, where things are."""
    lines = []
    signals = scored.signals
    for task, info in scored.summary.items():
        policy = next(m.policy for m in scored.models if m.task == task)
        test = policy.test or {}
        quality = (f"; on the test cutoffs precision {test['precision']:.2f}, recall {test['recall']:.2f} "
                   f"(base rate {test['base_rate']:.3f})" if test.get("precision") is not None else "")
        lines.append(f"{task}: {info['alarms']:,} {info['alarm']} alarms among {info['rows']:,} customers "
                     f"({info['model']}){quality}")
    lines.append("")
    for task in scored.summary:
        part = signals[signals["task"] == task]
        alarmed = part[part["alarm"].notna()].nsmallest(top, "rank")
        shown = alarmed if len(alarmed) else part.nsmallest(top, "rank")
        lines.append(f"{task}: top customers{' with an alarm' if len(alarmed) else ''}")
        for r in shown.itertuples():
            why = "; ".join(x for x in (r.reason_1, r.reason_2, r.reason_3) if isinstance(x, str))
            lines.append(f"  {r.customer_id}  p={r.score:.2f}  temperature {r.temperature:.0f} "
                         f"({r.temperature_change_30d:+.0f} in 30 days)  {why}")
    lines.append("")
    for loaded in scored.models:
        path = None if loaded.folder is None else Path(loaded.folder) / "points.csv"
        if path is None or not path.is_file():
            continue
        table = pd.read_csv(path).sort_values("learned_points", ascending=False)
        pairs = ", ".join(f"{r.touchpoint} {r.learned_points:.1f} ({r.prior_points:g})" for r in table.itertuples())
        lines.append(f"learned points, {loaded.task} (prior in brackets): {pairs}")
    lines.append("")
    if scored.written is not None:
        lines.append(f"CRM table: {scored.written.destination} ({scored.written.rows:,} rows)")
    lines.append(f"MLflow runs: {redact(tracking_uri(settings))} (experiment {settings.mlflow.experiment!r})"
                 + (f", scoring run {scored.mlflow_run_id}" if scored.mlflow_run_id else ""))
    lines.append("open the MLflow UI: signals ui -c configs/demo.yaml   (then http://127.0.0.1:5000)")
    return "\n".join(lines)
