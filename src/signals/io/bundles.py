"""Loading a trained model for scoring: from a bundle folder, or from the MLflow registry by alias.

A bundle (``models/<task>/``, written by :mod:`signals.jobs.train`) holds the booster and its
calibrator (``model/``), the feature spec with the learned points (``spec.json``), the scoring
policy (``thresholds.json``: band cut points and alarm thresholds chosen on validation data) and
``summary.json``. A bundle has no registry version, so its version is a digest of the files that
decide its scores: the same model gives the same version, and re-scoring replaces its rows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from signals.errors import DataError
from signals.features.spec import FeatureSpec
from signals.modeling.estimators import SignalModel
from signals.modeling.scoring import ScoringPolicy
from signals.settings import LabelSettings

__all__ = ["LoadedModel", "bundle_version", "find_bundle", "load_bundle", "load_registered", "registered_name"]

_FILES = ("model/booster.txt", "model/model.json", "spec.json", "thresholds.json")


@dataclass
class LoadedModel:
    """A model ready to score: what it computes and where it came from."""

    task: str
    model: SignalModel
    spec: FeatureSpec
    policy: ScoringPolicy
    labels: LabelSettings | None  # the label rules it was trained with (its population)
    name: str             # registered model name (signals-purchase), also for bundles
    version: str          # registry version, or "bundle-<digest>"
    run_id: str | None    # the MLflow run that trained it, when known
    source: str           # the folder or models:/ URI it was loaded from
    folder: Path | None = None  # the bundle's files (points.csv, metrics.csv, figures/)


def registered_name(prefix: str, task: str) -> str:
    """``signals-purchase``: one registered model per task."""
    return f"{prefix}-{task}"


def bundle_version(folder: str | Path) -> str:
    """``bundle-<12 hex>``: a digest of the booster, calibrator, spec and policy files."""
    digest = hashlib.sha256()
    for name in _FILES:
        digest.update(name.encode())
        digest.update((Path(folder) / name).read_bytes())
    return f"bundle-{digest.hexdigest()[:12]}"


def load_bundle(folder: str | Path, *, task: str | None = None, prefix: str = "signals",
                run_id: str | None = None, version: str | None = None, source: str | None = None) -> LoadedModel:
    """Load a bundle folder; ``task`` (when given) must match the bundle's task.

    Raises
    ------
    DataError
        The folder is not a complete bundle (names what is missing, e.g. a ``thresholds.json`` from
        an older training run), or is another task's bundle.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"no model bundle at {folder}: train one with `signals train --task {task or '<task>'}` "
                        "or pass --model champion to load it from the MLflow registry")
    missing = [name for name in (*_FILES, "summary.json") if not (folder / name).is_file()]
    if missing:
        hint = (" (thresholds.json holds the band cut points and alarm thresholds: retrain with this version of "
                "signals)" if "thresholds.json" in missing else "")
        raise DataError(f"{folder} is not a complete model bundle: {missing} missing{hint}")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    found = summary.get("task")
    if task is not None and found != task:
        raise DataError(f"{folder} holds a {found} model, not {task}")
    policy = ScoringPolicy.model_validate_json((folder / "thresholds.json").read_text(encoding="utf-8"))
    trained_labels = (summary.get("settings") or {}).get("labels")
    return LoadedModel(
        task=found,
        model=SignalModel.load(folder / "model"),
        spec=FeatureSpec.from_json((folder / "spec.json").read_text(encoding="utf-8")),
        policy=policy,
        labels=LabelSettings.model_validate(trained_labels) if trained_labels else None,
        name=registered_name(prefix, found),
        version=version or bundle_version(folder),
        run_id=run_id or summary.get("run_id"),
        source=source or str(folder),
        folder=folder,
    )


def find_bundle(root: str | Path) -> Path | None:
    """The folder under ``root`` (itself included) that holds a bundle (``spec.json`` + ``model/``)."""
    root = Path(root)
    for spec in sorted(root.rglob("spec.json"), key=lambda p: len(p.parts)):
        if (spec.parent / "model" / "booster.txt").is_file():
            return spec.parent
    return None


def load_registered(task: str, alias: str, *, settings) -> LoadedModel:
    """Load the version of ``<prefix>-<task>`` that carries ``alias`` in the MLflow registry
    (:func:`signals.io.tracking.load_champion`: the tracking URI and its credentials come from the
    settings and the environment).

    Raises
    ------
    TrackingError
        The store cannot be reached, or no version has that alias (the message says how to register one).
    DataError
        The registered model holds no scoring policy (``thresholds.json``): retrain it.
    """
    from signals.io.tracking import load_champion

    bundle = load_champion(task, settings, alias=alias)
    info = bundle.info
    version = str(info.get("version"))
    return load_bundle(bundle.folder, task=task, prefix=settings.mlflow.registered_model_prefix,
                       run_id=info.get("run_id"), version=version,
                       source=f"models:/{info.get('name')}@{alias} (version {version})")
