"""MLflow helpers: the store, the experiment, named and tagged runs, the registry and its aliases.

Nothing here runs at import time (no ``set_tracking_uri``, no folders): every function takes the
settings or a :class:`Tracker` and talks to MLflow through an explicit ``MlflowClient``, so two
stores in one process never mix. Every failure of the store (unreachable, dead mid-run, missing
model or alias) becomes a :class:`~signals.errors.TrackingError` that names the store (without
credentials), the step and what the registry was left with.

Conventions the UI's filter and compare views rely on:

==================  ========================================================================
run name            ``"<task> <as_of>"``, e.g. ``purchase 2025-10-31``
tags                ``task``, ``as_of``, ``role`` (candidate / challenger / champion /
                    backfill), ``data_source``; retrains add ``decision`` and ``reason``
params              the resolved config flattened (``model.lightgbm.learning_rate``), the data
                    range, the train / validation / test cutoffs, the half-life, the feature
                    spec's hash, the package version and the git commit
metrics             ``<model>.<metric>`` with ``_low`` / ``_high`` (95% interval) for the model
                    and every baseline; ``lightgbm_minus_<baseline>.roc_auc``; ``points.<type>``;
                    ``origin.<model>.<metric>`` with one step per backtest origin
artifacts           ``bundle/`` (the whole model bundle: points table, figures, reasons,
                    summary) and ``model/`` (the pyfunc model)
registered models   ``<prefix>-churn``, ``<prefix>-purchase`` with aliases ``champion`` and
                    ``challenger``
==================  ========================================================================

Filter examples for the UI: ``tags.task = 'purchase' and tags.role = 'champion'``,
``metrics.`lightgbm.roc_auc` > 0.7``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from signals.errors import TrackingError
from signals.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from signals.features.spec import FeatureSpec
    from signals.jobs.train import TrainRun
    from signals.modeling.pyfunc import SignalBundle
    from signals.modeling.training import TrainedTask

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "Tracker",
    "download_model",
    "feature_spec_hash",
    "flatten_settings",
    "git_commit",
    "load_champion",
    "log_training_run",
    "metrics_by_origin",
    "metrics_of",
    "model_name",
    "redact",
    "run_name",
    "tracking_uri",
    "ui_command",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
ROLES = ("candidate", "challenger", "champion", "backfill")


# --------------------------------------------------------------------------------------------
# names and values (pure)

def tracking_uri(settings: Settings) -> str:
    """The configured tracking URI; ``mlflow.tracking_uri_env`` (if set in the environment) wins."""
    ms = settings.mlflow
    if ms.tracking_uri_env and os.environ.get(ms.tracking_uri_env):
        return os.environ[ms.tracking_uri_env]
    return ms.tracking_uri


def redact(uri: str) -> str:
    """A URI without its password, for messages and logs.

    >>> redact("https://alice:s3cret@mlflow.example.com/")
    'https://alice:***@mlflow.example.com/'
    >>> redact("sqlite:///mlflow.db")
    'sqlite:///mlflow.db'
    """
    return re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", uri)


def model_name(settings: Settings, task: str) -> str:
    """The registered model of ``task``: ``<prefix>-<task>``.

    >>> from signals.settings import load_settings
    >>> model_name(load_settings(), "purchase")
    'signals-purchase'
    """
    return f"{settings.mlflow.registered_model_prefix}-{task}"


def run_name(task: str, as_of: pd.Timestamp | dt.date | str, timezone: str = "UTC") -> str:
    """``"<task> <as_of date>"``; an instant is shown as its local date in ``timezone``.

    >>> run_name("purchase", pd.Timestamp("2025-10-30 15:00", tz="UTC"), "Asia/Tokyo")
    'purchase 2025-10-31'
    """
    return f"{task} {as_of_label(as_of, timezone)}"


def as_of_label(as_of, timezone: str = "UTC") -> str:
    """The local date of an as-of instant (``YYYY-MM-DD``), or the instant if it is not midnight there."""
    stamp = pd.Timestamp(as_of)
    if stamp.tzinfo is None:
        return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else stamp.isoformat()
    local = stamp.tz_convert(timezone)
    return f"{local:%Y-%m-%d}" if local == local.normalize() else local.isoformat()


def _redact_tree(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _redact_tree(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_tree(v, key) for v in value]
    if isinstance(value, str) and ("url" in key or "uri" in key):
        return redact(value)
    return value


def flatten_settings(settings: Settings) -> dict[str, str]:
    """The resolved config as flat ``section.key`` params (URIs without passwords).

    Lists are written as JSON, each catalog type as one JSON param; ``ingest.sources`` as the
    source names (their mappings are in the ``config.json`` artifact).

    >>> from signals.settings import load_settings
    >>> params = flatten_settings(load_settings(overrides=["model.lightgbm.num_leaves=15"]))
    >>> params["model.lightgbm.num_leaves"], json.loads(params["catalog.seminar"])["prior_points"]
    ('15', 10.0)
    """
    data = _redact_tree(json.loads(settings.model_dump_json()))
    sources = data.get("ingest", {}).pop("sources", [])
    data.setdefault("ingest", {})["sources"] = [s["name"] for s in sources]
    # one param per touchpoint type (its settings as JSON), not six: the compare view stays readable
    data["catalog"] = {name: json.dumps(tp, ensure_ascii=False, sort_keys=True) for name, tp in data["catalog"].items()}
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping) and node:
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            text = json.dumps(node, ensure_ascii=False) if isinstance(node, list | dict) else str(node)
            out[prefix] = text[:6000]

    walk(data, "")
    return out


def feature_spec_hash(spec: FeatureSpec) -> str:
    """SHA-256 (first 16 hex digits) of what decides the features: the spec without its learned points.

    Two runs with the same hash built the same feature columns the same way.
    """
    base = spec.model_dump(mode="json")
    base.pop("learned_points", None)
    base.pop("learned_half_life_days", None)
    return hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest()[:16]


def git_commit(folder: str | Path | None = None) -> str | None:
    """The commit of the checkout holding ``folder`` (default: this package), ``+dirty`` if it has
    uncommitted changes; None outside a git checkout or without git."""
    import signals

    where = Path(folder) if folder is not None else Path(signals.__file__).parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head or None


def metrics_of(summary: Mapping[str, Any]) -> dict[str, float]:
    """The run metrics of a bundle's summary (``summary.json``, :func:`signals.jobs.train.summary_of`).

    Its flat ``metrics`` (``<model>.<metric>`` with ``..._low`` / ``..._high``, pooled over the
    backtest origins) as they are, plus ``lightgbm_minus_<baseline>.roc_auc[_low|_high]``, each
    type's own points ``points.<type>`` and log-odds effect ``effect.<type>``, the row counts
    ``rows.<part>``, ``half_life_days``, ``truth.spearman`` (simulated data), the alarm's
    ``alarm.<validation|test>.<precision|recall|alarms>``, ``seconds`` and ``seconds.fit.<step>``
    (:func:`signals.fit_task`'s steps).
    Non-finite and missing values are left out (MLflow cannot store them).

    >>> metrics_of({"metrics": {"lightgbm.roc_auc": 0.71, "lightgbm.roc_auc_low": 0.70, "rfm.ece": None},
    ...             "points": {"webinar": {"own_points": 8.5, "own_logodds": 0.2}}})
    {'lightgbm.roc_auc': 0.71, 'lightgbm.roc_auc_low': 0.7, 'points.webinar': 8.5, 'effect.webinar': 0.2}
    """
    import math

    out: dict[str, Any] = dict(summary.get("metrics") or {})
    for baseline, (estimate, low, high) in (summary.get("auc_minus_baseline") or {}).items():
        key = f"lightgbm_minus_{baseline}.roc_auc"
        out[key], out[f"{key}_low"], out[f"{key}_high"] = estimate, low, high
    for touchpoint, row in (summary.get("points") or {}).items():
        out[f"points.{touchpoint}"] = row.get("own_points")
        out[f"effect.{touchpoint}"] = row.get("own_logodds")
    for part, n in (summary.get("rows") or {}).items():
        out[f"rows.{part}"] = n
    out["half_life_days"] = summary.get("half_life_days")
    out["truth.spearman"] = (summary.get("truth_agreement") or {}).get("spearman")
    for part in ("validation", "test"):
        for key, value in ((summary.get("alarm") or {}).get(part) or {}).items():
            if key in ("precision", "recall", "alarms"):
                out[f"alarm.{part}.{key}"] = value
    out["seconds"] = summary.get("seconds")
    for step, value in (summary.get("seconds_by_step") or {}).items():
        out[f"seconds.fit.{step}"] = value

    def finite(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    return {k: float(v) for k, v in out.items() if finite(v)}


def metrics_by_origin(trained: TrainedTask) -> list[tuple[str, float, int, int]]:
    """``origin.<model>.<metric>`` per backtest origin as metric histories: step k is the k-th origin
    (oldest first) and the timestamp is the origin's first test cutoff, so the run page charts each
    metric over the origins. Empty for a task trained without a backtest."""
    import math

    table = getattr(trained, "metrics_by_origin", None)
    if table is None or len(table) == 0 or "origin" not in table.columns:
        return []
    origins = sorted(pd.unique(table["origin"]))
    step = {origin: k for k, origin in enumerate(origins, start=1)}
    rows = []
    for r in table.itertuples():
        if r.estimate is None or not math.isfinite(float(r.estimate)):
            continue
        rows.append((f"origin.{r.model}.{r.metric}", float(r.estimate), step[r.origin],
                     int(pd.Timestamp(r.origin).timestamp() * 1000)))
    return rows


# --------------------------------------------------------------------------------------------
# the store

def _is_connection_problem(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in ("ConnectionError", "Max retries exceeded", "Connection refused",
                                   "Failed to establish", "timed out", "RemoteDisconnected",
                                   "ConnectionResetError", "API request to"))


@dataclass
class Tracker:
    """An MLflow client bound to one store and experiment (build with :meth:`connect`)."""

    client: MlflowClient
    uri: str
    registry_uri: str | None
    experiment_id: str
    settings: Settings

    @classmethod
    def connect(cls, settings: Settings, *, create: bool = True) -> Tracker:
        """Check that the store answers, and get (or create) the experiment.

        A local store's experiment gets ``mlflow.artifact_location`` as its artifact root.
        Raises :class:`TrackingError` when the store cannot be reached or refuses.
        """
        from mlflow import MlflowClient

        uri = tracking_uri(settings)
        registry = settings.mlflow.registry_uri
        shown = redact(uri)
        if uri.startswith(("http://", "https://")):
            _probe_server(uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=registry)
        with _step(shown, "opening the experiment"):
            experiment = client.get_experiment_by_name(settings.mlflow.experiment)
            if experiment is None:
                if not create:
                    raise TrackingError(f"MLflow store {shown} has no experiment {settings.mlflow.experiment!r}")
                location = None
                if settings.mlflow.artifact_location and not uri.startswith(("http://", "https://", "databricks")):
                    location = Path(settings.mlflow.artifact_location).resolve().as_uri()
                experiment_id = client.create_experiment(settings.mlflow.experiment, artifact_location=location)
            else:
                if experiment.lifecycle_stage != "active":
                    raise TrackingError(f"experiment {settings.mlflow.experiment!r} in {shown} is deleted: restore it "
                                        f"(mlflow experiments restore) or set mlflow.experiment to another name")
                experiment_id = experiment.experiment_id
        return cls(client, uri, registry, experiment_id, settings)

    @property
    def shown(self) -> str:
        return redact(self.uri)

    def step(self, what: str, *, state: str = ""):
        """Context manager: turn a store failure during ``what`` into a :class:`TrackingError`."""
        return _step(self.shown, what, state=state)

    # ---- runs ----------------------------------------------------------------------------
    def start_run(self, name: str, tags: Mapping[str, str], *, parent_run_id: str | None = None,
                  started: float | None = None) -> str:
        """Create a run; ``started`` (seconds since the epoch) back-dates it to when the work began."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

        all_tags = {MLFLOW_RUN_NAME: name, **{k: str(v) for k, v in tags.items()}}
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        with self.step(f"starting run {name!r}"):
            run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags,
                                         start_time=None if started is None else int(started * 1000))
        return run.info.run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        with self.step("closing the run"):
            self.client.set_terminated(run_id, status=status)

    def fail_run(self, run_id: str, error: BaseException | None = None) -> None:
        """Mark a run FAILED (best effort, never raises); skipped when ``error`` says the store is gone
        (another call would only wait out MLflow's retries again)."""
        if error is not None and (_is_connection_problem(error) or _is_connection_problem(error.__cause__)):
            return
        with contextlib.suppress(Exception):
            self.client.set_terminated(run_id, status="FAILED")

    def log(self, run_id: str, *, params: Mapping[str, Any] | None = None, metrics: Mapping[str, float] | None = None,
            tags: Mapping[str, Any] | None = None, step: int = 0) -> None:
        """Log params, metrics and tags in batches (MLflow takes at most 100 params / 1000 metrics a call)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        p = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        m = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()]
        t = [RunTag(k, str(v)[:8000]) for k, v in (tags or {}).items()]
        with self.step("logging params and metrics"):
            for i in range(0, max(len(p), len(m), len(t)), 100):
                self.client.log_batch(run_id, metrics=m[i:i + 100], params=p[i:i + 100], tags=t[i:i + 100])

    def log_history(self, run_id: str, rows: list[tuple[str, float, int, int]]) -> None:
        """Log metric histories: ``(key, value, step, timestamp_ms)`` rows (e.g. one step per backtest origin)."""
        from mlflow.entities import Metric

        metrics = [Metric(k, float(v), int(ts), int(step)) for k, v, step, ts in rows]
        with self.step("logging metrics per origin"):
            for i in range(0, len(metrics), 1000):
                self.client.log_batch(run_id, metrics=metrics[i:i + 1000])

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        with self.step(f"uploading {artifact_path or 'artifacts'}"):
            self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        with self.step(f"uploading {Path(path).name}"):
            self.client.log_artifact(run_id, str(path), artifact_path)

    # ---- registry ------------------------------------------------------------------------
    def alias_version(self, name: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        with self.step(f"looking up {name}@{alias}"):
            try:
                return self.client.get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                if _is_connection_problem(exc):
                    raise
                if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") \
                        or "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                    return None
                raise

    def register(self, name: str, run_id: str, artifact_path: str = "model",
                 tags: Mapping[str, str] | None = None) -> ModelVersion:
        """A new version of ``name`` from the run's pyfunc model (the registered model is created if new)."""
        from mlflow.exceptions import MlflowException

        with self.step(f"registering a version of {name}"):
            try:
                self.client.get_registered_model(name)
            except MlflowException as exc:
                if _is_connection_problem(exc):
                    raise
                self.client.create_registered_model(
                    name, description="signals: calibrated probabilities from CRM touchpoint histories; "
                                      "aliases champion (scores) and challenger (the latest retrain)")
            return self.client.create_model_version(name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id,
                                                    tags={k: str(v) for k, v in (tags or {}).items()})

    def set_alias(self, name: str, alias: str, version: str | int, *, state: str = "") -> None:
        """Point ``alias`` at ``version`` in one registry call (the alias moves whole or not at all)."""
        with self.step(f"moving {name}@{alias} to version {version}", state=state):
            self.client.set_registered_model_alias(name, alias, str(version))


