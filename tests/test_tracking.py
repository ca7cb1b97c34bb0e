"""MLflow tracking of a training run, and the bundle as a pyfunc model (on a temporary SQLite store)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from signals.cli import app
from signals.errors import TrackingError
from signals.features.matrix import build_features
from signals.features.spec import FeatureSpec
from signals.io.tracking import (
    Tracker,
    feature_spec_hash,
    flatten_settings,
    log_training_run,
    redact,
    run_name,
    tracking_uri,
)
from signals.jobs.retrain import latest_test_rows
from signals.jobs.train import TrainRun, write_bundle
from signals.modeling.pyfunc import SignalBundle, load_signal_model, serving_frame
from signals.modeling.training import fit_task
from signals.settings import load_settings
from signals.simulate import simulate_crm
from tests.small_trained_world import SMALL_TRAINING

ROOT = Path(__file__).resolve().parents[1]
SMALL = [*SMALL_TRAINING, "model.points_refits=2"]


# ---- names and params (no store) ----------------------------------------------------------

def test_run_names_are_task_and_local_as_of_date():
    assert run_name("purchase", pd.Timestamp("2025-10-30 15:00", tz="UTC"), "Asia/Tokyo") == "purchase 2025-10-31"
    assert run_name("churn", "2025-10-31") == "churn 2025-10-31"


def test_params_are_the_resolved_config_and_a_config_holds_no_password():
    from signals.errors import ConfigError

    with pytest.raises(ConfigError, match=r"mlflow.tracking_uri.*holds a password.*MLFLOW_TRACKING_PASSWORD"):
        load_settings(overrides=["mlflow.tracking_uri=https://bob:pw@mlflow.example"])
    with pytest.raises(ConfigError, match=r"mlflow.registry_uri.*holds a password"):
        load_settings(overrides=["mlflow.registry_uri=https://bob:pw@mlflow.example"])
    settings = load_settings(overrides=["mlflow.tracking_uri=https://bob@mlflow.example"])
    params = flatten_settings(settings)
    assert params["mlflow.tracking_uri"] == "https://bob@mlflow.example" and params["sink.url"] == "sqlite:///crm.db"
    assert params["model.lightgbm.learning_rate"] == "0.05"
    assert params["mlflow.promotion.auc_margin"] == "0.005"
    assert all(len(k) <= 250 and len(v) <= 6000 for k, v in params.items())
    # what comes from the environment (MLFLOW_TRACKING_URI) is shown without its password
    assert redact("https://alice:s3cret@mlflow.example.com/") == "https://alice:***@mlflow.example.com/"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_feature_spec_hash_ignores_learned_points_but_not_windows():
    settings = load_settings()
    spec = FeatureSpec.from_settings(settings)
    learned = spec.with_learned_points({"webinar": 3.0}, 30)
    assert feature_spec_hash(spec) == feature_spec_hash(learned)
    other = FeatureSpec.from_settings(load_settings(overrides=["features.windows_days=[7, 30]"]))
    assert feature_spec_hash(other) != feature_spec_hash(spec)


def test_tracking_uri_comes_from_the_environment_when_set(monkeypatch):
    settings = load_settings(overrides=["mlflow.tracking_uri=sqlite:///a.db"])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(settings) == "sqlite:///a.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking_uri(settings) == "http://mlflow.internal:5000"
    assert tracking_uri(load_settings(overrides=["mlflow.tracking_uri_env=null"])) == "sqlite:///mlflow.db"


def test_an_unreachable_server_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:secret@127.0.0.1:{port}")  # credentials: environment only
    with pytest.raises(TrackingError, match=r"cannot be reached") as err:
        Tracker.connect(load_settings())
    assert "secret" not in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    # the CLI fails fast: before any training, one line, no traceback; --no-track never asks the store
    monkeypatch.chdir(tmp_path)
    tiny = ["--set", "simulate.n_customers=200", "--set", f"mlflow.tracking_uri=http://127.0.0.1:{port}",
            "--set", "mlflow.tracking_uri_env=null"]
    assert CliRunner().invoke(app, ["simulate", *tiny, "--no-messy", "--no-progress"]).exit_code == 0

    def reached_training(*args, **kwargs):
        raise RuntimeError("training started")

    monkeypatch.setattr("signals.jobs.train.fit_task", reached_training)
    monkeypatch.setattr("signals.jobs.retrain.fit_task", reached_training)
    for command in (["train", "--task", "purchase"], ["retrain", "--as-of", "2025-10-01"]):
        result = CliRunner().invoke(app, [*command, *tiny])
        assert result.exit_code == 1 and "cannot be reached" in result.output, result.output
        assert "Traceback" not in result.output and "secret" not in result.output
    result = CliRunner().invoke(app, ["train", "--task", "purchase", "--no-track", *tiny])
    assert str(result.exception) == "training started"


# ---- a tracked training run ---------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_world(tmp_path_factory):
    """A small simulated world, a purchase model fitted on it and its bundle: built once per session."""
    from tests.conftest import build_once

    def build(folder: Path):
        settings = load_settings(ROOT / "configs" / "demo.yaml", overrides=SMALL)
        world = simulate_crm(settings)
        trained = fit_task(world.events, settings, task="purchase", customers=world.customers)
        bundle = write_bundle(trained, folder / "purchase", truth=world.truth, settings=settings, seconds=1.0)
        return settings, world, trained, bundle

    return build_once(tmp_path_factory, "tracking-trained-world", build)


@pytest.fixture(scope="module")
def logged(trained_world, mlflow_template_db, tmp_path_factory):
    """That training run logged to a store of its own, once per session (the tests only read it)."""
    from tests.conftest import build_once

    settings, world, trained, folder = trained_world

    def build(where: Path):
        shutil.copyfile(mlflow_template_db, where / "mlflow.db")
        store = [f"mlflow.tracking_uri=sqlite:///{where / 'mlflow.db'}", f"mlflow.artifact_location={where / 'art'}",
                 "mlflow.tracking_uri_env=null"]
        tracked = load_settings(ROOT / "configs" / "demo.yaml", overrides=[*SMALL, *store])
        run_id = log_training_run(TrainRun(trained, folder, world.truth, 1.0), tracked, events=world.events,
                                  customers=world.customers)
        return tracked, run_id

    tracked, run_id = build_once(tmp_path_factory, "tracking-logged-run", build)
    return tracked, world, trained, run_id


@pytest.mark.slow
def test_a_training_run_is_named_tagged_and_has_every_metric_and_the_bundle(logged):
    from mlflow import MlflowClient

    settings, world, trained, run_id = logged
    client = MlflowClient(tracking_uri(settings))
    run = client.get_run(run_id)
    assert run.info.run_name == "purchase 2026-01-01" and run.info.status == "FINISHED"
    tags = run.data.tags
    assert (tags["task"], tags["as_of"], tags["role"]) == ("purchase", "2026-01-01", "candidate")
    assert tags["data_source"].startswith("simulated (sfa, marketing, support)")
    params = run.data.params
    for key in ("run.cutoffs_train", "run.cutoffs_validation", "run.cutoffs_test", "run.half_life_days",
                "run.feature_spec_sha256", "run.signals_version", "run.git_commit", "data.first_event",
                "data.last_event", "model.lightgbm.num_leaves", "catalog.seminar"):
        assert params.get(key), key
    assert json.loads(params["run.cutoffs_test"]) == [f"{t:%Y-%m-%d}" for t in trained.split.test]
    assert params["run.feature_spec_sha256"] == feature_spec_hash(trained.spec)
    metrics = run.data.metrics
    for model in trained.metrics["model"].unique():
        for metric in ("roc_auc", "pr_auc", "top_decile_lift", "brier", "ece"):
            key = f"{model}.{metric}"
            assert metrics[f"{key}_low"] <= metrics[key] + 1e-9 or metric == "ece", key
            assert f"{key}_high" in metrics, key
    assert metrics["lightgbm.roc_auc"] == pytest.approx(trained.metric("lightgbm", "roc_auc"))
    assert "truth.spearman" in metrics and "points.webinar" in metrics
    by_origin = getattr(trained, "metrics_by_origin", None)
    if by_origin is not None and len(by_origin):  # the rolling-origin backtest: one step per origin
        history = client.get_metric_history(run_id, "origin.lightgbm.roc_auc")
        assert sorted(m.step for m in history) == list(range(1, by_origin["origin"].nunique() + 1))
    listed = {a.path for a in client.list_artifacts(run_id, "bundle")}
    assert {"bundle/points.csv", "bundle/metrics.csv", "bundle/summary.json", "bundle/top_reasons.csv",
            "bundle/spec.json", "bundle/figures", "bundle/model"} <= listed
    figures = {Path(a.path).name for a in client.list_artifacts(run_id, "bundle/figures")}
    assert {"points.png", "metrics.png", "calibration.png"} <= figures
    assert any(a.path == "model/MLmodel" for a in client.list_artifacts(run_id, "model"))


@pytest.mark.slow
def test_the_pyfunc_model_reproduces_the_test_probabilities(logged):
    import mlflow.pyfunc

    settings, world, trained, run_id = logged
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri(settings)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    test = latest_test_rows(trained)  # the kept model's test rows (earlier backtest origins had their own models)
    spec = FeatureSpec.from_json(trained.spec.to_json())
    X = build_features(world.events, test[["customer_id", "cutoff"]], spec, customers=world.customers)
    expected = test["prob__lightgbm"].to_numpy()
    # a feature frame straight from build_features (categoricals, int32 counts, tz-aware cutoffs)
    np.testing.assert_allclose(model.predict(X)["probability"].to_numpy(), expected, rtol=0, atol=1e-12)
    # raw canonical events + as-of: the features come from the saved spec
    last = max(trained.split.test)
    attributes = world.customers[["customer_id", "first_seen", "segment", "industry", "region", "employees"]]
    events = world.events.merge(attributes, on="customer_id", how="left")
    out = model.predict(events, params={"as_of": last.isoformat()})
    assert list(out.columns) == ["customer_id", "cutoff", "probability"]
    got = out.set_index("customer_id")["probability"]
    at_last = test[test["cutoff"] == last]
    np.testing.assert_allclose(got.loc[at_last["customer_id"].astype(str)].to_numpy(),
                               at_last["prob__lightgbm"].to_numpy(), rtol=0, atol=1e-12)
    # the loader for scoring gives the same model, spec and provenance
    bundle = load_signal_model(f"runs:/{run_id}/model", tracking_uri=tracking_uri(settings))
    assert bundle.task == "purchase" and bundle.timezone == "Asia/Tokyo" and bundle.info["run_id"] == run_id
    assert bundle.spec == trained.spec
    np.testing.assert_allclose(bundle.predict(X), expected, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_mlflow_models_predict_accepts_the_model(logged, tmp_path):
    settings, world, trained, run_id = logged
    test = latest_test_rows(trained).head(40)
    rows = test[["customer_id", "cutoff"]]
    bundle = load_signal_model(f"runs:/{run_id}/model", tracking_uri=tracking_uri(settings), dst=tmp_path / "m")
    X = build_features(world.events, rows, bundle.spec, customers=world.customers)
    frame = serving_frame(bundle, X)
    request = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False, double_precision=15))}
    (tmp_path / "in.json").write_text(json.dumps(request))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(settings)}
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    done = subprocess.run([str(mlflow_cli), "models", "predict", "-m", f"runs:/{run_id}/model", "-i",
                           str(tmp_path / "in.json"), "-t", "json", "--env-manager", "local", "-o",
                           str(tmp_path / "out.json")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    predictions = json.loads((tmp_path / "out.json").read_text())["predictions"]
    got = np.array([p["probability"] for p in predictions])
    np.testing.assert_allclose(got, test["prob__lightgbm"].to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.slow
@pytest.mark.xdist_group("spark")  # the worker that runs the Spark tests (one JVM per worker)
def test_spark_udf_accepts_the_model(logged, tmp_path):
    pytest.importorskip("pyspark", reason="pyspark is not installed: install the spark extra")
    import mlflow
    import mlflow.pyfunc
    from pyspark.sql import SparkSession

    from signals import spark as ss

    settings, world, trained, run_id = logged
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(tmp_path),
                                                 tracking_uri=tracking_uri(settings))
    bundle = load_signal_model(folder)
    test = latest_test_rows(trained).head(60)
    X = build_features(world.events, test[["customer_id", "cutoff"]], bundle.spec, customers=world.customers)
    existing = SparkSession.getActiveSession()
    session = existing or ss.spark_session("local[1]", shuffle_partitions=1, app_name="signals-pyfunc-udf")
    try:
        frame = session.createDataFrame(serving_frame(bundle, X))
        udf = mlflow.pyfunc.spark_udf(session, folder, result_type="double", env_manager="local")
        got = frame.withColumn("p", udf(*bundle.feature_names)).select("p").toPandas()["p"].to_numpy()
    finally:
        if existing is None:
            session.stop()
    np.testing.assert_allclose(got, test["prob__lightgbm"].to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.slow
def test_a_bundle_folder_loads_for_scoring(trained_world, tmp_path):
    settings, world, trained, shared = trained_world
    folder = Path(shutil.copytree(shared, tmp_path / "purchase"))
    (folder / "thresholds.json").unlink(missing_ok=True)
    bundle = load_signal_model(folder)
    assert isinstance(bundle, SignalBundle) and bundle.task == "purchase" and bundle.thresholds is None
    assert bundle.feature_names == trained.model.feature_names_
    (folder / "thresholds.json").write_text(json.dumps({"bands": [0.05, 0.2]}))
    assert load_signal_model(folder).thresholds == {"bands": [0.05, 0.2]}
    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        load_signal_model(folder / "figures")
    with pytest.raises(ValueError, match="lacks"):
        bundle.predict(pd.DataFrame({"freq__all__7d": [1.0]}))


def test_a_missing_alias_is_a_clear_error(mlflow_store):
    from signals.io.tracking import load_champion

    settings = load_settings(overrides=mlflow_store)
    Tracker.connect(settings)
    with pytest.raises(TrackingError, match=r"signals-purchase.*no alias 'champion'.*signals retrain"):
        load_champion("purchase", settings)


@pytest.mark.slow
def test_the_saved_model_loads_where_signals_is_not_installed(trained_world, tmp_path):
    """The pyfunc model carries the package source: a Python without the installed signals loads it."""
    import site

    from signals.modeling.pyfunc import example_features, save_pyfunc

    settings, world, trained, folder = trained_world
    example = example_features(load_signal_model(folder), world.events, trained.test_scores, customers=world.customers)
    path = save_pyfunc(folder, tmp_path / "model", example=example, info={"task": "purchase", "timezone": "Asia/Tokyo"})
    frame = serving_frame(load_signal_model(folder), example)
    frame.to_parquet(tmp_path / "x.parquet")
    # -S: no site-packages processing, so the editable install of signals is invisible; the
    # dependencies' folder is added by hand
    script = (f"import sys; sys.path.append({site.getsitepackages()[0]!r}); import mlflow.pyfunc, pandas as pd; "
              f"m = mlflow.pyfunc.load_model({str(path)!r}); import signals; print(signals.__file__); "
              f"print(m.predict(pd.read_parquet({str(tmp_path / 'x.parquet')!r}))['probability'].tolist())")
    done = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    where, probabilities = done.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(path / "code" / "signals"))
    np.testing.assert_allclose(json.loads(probabilities), load_signal_model(folder).predict(example), rtol=0, atol=1e-12)
