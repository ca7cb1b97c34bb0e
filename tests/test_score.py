"""`signals score` end to end on a small simulated world: every customer and task written once per
as-of date and model, refusals with clear messages, alarms checked against the simulator's truth."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from signals.cli import app
from signals.errors import DataError, TrackingError
from signals.io.sinks import open_sink
from signals.jobs.score import load_models, run_score
from signals.jobs.simulate import run_simulate
from signals.jobs.train import run_train
from signals.labels import purchase_within
from signals.settings import load_settings
from signals.simulate import simulate_crm

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("score_world")]  # one worker builds the world


@pytest.fixture(scope="module")
def world(tmp_path_factory, mlflow_template_db):
    import shutil

    root = tmp_path_factory.mktemp("score")
    shutil.copyfile(mlflow_template_db, root / "mlflow.db")  # migrated once per session
    settings = load_settings(overrides=[
        "simulate.n_customers=3000", "model.bootstrap_rounds=20", "model.points_reference_rows=500",
        "model.lightgbm.num_threads=1", "features.static_columns=[segment]",
        f"paths.events={root / 'events.parquet'}", f"paths.customers={root / 'customers.parquet'}",
        f"paths.truth={root / 'truth.json'}", f"paths.models_dir={root / 'models'}",
        f"sink.url=sqlite:///{root / 'crm.db'}", "sink.url_env=null",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}", f"mlflow.artifact_location={root / 'mlartifacts'}",
        "mlflow.tracking_uri_env=null",
    ])
    run_simulate(settings, messy=False)
    for task in ("purchase", "churn"):
        run_train(settings, task=task)
    return settings, root


def test_score_writes_every_customer_and_task_once_per_as_of_and_model(world):
    settings, root = world
    first = run_score(settings, as_of="2025-11-01", show_progress=False)
    buyers, subscribers = first.summary["purchase"]["rows"], first.summary["churn"]["rows"]
    assert buyers > 2000 and 300 < subscribers < buyers  # each task scores its population
    again = run_score(settings, as_of="2025-11-01", show_progress=False)
    assert again.written.rows == buyers + subscribers
    result = CliRunner().invoke(app, ["score", "--as-of", "2025-12-01", "--no-track", "--set",
                                      f"sink.url=sqlite:///{root / 'crm.db'}", "--set", "sink.url_env=null",
                                      "--set", f"paths.events={settings.paths.events}",
                                      "--set", f"paths.customers={settings.paths.customers}",
                                      "--set", f"paths.models_dir={settings.paths.models_dir}"])
    assert result.exit_code == 0, result.output
    assert "kizashi" in result.output and "cooling" in result.output
    table = open_sink(settings.sink).read()
    assert not table.duplicated(["customer_id", "as_of", "task", "model_version"]).any()
    counts = table.groupby([table["as_of"].dt.strftime("%Y-%m-%d"), "task"]).size().to_dict()
    assert counts[("2025-11-01", "purchase")] == buyers and counts[("2025-11-01", "churn")] == subscribers
    assert len(counts) == 4  # two dates x two tasks; the re-run replaced its rows
    people = pd.read_parquet(settings.paths.customers)
    seen = set(people.loc[people["first_seen"] < pd.Timestamp("2025-11-01", tz="UTC"), "customer_id"].astype(str))
    first_date = table["as_of"] == pd.Timestamp("2025-11-01", tz="UTC")
    assert set(table.loc[first_date & (table["task"] == "purchase"), "customer_id"]) <= seen
    row = table.iloc[0]
    assert row["model_version"].startswith("bundle-") and row["band"] in ("high", "medium", "low")
    assert (table.groupby(["as_of", "task"])["rank"].max() == table.groupby(["as_of", "task"]).size()).all()
    assert table["reason_1"].notna().mean() > 0.9 and table["temperature_change_30d"].notna().all()
    from signals.views import SEGMENTS, STAGES

    assert set(table["segment"]) <= set(SEGMENTS) and set(table["journey_stage"]) <= set(STAGES)


def test_scoring_refuses_data_that_does_not_fit_the_saved_spec(world):
    settings, _ = world
    events = pd.read_parquet(settings.paths.events)
    customers = pd.read_parquet(settings.paths.customers)
    no_webinar = settings.model_copy(update={"catalog": {k: v for k, v in settings.catalog.items() if k != "webinar"}})
    events = events[events["touchpoint"] != "webinar"].assign(
        touchpoint=lambda e: pd.Categorical(e["touchpoint"].astype(str), categories=list(no_webinar.catalog)))
    with pytest.raises(DataError) as err:
        run_score(no_webinar, as_of="2025-11-01", events=events, customers=customers.drop(columns="segment"),
                  write=False)
    message = str(err.value)
    assert "touchpoint type(s) ['webinar'] of the model's catalog are not in the events' catalog" in message
    assert "static column(s) ['segment'] are absent from the customers table" in message
    assert "retrain" in message


def test_a_missing_alias_is_a_clear_error(world):
    settings, _ = world
    with pytest.raises(TrackingError, match=r"registered model 'signals-purchase' has no alias 'champion'.*"
                                            r"signals retrain"):
        load_models(settings, "champion", tasks=["purchase"])
    with pytest.raises(DataError, match="no model bundle at"):
        load_models(settings, "no/such/folder", tasks=["purchase"])
    base = ["--set", f"mlflow.tracking_uri={settings.mlflow.tracking_uri}", "--set",
            f"paths.events={settings.paths.events}", "--set", f"paths.customers={settings.paths.customers}",
            "--no-track", "--no-write"]
    result = CliRunner().invoke(app, ["score", "--as-of", "2025-11-01", "--model", "champion", *base])
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 1 and "has no alias 'champion'" in said and "Traceback" not in said
    result = CliRunner().invoke(app, ["score", "--as-of", "the first of May", *base])
    assert result.exit_code == 2 and "is not a date" in " ".join(result.output.split())  # a usage mistake


def test_kizashi_catches_interest_episodes_and_beats_the_base_rate(world):
    """Scored weekly through the test period: a customer whose simulated interest episode starts
    gets kizashi within the episode far more often than a customer without one, and the alarm's
    precision against the simulator's purchases in the next 60 days is well above the base rate."""
    settings, _ = world
    sim = simulate_crm(settings)  # the same seed: the same world, with its episodes
    dates = pd.date_range("2025-09-01", "2025-11-01", freq="7D", tz="UTC")
    alarmed: dict[pd.Timestamp, set[str]] = {}
    hits = alarms = positives = eligible = 0
    for instant in dates:
        run = run_score(settings, as_of=instant, tasks=["purchase"], events=sim.events, customers=sim.customers,
                        write=False)
        scored = run.signals
        alarm = scored["alarm"].eq("kizashi").to_numpy()
        alarmed[instant] = set(scored.loc[alarm, "customer_id"])
        labels = purchase_within(sim.events, pd.DataFrame({"customer_id": scored["customer_id"], "cutoff": instant}),
                                 horizon_days=settings.labels.purchase.horizon_days, catalog=settings.catalog,
                                 quiet_days=settings.labels.purchase.quiet_days)
        ok = labels["label"].notna().to_numpy()
        bought = labels["label"].fillna(0).to_numpy().astype(bool)
        hits += int((alarm & ok & bought).sum())
        alarms += int((alarm & ok).sum())
        positives += int((ok & bought).sum())
        eligible += int(ok.sum())
    episodes = sim.episodes.assign(customer_id=lambda e: e["customer_id"].astype(str))
    starting = episodes[(episodes["start"] >= dates[0]) & (episodes["start"] < dates[-1] - pd.Timedelta(days=14))
                        & (episodes["end"] - episodes["start"] >= pd.Timedelta(days=14))]
    caught = sum(any(c in alarmed[d] for d in dates if s < d <= e)
                 for c, s, e in zip(starting["customer_id"], starting["start"], starting["end"], strict=True))
    touched = set(episodes.loc[(episodes["end"] > dates[0] - pd.Timedelta(days=60)) & (episodes["start"] <= dates[-1]),
                               "customer_id"])
    quiet = set(sim.customers["customer_id"].astype(str)) - touched
    quiet_alarmed = len(quiet & set().union(*alarmed.values()))
    precision, recall, base = hits / alarms, hits / positives, positives / eligible
    print(f"kizashi weekly {dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}: precision {precision:.3f} recall {recall:.3f} "
          f"base rate {base:.3f} ({alarms} alarms); episodes caught {caught}/{len(starting)}; customers without "
          f"an episode alarmed {quiet_alarmed}/{len(quiet)}")
    assert caught >= 1
    assert caught / len(starting) > 3 * quiet_alarmed / len(quiet)
    assert precision > 2 * base