def _probe_server(uri: str) -> None:
    """Fail fast, with a clear message, when an HTTP tracking server does not answer."""
    import requests

    shown = redact(uri)
    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=10)
    except requests.RequestException as exc:
        raise TrackingError(
            f"MLflow tracking server {shown} cannot be reached ({type(exc).__name__}); start it, fix "
            f"mlflow.tracking_uri / MLFLOW_TRACKING_URI, or run with --no-track") from None
    if response.status_code in (401, 403):
        raise TrackingError(f"MLflow tracking server {shown} refused the credentials (HTTP {response.status_code}); "
                            f"set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN")
    if response.status_code >= 500:
        raise TrackingError(f"MLflow tracking server {shown} answers HTTP {response.status_code} on /health")


@contextlib.contextmanager
def _step(shown: str, what: str, *, state: str = "") -> Iterator[None]:
    from mlflow.exceptions import MlflowException

    try:
        yield
    except TrackingError:
        raise
    except (MlflowException, OSError) as exc:
        import requests

        if not isinstance(exc, MlflowException | requests.RequestException) and not _is_connection_problem(exc):
            raise
        why = ("the store cannot be reached or stopped answering" if _is_connection_problem(exc)
               else str(exc).splitlines()[0][:300])
        suffix = f"; {state}" if state else ""
        raise TrackingError(f"MLflow store {shown}: {what} failed: {why}{suffix}") from exc


