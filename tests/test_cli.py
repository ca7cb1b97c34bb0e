"""The command line: help that explains, clean errors, and the features/train commands end to end."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from signals.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["simulate", "ingest", "features", "train", "score", "demo"])
def test_every_command_explains_itself(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--config" in result.output and "--set" in result.output


def test_configuration_errors_are_messages_with_exit_code_2(tmp_path):
    result = runner.invoke(app, ["features", "--set", "features.windowz=[7]"])
    assert result.exit_code == 2
    assert "features.windowz" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["features", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "config file not found" in result.output


def test_unknown_task_and_missing_events_are_clear(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--task", "upsell"])
    assert result.exit_code == 2 and "churn, purchase" in result.output
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 1 and "signals simulate" in result.output


def test_simulate_then_features_for_a_grid_and_an_as_of_date(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = ["--set", "simulate.n_customers=300", "--set", "cutoffs.n_training=4"]
    assert runner.invoke(app, ["simulate", *small, "--no-progress"]).exit_code == 0
    result = runner.invoke(app, ["features", *small])
    assert result.exit_code == 0, result.output
    grid = pd.read_parquet(tmp_path / "data" / "features.parquet")
    assert grid["cutoff"].nunique() == 4
    result = runner.invoke(app, ["features", *small, "--as-of", "2025-12-01", "--out", "data/today.parquet"])
    assert result.exit_code == 0, result.output
    today = pd.read_parquet(tmp_path / "data" / "today.parquet")
    assert (today["cutoff"] == pd.Timestamp("2025-12-01", tz="UTC")).all()
    assert today["customer_id"].is_unique and len(today) <= 300
