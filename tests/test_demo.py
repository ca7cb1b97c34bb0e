"""`signals demo` end to end on a small world: simulate, ingest the messy exports, three monthly
retrains (champions registered), score with the champions into the SQLite CRM file, summary; a
second run on the same registry retrains nothing and scores again."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from signals.cli import app
from tests.small_trained_world import SMALL_TRAINING

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_main_job_end_to_end_and_a_second_run_only_scores(tmp_path, monkeypatch, mlflow_store):
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "demo.yaml", tmp_path / "configs" / "demo.yaml")
    monkeypatch.chdir(tmp_path)  # data/, crm.db and reports/ land here; the sources are ../data/raw of configs/
    args = ["demo", "-c", "configs/demo.yaml"]
    for override in [*SMALL_TRAINING, "simulate.n_customers=2500", "model.points_refits=2", *mlflow_store]:
        args += ["--set", override]
    runner = CliRunner()

    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    out = " ".join(first.output.split())
    assert "2025-10-01 .. 2025-12-01" in out  # three monthly retrains before the as-of date
    for task, alarm in (("churn", "cooling"), ("purchase", "kizashi")):
        assert f"{alarm} alarms among" in out and f"learned points, {task} (prior in brackets)" in out
    assert "CRM table: sqlite:///crm.db table customer_signals" in out and "signals ui -c configs/demo.yaml" in out
    assert (tmp_path / "data" / "raw" / "sfa.csv").is_file() and (tmp_path / "data" / "rejects.csv").is_file()
    with sqlite3.connect(tmp_path / "crm.db") as db:
        rows = db.execute("SELECT task, count(*), count(DISTINCT customer_id), min(model_version) "
                          "FROM customer_signals GROUP BY task ORDER BY task").fetchall()
    assert [r[0] for r in rows] == ["churn", "purchase"]
    assert all(count == distinct > 0 and version is not None for _, count, distinct, version in rows)

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    again = " ".join(second.output.split())
    assert "are as of 2025-12-01 or later (an earlier demo run): scoring with them" in again
    with sqlite3.connect(tmp_path / "crm.db") as db:
        assert db.execute("SELECT task, count(*), count(DISTINCT customer_id), min(model_version) FROM "
                          "customer_signals GROUP BY task ORDER BY task").fetchall() == rows  # replaced, not doubled