# --------------------------------------------------------------------------------------------
# logging a training run

def data_source(settings: Settings, truth: dict | None) -> str:
    """``simulated`` / ``events`` and where the events came from (source names or the events file)."""
    where = ", ".join(s.name for s in settings.ingest.sources) or str(settings.paths.events)
    return f"{'simulated' if truth is not None else 'events'} ({where})"


def _default_as_of(events: pd.DataFrame | None, timezone: str) -> pd.Timestamp | None:
    """The first local midnight after the last event: the data are known up to this instant."""
    if events is None or len(events) == 0:
        return None
    last = pd.Timestamp(events["ts"].max()).tz_convert(timezone)
    return (last.normalize() + pd.Timedelta(days=1)).tz_convert("UTC")


def run_params(trained: TrainedTask, settings: Settings, *, events: pd.DataFrame | None,
               as_of: pd.Timestamp | None) -> dict[str, str]:
    """Params of a training run: the resolved config plus what this run saw."""
    import signals
    from signals.labels import horizon_days

    split = trained.split
    fmt = lambda stamps: json.dumps([f"{t:%Y-%m-%d}" for t in stamps])  # noqa: E731
    params = flatten_settings(settings)
    params.update({
        "run.task": trained.task,
        "run.as_of": "" if as_of is None else pd.Timestamp(as_of).isoformat(),
        "run.horizon_days": str(horizon_days(trained.task, settings.labels)),
        "run.cutoffs_train": fmt(split.train),
        "run.cutoffs_validation": fmt(split.validation),
        "run.cutoffs_test": fmt(split.test),
        "run.embargo": split.mode,
        "run.backtest_origins": fmt(s.origin for s in (trained.splits or [split])),
        "run.split_plan": trained.plan.describe() if trained.plan is not None else "",
        "run.fitted_labels_end": fitted_labels_end(trained).isoformat(),
        "run.half_life_days": f"{trained.half_life_days:g}",
        "run.best_iteration": str(trained.model.best_iteration_),
        "run.features": str(len(trained.model.feature_names_)),
        "run.feature_spec_sha256": feature_spec_hash(trained.spec),
        "run.signals_version": signals.__version__,
        "run.git_commit": git_commit() or "unknown",
    })
    if trained.data_range:
        first, last = trained.data_range
        params.update({"data.first_event": pd.Timestamp(first).isoformat(),
                       "data.last_event": pd.Timestamp(last).isoformat()})
    if events is not None and len(events):
        params.update({"data.first_event": pd.Timestamp(events["ts"].min()).isoformat(),
                       "data.last_event": pd.Timestamp(events["ts"].max()).isoformat(),
                       "data.events": str(len(events)),
                       "data.customers": str(events["customer_id"].nunique())})
    return params