def test_the_scoring_run_is_logged_to_mlflow(world):
    from mlflow.tracking import MlflowClient

    settings, _ = world
    run = run_score(settings, as_of="2025-10-01", write=False, track=True)
    client = MlflowClient(tracking_uri=settings.mlflow.tracking_uri)
    logged = client.get_run(run.mlflow_run_id)
    assert logged.info.run_name == "score 2025-10-01" and logged.data.tags["role"] == "scoring"
    metrics = logged.data.metrics
    for task in ("purchase", "churn"):
        assert metrics[f"{task}.rows"] == run.summary[task]["rows"]
        assert metrics[f"{task}.alarms"] == run.summary[task]["alarms"]
        assert 0 < metrics[f"{task}.score_p50"] <= metrics[f"{task}.score_p99"] <= metrics[f"{task}.score_max"]
        assert logged.data.params[f"{task}.model_version"].startswith("bundle-")
    artifacts = {a.path for a in client.list_artifacts(run.mlflow_run_id)}
    assert {"scoring_summary.json", "score_distribution.png", "top_customers.csv"} <= artifacts


def test_scores_equal_the_model_on_its_own_features(world):
    """The shared float matrix gives exactly the model's calibrated probabilities and temperatures."""
    from signals.features.matrix import build_features
    from signals.modeling.scoring import base_spec

    settings, _ = world
    run = run_score(settings, as_of="2025-10-01", write=False)
    events = pd.read_parquet(settings.paths.events)
    customers = pd.read_parquet(settings.paths.customers)
    for loaded in run.models:
        part = run.signals[run.signals["task"] == loaded.task].head(300)
        rows = pd.DataFrame({"customer_id": part["customer_id"].to_numpy(), "cutoff": part["as_of"].to_numpy()})
        X = build_features(events, rows, base_spec(loaded.spec), customers=customers)
        assert (loaded.model.probability(X) == part["score"].to_numpy()).all()
        learned = build_features(events, rows, loaded.spec.temperature_only((loaded.spec.learned_half_life_days,)))
        label = [c for c in learned.columns if c.startswith("temp__") and "__all__" not in c]
        points = [loaded.spec.learned_points[c.split("__")[1]] for c in label]
        expected = learned[label].to_numpy() @ points
        assert abs(expected - part["temperature"].to_numpy()).max() < 1e-9
