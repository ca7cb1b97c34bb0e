"""Your own CRM from config alone: a foreign SaaS export (tests/foreign_crm.py) with nine months of
history, day-resolution dates, zero-padded ids, Japanese activity names and a subscriptions table is
ingested, trained for both tasks and scored by the CLI with configs/saas_example.yaml, unchanged but
for two speed settings (fewer refits and bootstrap rounds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from signals.cli import app
from signals.cutoffs import custom_cutoffs
from signals.io.tables import read_table
from signals.jobs.score import run_score
from signals.settings import load_settings
from tests.foreign_crm import generate

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "saas_example.yaml"
FAST = ["--set", "model.points_refits=2", "--set", "model.bootstrap_rounds=50"]


@pytest.mark.slow
def test_a_foreign_saas_crm_trains_both_tasks_from_config_alone(tmp_path, monkeypatch):
    crm = generate(tmp_path / "data" / "saas", n_accounts=1000, seed=11)
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "saas_example.yaml"
    shutil.copy(CONFIG, config)  # its sources read ../data/saas/*.csv, relative to the config file
    monkeypatch.chdir(tmp_path)   # its outputs go to data/saas and models/saas under the working directory
    runner = CliRunner()

    ingested = runner.invoke(app, ["ingest", "-c", str(config)])
    assert ingested.exit_code == 0, ingested.output
    events = read_table(tmp_path / "data" / "saas" / "events.parquet")
    rejects = read_table(tmp_path / "data" / "saas" / "rejects.csv")
    raw = pd.read_csv(crm.activities, dtype=str, keep_default_na=False)
    subscriptions = pd.read_csv(crm.subscriptions, dtype=str, keep_default_na=False)
    duplicates = len(read_table(tmp_path / "data" / "saas" / "duplicates.csv"))
    by_source = events["source"].astype(str).value_counts()
    assert by_source["activities"] + (rejects["source"] == "activities").sum() + duplicates == len(raw)
    assert (rejects["source"] == "billing").sum() == 3 and by_source["billing"] > len(subscriptions)
    assert set(events["touchpoint"].astype(str)) >= {"login", "quote", "deal_won", "purchase", "renewal",
                                                     "cancellation"}
    assert events["customer_id"].astype(str).str.fullmatch(r"\d{7}").all()  # zero-padded ids kept
    # the churn dates are the generator's own (subscriptions: spells, lapses, mid-term cancellations)
    cancelled = events[(events["touchpoint"] == "cancellation") & (events["ts"] >= pd.Timestamp(crm.start, tz="Asia/Tokyo"))]
    assert len(cancelled) == crm.truth["churn"].notna().sum()

    for task in ("churn", "purchase"):
        trained = runner.invoke(app, ["train", "-c", str(config), "--task", task, "--auto-split", *FAST])
        assert trained.exit_code == 0, trained.output
        bundle = tmp_path / "models" / "saas" / task
        assert (bundle / "model").is_dir() and (bundle / "spec.json").is_file()
        points = read_table(bundle / "points.csv")
        assert len(points) == 30 and points["own_points"].notna().sum() >= 10
        summary = json.loads((bundle / "summary.json").read_text(encoding="utf-8"))
        metrics = summary["metrics"]
        assert metrics["lightgbm.roc_auc"] > 0.75, (task, metrics)
        assert metrics["lightgbm.roc_auc"] > metrics["rfm.roc_auc"], (task, metrics)
        spec = json.loads((bundle / "spec.json").read_text(encoding="utf-8"))
        assert spec["catalog"]["quote"]["valued"] is True
    # churn trained on renewal-anchored cutoffs grouped in monthly periods (one more period of embargo),
    # purchase on the calendar grid; both splits chosen by --auto-split for nine months of history
    plans = {task: json.loads((tmp_path / "models" / "saas" / task / "summary.json").read_text(encoding="utf-8"))["plan"]
             for task in ("churn", "purchase")}
    assert plans["churn"]["margin_days"] == 32.0 and plans["purchase"]["margin_days"] == 0.0
    assert plans["churn"]["embargo"] in ("full", "test") and plans["purchase"]["embargo"] in ("full", "test")

    # scoring: churn (trained 5 days before each monthly anniversary) scores the accounts due that
    # day, purchase (the calendar grid) its whole population
    day = "2025-11-20"
    scored = runner.invoke(app, ["score", "-c", str(config), "--as-of", day, "--no-write", "--no-track"])
    assert scored.exit_code == 0, scored.output
    settings = load_settings(config)
    run = run_score(settings, as_of=day, write=False)
    due = custom_cutoffs(events, settings.cutoffs, catalog=settings.catalog, timezone=settings.timezone,
                         start=day, end=day)
    assert (due["cutoff"] == pd.Timestamp(day, tz="Asia/Tokyo")).all()
    churn = run.signals[run.signals["task"] == "churn"]
    purchase = run.signals[run.signals["task"] == "purchase"]
    assert 0 < len(churn) <= len(due) and set(churn["customer_id"]) <= set(due["customer_id"])
    assert len(purchase) > 3 * len(churn)