def fitted_labels_end(trained: TrainedTask) -> pd.Timestamp:
    """The end of the last label window the model was fitted on (training or validation).

    A comparison on cutoffs before this instant would score the model on outcomes it has seen.
    """
    fitted = [*trained.split.train, *trained.split.validation]
    return max(fitted) + pd.Timedelta(days=trained.split.horizon_days)


def note(trained: TrainedTask, *, extra: str = "") -> str:
    """A short markdown description of a run (shown on the MLflow run page)."""
    m = trained.metrics
    auc = m[(m["model"] == "lightgbm") & (m["metric"] == "roc_auc")].iloc[0]
    ece = m[(m["model"] == "lightgbm") & (m["metric"] == "ece")].iloc[0]
    from signals.modeling.drift import points_and_effect

    points = points_and_effect(trained.points).dropna(subset=["points"]).sort_values("points", ascending=False)
    top = ", ".join(f"{r.touchpoint} {r.points:+.1f}" for r in points.head(5).itertuples())
    origins = len(trained.splits) or 1
    tests = [t for s in (trained.splits or [trained.split]) for t in s.test]
    return (f"**{trained.task}** — backtest over {origins} origin(s), test cutoffs {min(tests):%Y-%m-%d}.."
            f"{max(tests):%Y-%m-%d}: ROC AUC {auc.estimate:.3f} [{auc.low:.3f}, {auc.high:.3f}], "
            f"ECE {ece.estimate:.4f}. "
            f"Half-life {trained.half_life_days:g} days. Top learned points: {top}.{extra}")


