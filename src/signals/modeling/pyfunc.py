"""The model bundle as an MLflow pyfunc model, and one loader for every place that scores.

A bundle (``models/<task>/``, see :mod:`signals.jobs.train`) holds the booster, the calibrator and
the feature spec. :class:`SignalBundle` is that bundle in memory; :func:`load_signal_model` loads
it from a bundle folder, a saved pyfunc model folder or any MLflow model URI
(``models:/signals-purchase@champion``, ``runs:/<run_id>/model``), so batch scoring, notebooks
and tests share one path.

:class:`SignalPyfunc` wraps a bundle for MLflow (``mlflow.pyfunc.load_model``,
``mlflow models predict``, ``mlflow.pyfunc.spark_udf``). Its ``predict`` takes either

- a **feature frame**: the columns of :func:`signals.build_features` (extra columns are ignored),
  returning one calibrated probability per row in a ``probability`` column; or
- **raw canonical events** (``customer_id, ts, touchpoint[, value, source]`` plus the raw
  static attribute columns the spec needs, e.g. ``segment``, and optionally the customer's
  ``first_seen``, each repeated on the customer's rows) and an as-of date, given as the
  ``as_of`` parameter (``params={"as_of": "2025-11-01"}``) or an ``as_of`` column. The features
  are built with the *saved* spec (the spec, not the caller, decides the features) for every
  customer seen before the as-of instant, returning ``customer_id, cutoff, probability``.

The signature lists the model's features first (numbers as ``double``; static attributes as
``Any``, since pandas hands them over as categoricals and Spark as strings), then the optional
event and id columns, all typed ``Any``: pandas gives them as categoricals and tz-aware
timestamps, JSON and CSV as strings, and the model converts them itself with the package's own
validation (naive timestamps are UTC). Every column is optional, because the two input forms
share one signature; so ``spark_udf`` needs its columns named, e.g.
``udf(*bundle.feature_names)`` or ``udf(struct(*cols))``.

A saved pyfunc model carries the ``signals`` package source (``code/``), so it loads where the
package is not installed (a Spark executor with the pinned requirements).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.modeling.estimators import SignalModel
from signals.schemas import CUSTOMER_ID, CUTOFF, SOURCE, TOUCHPOINT, TS, VALUE

__all__ = [
    "PYFUNC_ARTIFACT",
    "SignalBundle",
    "SignalPyfunc",
    "load_signal_model",
    "model_signature",
    "save_pyfunc",
]

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # models:/, runs:/, s3://, ... (not C:/)
PYFUNC_ARTIFACT = "bundle"          # the bundle folder inside a pyfunc model's artifacts
INFO_FILE = "signal.json"           # task, time zone, horizon and provenance, next to the bundle
THRESHOLDS_FILE = "thresholds.json"  # validation-chosen cut points (bands, alarms), if the bundle has them
PROBABILITY = "probability"
AS_OF = "as_of"
FIRST_SEEN = "first_seen"
EVENT_COLUMNS = (CUSTOMER_ID, TS, TOUCHPOINT, VALUE, SOURCE)
_REQUIREMENTS = ("mlflow", "lightgbm", "pandas", "numpy", "scikit-learn", "scipy", "pydantic", "pyarrow", "pyyaml")


@dataclass
class SignalBundle:
    """A trained model with everything needed to score: the model, its feature spec and thresholds.

    Attributes
    ----------
    task : str
        ``churn`` or ``purchase``.
    model : SignalModel
        Booster + calibrator.
    spec : FeatureSpec
        The saved spec (catalog, windows, half-lives, static columns, learned points).
    thresholds : dict or None
        The bundle's ``thresholds.json`` (cut points chosen on validation data), if it has one.
    timezone : str
        The training config's time zone: an as-of *date* means its first moment there.
    info : dict
        Provenance (``signal.json``, ``summary.json``; for a registry model also ``name``,
        ``version``, ``run_id``, ``alias``).
    folder : Path
        Where the bundle files are (points.csv, metrics.csv, figures/, ...).
    """

    task: str
    model: SignalModel
    spec: FeatureSpec
    thresholds: dict | None = None
    timezone: str = "UTC"
    info: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None

    @property
    def feature_names(self) -> list[str]:
        """The model's input features, in order."""
        return list(self.model.feature_names_)

    @property
    def points(self) -> pd.DataFrame | None:
        """The learned points table (配点表) of the bundle, if the folder has it."""
        path = None if self.folder is None else self.folder / "points.csv"
        return pd.read_csv(path) if path is not None and path.is_file() else None

    @classmethod
    def load(cls, folder: str | Path) -> SignalBundle:
        """Load a bundle folder (``model/``, ``spec.json``; optional ``signal.json``,
        ``summary.json``, ``thresholds.json``)."""
        folder = Path(folder)
        missing = [name for name in ("model/model.json", "model/booster.txt", "spec.json")
                   if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a model bundle: missing {', '.join(missing)} "
                                    f"(write one with `signals train`)")
        info: dict[str, Any] = {}
        for name in ("summary.json", INFO_FILE):
            path = folder / name
            if path.is_file():
                info.update(json.loads(path.read_text(encoding="utf-8")))
        info.pop("settings", None)
        thresholds_path = folder / THRESHOLDS_FILE
        thresholds = json.loads(thresholds_path.read_text(encoding="utf-8")) if thresholds_path.is_file() else None
        spec = FeatureSpec.from_json((folder / "spec.json").read_text(encoding="utf-8"))
        return cls(task=str(info.get("task", "")), model=SignalModel.load(folder / "model"), spec=spec,
                   thresholds=thresholds, timezone=str(info.get("timezone") or "UTC"), info=info, folder=folder)

    # ---- scoring ----------------------------------------------------------------------------
    def model_input(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's columns of ``features``, in order, with text columns as categoricals.

        Raises ``ValueError`` naming the missing features.
        """
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise ValueError(f"the feature frame lacks {len(missing)} of the model's {len(self.feature_names)} "
                             f"features, e.g. {missing[:5]}; build it with the saved spec "
                             f"(SignalBundle.features or signals.build_features(events, cutoffs, bundle.spec))")
        X = features[self.feature_names]
        text = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c].dtype)
                                             or isinstance(X[c].dtype, pd.CategoricalDtype))]
        if text:  # JSON, CSV and Spark hand static attributes over as strings; LightGBM maps categories by value
            X = X.assign(**{c: X[c].astype("category") for c in text})
        return X

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability for each row of a feature frame."""
        return self.model.probability(self.model_input(features))

    def features(self, events: pd.DataFrame, as_of, *, customers: pd.DataFrame | None = None) -> pd.DataFrame:
        """The saved spec's features as of ``as_of`` for every customer seen before it.

        ``as_of`` is an instant, or a date meaning its first moment in :attr:`timezone`.
        Only events with ``ts < as_of`` are used.
        """
        from signals.cutoffs import scoring_cutoffs
        from signals.schemas import check_events

        events = check_events(events, self.spec.touchpoints)
        cutoffs = scoring_cutoffs(events, as_of, timezone=self.timezone, customers=customers)
        if len(cutoffs) == 0:
            raise ValueError(f"no customer was seen before {as_of}: nothing to score")
        return build_features(events, cutoffs, self.spec, customers=customers, validate=False)

    def predict_events(self, events: pd.DataFrame, as_of, *, customers: pd.DataFrame | None = None) -> pd.DataFrame:
        """``customer_id, cutoff, probability`` as of ``as_of`` from raw canonical events."""
        X = self.features(events, as_of, customers=customers)
        return pd.DataFrame({CUSTOMER_ID: X[CUSTOMER_ID].to_numpy(), CUTOFF: X[CUTOFF].to_numpy(),
                             PROBABILITY: self.predict(X)})


# --------------------------------------------------------------------------------------------
# the pyfunc wrapper

def _customers_from_events(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """A customers table from the static attribute columns (and ``first_seen``, if given) carried on
    the event rows: the first value per customer."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the model uses static attributes {list(columns)}: add column(s) {missing} to the "
                         f"event rows (one value per customer)")
    wanted = [*columns, *([FIRST_SEEN] if FIRST_SEEN in frame.columns else [])]
    if not wanted:
        return None
    table = frame[[CUSTOMER_ID, *wanted]].assign(**{CUSTOMER_ID: frame[CUSTOMER_ID].astype(str)})
    if FIRST_SEEN in wanted:
        from signals.schemas import to_utc

        table[FIRST_SEEN] = to_utc(table[FIRST_SEEN], what="first_seen").to_numpy()
    return table.groupby(CUSTOMER_ID, sort=True, observed=True).first().reset_index()


class SignalPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc model around a :class:`SignalBundle` (see the module docstring for the inputs)."""

    def load_context(self, context) -> None:
        self.bundle = SignalBundle.load(context.artifacts[PYFUNC_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        bundle = self.bundle
        as_of = (params or {}).get(AS_OF)
        has_features = all(c in frame.columns for c in bundle.feature_names)
        if not has_features and TS in frame.columns and TOUCHPOINT in frame.columns:
            if as_of is None and AS_OF in frame.columns:
                values = frame[AS_OF].dropna().astype(str).unique()
                if len(values) != 1:
                    raise ValueError(f"the as_of column must hold one value, found {len(values)}")
                as_of = values[0]
            if as_of is None:
                raise ValueError("raw events need an as-of date: params={'as_of': '2025-11-01'} or an as_of column")
            customers = _customers_from_events(frame, bundle.spec.static_columns)
            events = frame[[c for c in EVENT_COLUMNS if c in frame.columns]]
            return bundle.predict_events(events, as_of, customers=customers)
        return pd.DataFrame({PROBABILITY: bundle.predict(frame)})


def model_signature(bundle: SignalBundle, example: pd.DataFrame):
    """The pyfunc signature: the model's features (numbers ``double``, text ``Any``), then the
    optional id and raw-event columns (``Any``), an ``as_of`` parameter, and a ``probability`` output."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    inputs = []
    features = [*bundle.feature_names, *(c for c in feature_columns(example) if c not in bundle.feature_names)]
    for name in features:  # the model's own first (spark_udf takes unnamed columns in this order)
        numeric = pd.api.types.is_numeric_dtype(example[name].dtype) if name in example.columns else True
        inputs.append(ColSpec("double" if numeric else AnyType(), name, required=False))
    extra = [CUSTOMER_ID, CUTOFF, AS_OF, TS, TOUCHPOINT, VALUE, SOURCE, FIRST_SEEN, *bundle.spec.static_columns]
    inputs += [ColSpec(AnyType(), name, required=False) for name in dict.fromkeys(extra) if name not in features]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double", PROBABILITY)]),
                          params=ParamSchema([ParamSpec(AS_OF, "string", None)]))


def serving_frame(bundle: SignalBundle, features: pd.DataFrame) -> pd.DataFrame:
    """The model's columns of a feature frame as plain JSON / Spark types (numbers float64, text str)."""
    X = features[bundle.feature_names]
    return X.astype({c: ("float64" if pd.api.types.is_numeric_dtype(X[c].dtype) else object) for c in X.columns})


_MODEL_SCRIPT = '''"""signals: the model bundle as an MLflow pyfunc model (see signals.modeling.pyfunc)."""
import mlflow

from signals.modeling.pyfunc import SignalPyfunc

mlflow.models.set_model(SignalPyfunc())
'''


@contextlib.contextmanager
def _quiet(logger: str):
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


def _requirements() -> list[str]:
    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # pragma: no cover - every one is a dependency of signals
            out.append(name)
    return out


def save_pyfunc(bundle_folder: str | Path, path: str | Path, *, example: pd.DataFrame,
                info: dict[str, Any] | None = None) -> Path:
    """Save the bundle in ``bundle_folder`` as an MLflow pyfunc model at ``path`` (a new folder).

    ``example`` is a feature frame of a few rows (the input example; it also decides which
    features are text). ``info`` (task, timezone, as_of, ...) is written to the bundle copy's
    ``signal.json``. The model carries the bundle as its artifact, the ``signals`` source as its
    code and pinned pip requirements.
    """
    import signals

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="signals-pyfunc-") as tmp:
        staged = Path(tmp) / PYFUNC_ARTIFACT
        shutil.copytree(bundle_folder, staged, ignore=shutil.ignore_patterns(".*"))
        if info:
            current = json.loads((staged / INFO_FILE).read_text(encoding="utf-8")) if (staged / INFO_FILE).is_file() else {}
            (staged / INFO_FILE).write_text(json.dumps(current | info, indent=2, default=str), encoding="utf-8")
        code = Path(tmp) / "code" / "signals"
        shutil.copytree(Path(signals.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        bundle = SignalBundle.load(staged)
        sample = serving_frame(bundle, example.head(5))
        script = Path(tmp) / "signal_model.py"  # models from code: no pickled objects in the model
        script.write_text(_MODEL_SCRIPT, encoding="utf-8")
        with _quiet("mlflow"):  # it logs "validating the input example" at INFO on every save
            mlflow.pyfunc.save_model(
                path, python_model=str(script), artifacts={PYFUNC_ARTIFACT: str(staged)},
                code_paths=[str(code)], signature=model_signature(bundle, example), input_example=sample,
                pip_requirements=_requirements(), metadata={"task": bundle.task, "signals_version": signals.__version__},
            )
    return path


# --------------------------------------------------------------------------------------------
# loading

def load_signal_model(uri_or_folder: str | Path, *, tracking_uri: str | None = None,
                      registry_uri: str | None = None, dst: str | Path | None = None) -> SignalBundle:
    """Load a model for scoring, wherever it is.

    Parameters
    ----------
    uri_or_folder : str or Path
        A bundle folder (``models/purchase``), a saved pyfunc model folder (has ``MLmodel``), or
        an MLflow model URI: ``models:/signals-purchase@champion``, ``models:/signals-purchase/3``,
        ``runs:/<run_id>/model``.
    tracking_uri, registry_uri : str, optional
        The MLflow store to resolve a URI against (default: MLflow's own, ``MLFLOW_TRACKING_URI``).
    dst : str or Path, optional
        Where to download a URI's model (default: a new temporary folder, kept: the bundle's
        tables such as ``points.csv`` are read from it on demand).

    Returns
    -------
    SignalBundle
        Model, feature spec, thresholds (if any), time zone and provenance.

    Raises
    ------
    FileNotFoundError
        A folder is neither a bundle nor a pyfunc model.
    signals.errors.TrackingError
        The URI cannot be resolved (unknown model, version or alias; unreachable store).
    """
    text = str(uri_or_folder)
    local = Path(text)
    if not _URI.match(text):
        if (local / "MLmodel").is_file():
            return SignalBundle.load(local / "artifacts" / PYFUNC_ARTIFACT)
        return SignalBundle.load(local)
    from signals.io.tracking import download_model

    folder, provenance = download_model(text, tracking_uri=tracking_uri, registry_uri=registry_uri, dst=dst)
    bundle = SignalBundle.load(Path(folder) / "artifacts" / PYFUNC_ARTIFACT)
    bundle.info.update(provenance)
    return bundle


def example_features(bundle: SignalBundle, events: pd.DataFrame, cutoffs: pd.DataFrame, *,
                     customers: pd.DataFrame | None = None, rows: int = 5) -> pd.DataFrame:
    """A few feature rows built with the bundle's spec (an input example for :func:`save_pyfunc`)."""
    sample = cutoffs[[CUSTOMER_ID, CUTOFF]].head(rows).reset_index(drop=True)
    X = build_features(events, sample, bundle.spec, customers=customers)
    return X[[CUSTOMER_ID, CUTOFF, *feature_columns(X)]]
