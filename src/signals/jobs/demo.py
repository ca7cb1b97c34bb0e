"""The demo job: the whole pipeline on a simulated CRM, with a short report at every stage."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

from signals.jobs.features import run_features
from signals.jobs.ingest import run_ingest
from signals.jobs.simulate import run_simulate
from signals.jobs.train import run_train
from signals.labels import TASKS
from signals.settings import Settings

__all__ = ["run_demo"]


def run_demo(
    settings: Settings,
    *,
    console: Console,
    show_training: Callable | None = None,
    show_ingest: Callable | None = None,
) -> dict:
    """simulate (with messy raw exports) -> ingest -> features -> train every task."""
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
    console.rule("3. point-in-time features")
    features = run_features(settings)
    console.print(f"{len(features.features):,} rows x {features.n_features} features -> {features.path} "
                  f"({features.seconds:.1f} s)")
    runs = {}
    for i, task in enumerate(TASKS, start=4):
        console.rule(f"{i}. train and evaluate: {task}")
        runs[task] = run_train(settings, task=task, progress=lambda m: console.print(f"  {m}", style="dim"))
        if show_training is not None:
            show_training(runs[task])
    console.rule(f"done in {time.perf_counter() - started:.0f} s")
    return {"simulate": sim, "features": features, "train": runs}