def log_trained(tracker: Tracker, run_id: str, trained: TrainedTask, bundle: Path, settings: Settings, *,
                events: pd.DataFrame | None, customers: pd.DataFrame | None, as_of: pd.Timestamp | None,
                log_model: bool = True) -> None:
    """Params, metrics, the bundle (``bundle/``) and the pyfunc model (``model/``) of one trained task.

    The metrics are the bundle's ``summary.json`` (:func:`metrics_of`), so the run and the bundle
    say the same; the per-origin metrics go in as histories (:func:`metrics_by_origin`).
    """
    from signals.modeling.pyfunc import SignalBundle, example_features, save_pyfunc

    summary = json.loads((Path(bundle) / "summary.json").read_text(encoding="utf-8"))
    tracker.log(run_id, params=run_params(trained, settings, events=events, as_of=as_of),
                metrics=metrics_of(summary))
    history = metrics_by_origin(trained)
    if history:
        tracker.log_history(run_id, history)
    tracker.log_artifacts(run_id, bundle, "bundle")
    with tempfile.TemporaryDirectory(prefix="signals-run-") as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps(_redact_tree(json.loads(settings.model_dump_json())), indent=2,
                                     ensure_ascii=False), encoding="utf-8")
        tracker.log_artifact(run_id, config)
        if log_model and events is not None:
            loaded = SignalBundle.load(bundle)
            example = example_features(loaded, events, trained.test_scores, customers=customers)
            info = {"task": trained.task, "timezone": settings.timezone, "run_id": run_id,
                    "as_of": None if as_of is None else pd.Timestamp(as_of).isoformat(),
                    "horizon_days": trained.split.horizon_days,
                    "fitted_labels_end": fitted_labels_end(trained).isoformat()}
            path = save_pyfunc(bundle, Path(tmp) / "model", example=example, info=info)
            tracker.log_artifacts(run_id, path, "model")


