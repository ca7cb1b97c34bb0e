"""signals retrain: the promotion rule, drift and points diff, and retrains on a temporary SQLite store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.errors import DataError
from signals.io.tracking import CHALLENGER, CHAMPION, tracking_uri
from signals.jobs.retrain import as_of_dates, decide_promotion, run_backfill, run_retrain
from signals.modeling.drift import base_rate_change, drift_report, points_diff, psi
from signals.settings import PromotionSettings, load_settings
from signals.simulate import simulate_crm
from tests.small_trained_world import SMALL_NO_REFITS

ROOT = Path(__file__).resolve().parents[1]
SMALL = SMALL_NO_REFITS
RULE = PromotionSettings(auc_margin=0.01, max_ece=0.02)


# ---- the rule and the reports (pure) --------------------------------------------------------

def test_a_worse_challenger_is_not_promoted_and_a_close_one_is():
    champion = {"roc_auc": 0.72, "ece": 0.010}
    worse = decide_promotion({"roc_auc": 0.70, "ece": 0.010}, champion, RULE)
    assert not worse.promote and "worse by more than the margin 0.01" in worse.reason
    close = decide_promotion({"roc_auc": 0.711, "ece": 0.010}, champion, RULE)
    assert close.promote and "-0.0090" in close.reason
    better_but_miscalibrated = decide_promotion({"roc_auc": 0.80, "ece": 0.021}, champion, RULE)
    assert not better_but_miscalibrated.promote and "ECE 0.0210 above the bound 0.02" in better_but_miscalibrated.reason
    undefined = decide_promotion({"roc_auc": float("nan"), "ece": 0.01}, champion, RULE)
    assert not undefined.promote


def test_with_no_champion_the_first_challenger_becomes_champion():
    decision = decide_promotion({"roc_auc": 0.55, "ece": 0.01}, None, RULE)
    assert decision.promote and decision.reason.startswith("no champion yet")


def test_backfill_dates():
    dates = as_of_dates("2024-07-01", "2025-01-15", "1M")
    assert [f"{d:%Y-%m-%d}" for d in dates][::3] == ["2024-07-01", "2024-10-01", "2025-01-01"] and len(dates) == 7
    assert [f"{d:%m-%d}" for d in as_of_dates("2025-01-31", "2025-04-30", "1M")] == ["01-31", "02-28", "03-31", "04-30"]
    with pytest.raises(ValueError, match="1M, 2W or 14D"):
        as_of_dates("2025-01-01", "2025-02-01", "monthly")
    with pytest.raises(ValueError, match="before --from"):
        as_of_dates("2025-02-01", "2025-01-01")


def test_psi_is_zero_for_the_same_population_and_grows_with_the_shift():
    rng = np.random.default_rng(1)
    ref = rng.poisson(2.0, 20_000).astype(float)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    small, large = psi(ref, rng.poisson(2.2, 20_000)), psi(ref, rng.poisson(4.0, 20_000))
    assert 0 < small < 0.1 < 0.25 < large
    # missing values are a bin of their own: more of them is drift
    with_nan = np.where(rng.random(20_000) < 0.3, np.nan, ref)
    assert psi(ref, with_nan) > 0.25
    # categories, including one never seen in the reference
    cats = pd.Series(["smb", "mid", "ent"] * 1000)
    assert psi(cats, cats) == pytest.approx(0.0, abs=1e-12)
    assert psi(cats, pd.Series(["smb", "mid", "ent", "gov"] * 750)) > 0.1


def test_drift_report_and_base_rate():
    ref = pd.DataFrame({"freq__webinar__30d": np.r_[np.zeros(900), np.ones(100)],
                        "recency__all__days": np.linspace(0, 100, 1000)})
    cur = pd.DataFrame({"freq__webinar__30d": np.r_[np.zeros(600), np.ones(400)],
                        "recency__all__days": np.linspace(0, 100, 1000)})
    report = drift_report(ref, cur, list(ref.columns))
    assert list(report["feature"]) == ["freq__webinar__30d", "recency__all__days"]
    assert list(report["touchpoint"]) == ["webinar", "all"] and report.loc[0, "level"] == "major"
    assert report.loc[1, "psi"] == pytest.approx(0.0, abs=1e-12)
    rates = base_rate_change(np.r_[np.zeros(95), np.ones(5)], np.r_[np.zeros(90), np.ones(10)])
    assert rates["reference_rate"] == 0.05 and rates["current_rate"] == 0.10 and rates["ratio"] == pytest.approx(2.0)


def test_points_diff_shows_points_and_log_odds_and_new_types():
    now = pd.DataFrame({"touchpoint": ["webinar", "seminar", "chat"], "learned_points": [9.0, 4.0, 1.0],
                        "effect_logodds": [0.30, 0.12, 0.03]})
    before = pd.DataFrame({"touchpoint": ["webinar", "seminar"], "learned_points": [6.0, 10.0],
                           "effect_logodds": [0.20, 0.33]})
    diff = points_diff(now, before).set_index("touchpoint")
    assert diff.loc["seminar", "direction"] == "down" and diff.loc["webinar", "direction"] == "up"
    assert diff.loc["seminar", "effect_change"] == pytest.approx(-0.21)
    assert diff.loc["chat", "direction"] == "n/a" and np.isnan(diff.loc["chat", "previous_points"])
    assert list(points_diff(now, None)["direction"]) == ["n/a"] * 3


# ---- retrains on a SQLite store -----------------------------------------------------------------

@pytest.fixture(scope="module")
def world():
    settings = load_settings(ROOT / "configs" / "demo.yaml", overrides=SMALL)
    sim = simulate_crm(settings)
    return sim.events, sim.customers, sim.truth


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:An input array is constant")  # the crippled model's points are all 0
def test_backfill_then_a_worse_challenger_keeps_the_champion(world, mlflow_store, tmp_path):
    from mlflow import MlflowClient

    settings = load_settings(ROOT / "configs" / "demo.yaml", overrides=[*SMALL, *mlflow_store])
    client = MlflowClient(tracking_uri(settings))
    seen: list[str] = []
    backfill = run_backfill(settings, start="2025-09-01", end="2025-10-01", every="1M", tasks=["purchase"],
                            inputs=world, out_dir=tmp_path / "reports", progress=seen.append, show_progress=False)
    first, second = (r.tasks["purchase"] for r in backfill.retrains)
    assert first.decision.promote and first.decision.reason.startswith("no champion yet")
    assert first.champion_before is None and first.version == "1" and first.champion_after == "1"
    # the second is compared with the first on its own (later) test cutoffs
    assert second.champion_before == "1" and second.champion_metrics is not None
    assert set(second.comparison["model"]) == {"challenger", "champion"}
    assert max(second.trained.split.test) > max(first.trained.split.test)
    assert second.champion_after == ("2" if second.decision.promote else "1")
    assert any("scoring the champion (version 1)" in m for m in seen)
    # the points over time: figure and table, written locally and logged to the parent run
    assert (tmp_path / "reports" / "points_over_time.png").stat().st_size > 10_000
    history = pd.read_csv(tmp_path / "reports" / "points_over_time.csv")
    assert history["as_of"].nunique() == 2 and {"touchpoint", "task"} <= set(history.columns)
    parent = client.get_run(backfill.parent_run_id)
    assert parent.data.tags["role"] == "backfill" and parent.info.run_name == "backfill 2025-09-01..2025-10-01 every 1M"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"points_over_time.png", "points_over_time.csv"}
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["attributes.start_time"])
    assert [r.info.run_name for r in children] == ["purchase 2025-09-01", "purchase 2025-10-01"]
    run = client.get_run(second.run_id)
    assert run.data.tags["decision"] == second.decision.label and run.data.tags["reason"] == second.decision.reason
    for key in ("champion.roc_auc", "champion.ece", "challenger.roc_auc_low", "challenger_minus_champion.roc_auc",
                "drift.max_psi", "base_rate.reference_rate", "base_rate.current_rate", "points_change.webinar"):
        assert key in run.data.metrics, key
    assert {a.path for a in client.list_artifacts(second.run_id, "retrain")} == {
        "retrain/comparison.csv", "retrain/decision.json", "retrain/drift.csv", "retrain/points_diff.csv"}
    champion_version = str(client.get_model_version_by_alias("signals-purchase", CHAMPION).version)

    # a crippled challenger (no split can hold 10^6 rows per leaf: a constant score) is worse
    crippled = load_settings(ROOT / "configs" / "demo.yaml",
                             overrides=[*SMALL, *mlflow_store, "model.lightgbm.min_child_samples=1000000"])
    third = run_retrain(crippled, as_of="2025-11-01", tasks=["purchase"], inputs=world).tasks["purchase"]
    assert third.challenger_metrics["roc_auc"] == pytest.approx(0.5)
    assert not third.decision.promote and "worse by more than the margin" in third.decision.reason
    assert third.version == "3" and third.champion_after == champion_version
    assert str(client.get_model_version_by_alias("signals-purchase", CHAMPION).version) == champion_version
    assert str(client.get_model_version_by_alias("signals-purchase", CHALLENGER).version) == "3"
    tags = client.get_run(third.run_id).data.tags
    assert (tags["role"], tags["decision"]) == ("challenger", "keep champion")

    # scoring by alias (`signals score --model champion`): the registry's champion, not the latest version
    from signals.io.tracking import load_champion
    from signals.jobs.score import run_score

    events, customers, _ = world
    scored = run_score(settings, as_of="2025-12-01", model="champion", tasks=["purchase"], events=events,
                       customers=customers, write=False)
    (loaded,) = scored.models
    assert loaded.version == champion_version and loaded.source.startswith("models:/signals-purchase@champion")
    assert loaded.run_id == client.get_model_version("signals-purchase", champion_version).run_id
    rows = scored.signals
    assert len(rows) > 500 and set(rows["model_version"].astype(str)) == {champion_version}
    pyfunc = load_champion("purchase", settings).predict_events(events, "2025-12-01", customers=customers)
    same = rows.merge(pyfunc, on="customer_id")
    assert len(same) == len(rows)
    np.testing.assert_allclose(same["score"], same["probability"], rtol=0, atol=1e-9)

    # replaying an earlier date against a later champion is refused before any training
    with pytest.raises(DataError, match="later than this retrain's as-of 2025-08-01"):
        run_retrain(settings, as_of="2025-08-01", tasks=["purchase"], inputs=world)


@pytest.mark.slow
def test_retrain_without_tracking_reports_drift_and_points(world):
    settings = load_settings(ROOT / "configs" / "demo.yaml", overrides=SMALL)
    result = run_retrain(settings, as_of="2025-10-01", tasks=["purchase"], track=False, inputs=world)
    r = result.tasks["purchase"]
    assert r.run_id is None and r.version is None and r.champion_metrics is None
    assert r.decision.promote  # no champion: it would become champion
    # only what was known on 2025-10-01 (Tokyo) was used, and the test labels closed before it
    as_of = pd.Timestamp("2025-09-30 15:00", tz="UTC")
    assert result.as_of == as_of
    assert max(r.trained.split.test) + pd.Timedelta(days=60) <= as_of
    assert len(r.drift) == len(r.trained.model.feature_names_) and r.drift["psi"].is_monotonic_decreasing
    assert 0 < r.base_rate["reference_rate"] < 0.2 and r.base_rate["current_population_rows"] > 500
    assert r.points_diff["direction"].eq("n/a").all()


# ---- the commands ---------------------------------------------------------------------------

def test_the_commands_explain_themselves_and_reject_bad_arguments(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from signals.cli import app

    runner = CliRunner()
    for command, words in (("retrain", ["--as-of", "--from", "--every", "champion", "auc_margin"]),
                           ("ui", ["127.0.0.1", "Compare"]), ("train", ["--no-track", "MLflow"])):
        result = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert result.exit_code == 0 and all(w in result.output for w in words), (command, result.output)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["retrain", "--as-of", "2025-10-01", "--from", "2025-01-01", "--to", "2025-03-01"])
    assert result.exit_code == 2 and "either --as-of or --from/--to" in result.output
    result = runner.invoke(app, ["retrain", "--from", "2025-01-01"])
    assert result.exit_code == 2 and "both --from and --to" in result.output
    result = runner.invoke(app, ["retrain", "--task", "upsell", "--as-of", "2025-10-01"])
    assert result.exit_code == 2 and "churn, purchase" in result.output
    result = runner.invoke(app, ["retrain", "--no-track", "--as-of", "2025-10-01"])
    assert result.exit_code == 1 and "signals simulate" in result.output  # no events yet: a message, no traceback
    result = runner.invoke(app, ["ui", "--set", "mlflow.tracking_uri=http://mlflow.example:5000",
                                 "--set", "mlflow.tracking_uri_env=null"])
    assert result.exit_code == 1 and "open it in a browser" in " ".join(result.output.split())


def test_ui_runs_mlflow_ui_on_localhost_for_the_configured_store(tmp_path):
    from signals.io.tracking import ui_command

    settings = load_settings(overrides=[f"mlflow.tracking_uri=sqlite:///{tmp_path}/m.db", "mlflow.tracking_uri_env=null",
                                        f"mlflow.artifact_location={tmp_path}/art"])
    command = ui_command(settings, port=5055)
    assert command[1:4] == ["-m", "mlflow", "ui"]
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path}/m.db"
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--port") + 1] == "5055"
    assert command[command.index("--default-artifact-root") + 1] == (tmp_path / "art").as_uri()
