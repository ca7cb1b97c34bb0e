"""signals: churn risk and purchase signals (きざし) from CRM touchpoint histories.

The public API, one import away (modules load lazily, so ``import signals`` stays fast)::

    import signals
    settings = signals.load_settings("configs/demo.yaml")
    world = signals.simulate_crm(settings)                      # or signals.ingest(...) real sources
    spec = signals.FeatureSpec.from_settings(settings)
    cutoffs = signals.training_cutoffs(world.events, horizon_days=60, n_cutoffs=12,
                                       timezone=settings.timezone)   # tz-aware UTC instants
    X = signals.build_features(world.events, cutoffs, spec, customers=world.customers)  # ts < cutoff only
    trained = signals.fit_task(world.events, settings, task="purchase", customers=world.customers)
    trained.points                                              # the learned points table (配点表)

(``tests/test_tours.py`` runs this tour and the README's.) Errors a user can fix are
:class:`SignalsError` subclasses; naive timestamps are refused where a time zone would have to be
guessed (see :mod:`signals.schemas`).

Scoring (``signals.score(settings, as_of=...)``) writes every customer's probability, band,
temperature, alarm and reasons of both tasks to the CRM table; see :mod:`signals.jobs.score`.
MLflow: ``signals.run_retrain(settings, as_of=...)`` trains a challenger and promotes it only by
the configured rule, ``signals.run_backfill`` replays that monthly, and
``signals.load_champion(task, settings)`` / ``signals.load_signal_model(uri_or_folder)`` load a
model for scoring (see :mod:`signals.jobs.retrain`, :mod:`signals.io.tracking`).

``fit_task`` chains four steps a notebook can also run (or swap) one by one:
``training_set`` -> ``fit_model`` -> ``learn_points`` -> ``evaluate``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # settings
    "ConfigError": "signals.errors",
    "DataError": "signals.errors",
    "OutputError": "signals.errors",
    "SignalsError": "signals.errors",
    "Settings": "signals.settings",
    "load_settings": "signals.settings",
    # data
    "check_events": "signals.schemas",
    "check_cutoffs": "signals.schemas",
    "normalize_ids": "signals.schemas",
    "to_utc": "signals.schemas",
    "simulate_crm": "signals.simulate",
    "SimulatedWorld": "signals.simulate",
    "messy_sources": "signals.messy",
    "ingest": "signals.ingest",
    "IngestResult": "signals.ingest",
    "IngestError": "signals.errors",
    # cutoffs, features, labels
    "as_of_instant": "signals.cutoffs",
    "cutoff_grid": "signals.cutoffs",
    "training_cutoffs": "signals.cutoffs",
    "anniversary_cutoffs": "signals.cutoffs",
    "cutoffs_from_table": "signals.cutoffs",
    "custom_cutoffs": "signals.cutoffs",
    "contracts_from_subscriptions": "signals.subscriptions",
    "SubscriptionContracts": "signals.subscriptions",
    "scoring_cutoffs": "signals.cutoffs",
    "FeatureSpec": "signals.features.spec",
    "build_features": "signals.features.matrix",
    "reference_features": "signals.features.reference",
    "churn_within": "signals.labels",
    "purchase_within": "signals.labels",
    "build_training_set": "signals.dataset",
    # models
    "SignalModel": "signals.modeling.estimators",
    "time_split": "signals.modeling.splits",
    "rolling_origins": "signals.modeling.splits",
    "bootstrap_metrics": "signals.modeling.metrics",
    "backtest_metrics": "signals.modeling.metrics",
    "what_if": "signals.modeling.points",
    "touch_effects": "signals.modeling.points",
    "points_table": "signals.modeling.points",
    "reasons": "signals.modeling.explain",
    "training_set": "signals.modeling.training",
    "fit_model": "signals.modeling.training",
    "learn_points": "signals.modeling.training",
    "evaluate": "signals.modeling.training",
    "fit_task": "signals.modeling.training",
    "TrainingSet": "signals.modeling.training",
    "TrainedTask": "signals.modeling.training",
    # scoring
    "score": "signals.jobs.score",
    "ScoreRun": "signals.jobs.score",
    # retail baselines and long horizons
    "BGNBD": "signals.modeling.bgnbd",
    "rfm_summary": "signals.modeling.bgnbd",
    "bgnbd_features": "signals.modeling.bgnbd",
    "purchase_probability_by_rollout": "signals.modeling.rollout",
    # MLflow: the model for scoring, from a bundle folder or the registry
    "SignalBundle": "signals.modeling.pyfunc",
    "load_signal_model": "signals.modeling.pyfunc",
    "load_champion": "signals.io.tracking",
    "TrackingError": "signals.errors",
    "run_retrain": "signals.jobs.retrain",
    "run_backfill": "signals.jobs.retrain",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'signals' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from signals.cutoffs import (
        anniversary_cutoffs,
        as_of_instant,
        custom_cutoffs,
        cutoff_grid,
        cutoffs_from_table,
        scoring_cutoffs,
        training_cutoffs,
    )
    from signals.dataset import build_training_set
    from signals.errors import (
        ConfigError,
        DataError,
        IngestError,
        OutputError,
        SignalsError,
        TrackingError,
    )
    from signals.features.matrix import build_features
    from signals.features.reference import reference_features
    from signals.features.spec import FeatureSpec
    from signals.ingest import IngestResult, ingest
    from signals.io.tracking import load_champion
    from signals.jobs.retrain import run_backfill, run_retrain
    from signals.jobs.score import ScoreRun, score
    from signals.labels import churn_within, purchase_within
    from signals.messy import messy_sources
    from signals.modeling.bgnbd import BGNBD, bgnbd_features, rfm_summary
    from signals.modeling.estimators import SignalModel
    from signals.modeling.explain import reasons
    from signals.modeling.metrics import backtest_metrics, bootstrap_metrics
    from signals.modeling.points import points_table, touch_effects, what_if
    from signals.modeling.pyfunc import SignalBundle, load_signal_model
    from signals.modeling.rollout import purchase_probability_by_rollout
    from signals.modeling.splits import rolling_origins, time_split
    from signals.modeling.training import (
        TrainedTask,
        TrainingSet,
        evaluate,
        fit_model,
        fit_task,
        learn_points,
        training_set,
    )
    from signals.schemas import check_cutoffs, check_events, normalize_ids, to_utc
    from signals.settings import Settings, load_settings
    from signals.simulate import SimulatedWorld, simulate_crm
    from signals.subscriptions import SubscriptionContracts, contracts_from_subscriptions