def log_training_run(run: TrainRun, settings: Settings, *, events: pd.DataFrame | None = None,
                     customers: pd.DataFrame | None = None, role: str = "candidate",
                     as_of: pd.Timestamp | None = None, tracker: Tracker | None = None) -> str:
    """Log one ``signals train`` run (see the module docstring) and return its run id.

    ``as_of`` defaults to the first local midnight after the last event.
    """
    tracker = tracker or Tracker.connect(settings)
    trained = run.trained
    as_of = as_of if as_of is not None else _default_as_of(events, settings.timezone)
    label = as_of_label(as_of, settings.timezone) if as_of is not None else dt.date.today().isoformat()
    tags = {"task": trained.task, "as_of": label, "role": role, "data_source": data_source(settings, run.truth),
            "mlflow.note.content": note(trained)}
    run_id = tracker.start_run(f"{trained.task} {label}", tags, started=time.time() - run.seconds)
    try:
        log_trained(tracker, run_id, trained, run.bundle, settings, events=events, customers=customers, as_of=as_of)
    except BaseException as exc:
        tracker.fail_run(run_id, exc)
        raise
    tracker.end_run(run_id)
    return run_id


# --------------------------------------------------------------------------------------------
# loading registered models

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


def download_model(uri: str, *, tracking_uri: str | None = None, registry_uri: str | None = None,
                   dst: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Download a pyfunc model (``models:/name@alias``, ``models:/name/3``, ``runs:/id/model``) and
    return its local folder and provenance (``name``, ``version``, ``alias``, ``run_id``, ``uri``)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri_store = tracking_uri or mlflow.get_tracking_uri()
    shown = redact(uri_store)
    if uri_store.startswith(("http://", "https://")):
        _probe_server(uri_store)
    client = MlflowClient(tracking_uri=uri_store, registry_uri=registry_uri)
    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="signals-model-"))
    provenance: dict[str, Any] = {"uri": uri}
    match = _MODELS_URI.match(uri)
    with _step(shown, f"loading {uri}"):
        if match:
            name, alias, version = match["name"], match["alias"], match["version"]
            try:
                if alias:
                    mv = client.get_model_version_by_alias(name, alias)
                elif version == "latest":
                    versions = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"],
                                                            max_results=1)
                    if not versions:
                        raise TrackingError(f"registered model {name!r} has no versions in {shown}")
                    mv = versions[0]
                else:
                    mv = client.get_model_version(name, version)
            except MlflowException as exc:
                if _is_connection_problem(exc):
                    raise
                what = f"alias {alias!r}" if alias else f"version {version}"
                raise TrackingError(f"{uri}: registered model {name!r} has no {what} in {shown} "
                                    f"(run `signals retrain` to register and promote one)") from None
            provenance.update({"name": name, "version": str(mv.version), "alias": alias, "run_id": mv.run_id,
                               "aliases": list(getattr(mv, "aliases", []) or [])})
            source = client.get_model_version_download_uri(name, mv.version)
            folder = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst),
                                                         tracking_uri=uri_store)
        elif uri.startswith("runs:/"):
            run_id, _, path = uri[len("runs:/"):].partition("/")
            provenance["run_id"] = run_id
            folder = client.download_artifacts(run_id, path or "model", str(dst))
        else:
            folder = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=uri_store)
    folder = Path(folder)
    if not (folder / "MLmodel").is_file():
        raise TrackingError(f"{uri} is not a signals pyfunc model (no MLmodel file)")
    return folder, provenance


def load_champion(task: str, settings: Settings, *, alias: str = CHAMPION) -> SignalBundle:
    """The model that ``alias`` (default ``champion``) of ``<prefix>-<task>`` points at, ready to score.

    Returns a :class:`~signals.modeling.pyfunc.SignalBundle` (model, feature spec, thresholds,
    time zone; ``info`` has ``name``, ``version``, ``run_id``). Raises :class:`TrackingError` when
    the store cannot be reached or the alias does not exist.
    """
    from signals.modeling.pyfunc import load_signal_model

    return load_signal_model(f"models:/{model_name(settings, task)}@{alias}", tracking_uri=tracking_uri(settings),
                             registry_uri=settings.mlflow.registry_uri)


# --------------------------------------------------------------------------------------------
# the UI

def ui_command(settings: Settings, *, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The ``mlflow ui`` command for the configured store (local stores only; a server has its own UI)."""
    import sys

    uri = tracking_uri(settings)
    if uri.startswith(("http://", "https://")):
        raise TrackingError(f"the configured store is a server ({redact(uri)}): open it in a browser instead")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if settings.mlflow.artifact_location:
        command += ["--default-artifact-root", Path(settings.mlflow.artifact_location).resolve().as_uri()]
    return command
