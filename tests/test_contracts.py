"""One set of input contracts (issue 13): instants, ids, errors, seams, and the dead configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import signals
from signals.cli import app
from signals.dataset import build_training_set
from signals.errors import ConfigError, DataError, IngestError
from signals.features.matrix import build_features
from signals.features.spec import FeatureSpec
from signals.labels import churn_within, purchase_within
from signals.schemas import check_cutoffs, check_events, normalize_ids, to_utc
from signals.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Settings()
SPEC = FeatureSpec.from_settings(SETTINGS)
NAIVE = "give cutoffs a time zone, or build them with `cutoff_grid` / `as_of_instant`"


def events_of(ids, when="2025-01-10") -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "ts": pd.Timestamp(when, tz="UTC"), "touchpoint": "purchase",
                         "value": 10.0})


# --------------------------------------------------------------------------------------------
# 1. one rule for instants


def test_naive_cutoffs_are_refused_by_every_entry_point():
    events = events_of(["a", "b"])
    naive = pd.DataFrame({"customer_id": ["a", "b"], "cutoff": pd.Timestamp("2025-02-01")})
    with pytest.raises(DataError, match=NAIVE):
        build_features(events, naive, SPEC)
    with pytest.raises(DataError, match=NAIVE):
        build_training_set(events, naive, SPEC, task="purchase", labels=SETTINGS.labels)
    with pytest.raises(DataError, match=NAIVE):
        purchase_within(events, naive, horizon_days=60, catalog=SETTINGS.catalog)
    with pytest.raises(DataError, match=NAIVE):
        churn_within(events, naive, horizon_days=60, catalog=SETTINGS.catalog)
    text = naive.assign(cutoff="2025-02-01")  # a date as text is naive too
    with pytest.raises(DataError, match=NAIVE):
        check_cutoffs(text)
    # the same instant with a zone passes; a Tokyo date means Tokyo midnight, never 09:00
    tokyo = naive.assign(cutoff=signals.as_of_instant("2025-02-01", "Asia/Tokyo"))
    assert check_cutoffs(tokyo)["cutoff"].iloc[0] == pd.Timestamp("2025-01-31 15:00", tz="UTC")


def test_naive_instants_are_accepted_only_next_to_a_timezone():
    with pytest.raises(DataError, match="has no time zone"):
        to_utc(pd.Series(["2025-01-01 09:00"]), what="events.ts")
    assert to_utc(pd.Series(["2025-01-01 09:00"]), what="x", timezone="Asia/Tokyo").iloc[0] == \
        pd.Timestamp("2025-01-01 00:00", tz="UTC")
    with pytest.raises(DataError, match="events.ts has no time zone"):
        check_events(events_of(["a"]).assign(ts=pd.Timestamp("2025-01-10")))
    demo = load_settings(ROOT / "configs" / "demo.yaml")
    with pytest.raises(IngestError, match="as_of 2026-01-01 has no time zone: pass timezone="):
        signals.ingest(demo.ingest.sources, touchpoints=demo.catalog, as_of="2026-01-01")


def test_python_ingest_and_the_cli_give_the_same_events_to_the_nanosecond(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sfa.csv").write_text(
        "AccountId,ActivityDate,ActivityType,Amount\n"
        "00001,2025/12/31 23:30:00,Order,1200\n"        # 14:30 UTC: before as_of 2026-01-01 00:00 Tokyo
        "00001,2026/01/01 08:59:59,Sales visit,\n"      # before as_of read as UTC, after it in Tokyo
        "00002,2025/05/01 10:00:00.123456789,Sales visit,\n", encoding="utf-8")
    config = {
        "timezone": "Asia/Tokyo",
        "ingest": {"as_of": "2026-01-01T00:00:00", "max_reject_fraction": 1, "sources": [{
            "name": "sfa", "kind": "csv", "path": "sfa.csv", "timezone": "Asia/Tokyo",
            "columns": {"customer_id": "AccountId", "ts": "ActivityDate", "touchpoint": "ActivityType",
                        "value": "Amount"},
            "touchpoints": {"Order": "purchase", "Sales visit": "sales_visit"}}]},
    }
    (tmp_path / "c.yaml").write_text(json.dumps(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", "-c", "c.yaml"])
    assert result.exit_code == 0, result.output
    cli = pd.read_parquet("data/events.parquet")
    settings = load_settings("c.yaml")
    py = signals.ingest(settings.ingest.sources, touchpoints=settings.catalog, as_of=settings.ingest.as_of,
                        timezone=settings.timezone, max_reject_fraction=1).events
    pd.testing.assert_frame_equal(py, cli)
    import importlib

    module = importlib.import_module("signals.ingest")  # importing the module must not hide the function
    assert callable(module) and callable(signals.ingest) and module.REASONS[0] == "missing_customer_id"
    assert cli["ts"].array.asi8.tolist() == py["ts"].array.asi8.tolist()
    assert len(cli) == 2  # the 08:59:59 visit is after as_of in Tokyo: both paths reject it


# --------------------------------------------------------------------------------------------
# 2. one id normaliser; ids that do not match; cutoffs that are not timestamps


def test_ids_are_normalised_the_same_way_everywhere():
    assert normalize_ids(pd.Series([1.0, 2.0, np.nan])).tolist() == ["1", "2", np.nan]
    events = events_of([1, 2])  # integer ids
    cutoffs = pd.DataFrame({"customer_id": [1.0, 2.0],  # a left join made the column float
                            "cutoff": pd.Timestamp("2025-02-01", tz="UTC")})
    X = build_features(events, cutoffs, SPEC)
    assert X["customer_id"].tolist() == ["1", "2"] and (X["freq__purchase__30d"] == 1).all()
    assert check_events(events)["customer_id"].astype(str).tolist() == ["1", "2"]
    raw = pd.DataFrame({"id": [7.0, np.nan, 8.0], "t": ["2025-01-01T00:00:00Z"] * 3, "a": ["call"] * 3})
    source = signals.settings.SourceSettings(name="s", kind="parquet", path=Path("x.parquet"),
                                             columns={"customer_id": "id", "ts": "t", "touchpoint": "a"})
    from signals.ingest import map_source

    accepted, rejects = map_source(raw, source, touchpoints=SETTINGS.catalog, as_of="2026-01-01T00:00:00Z")
    assert accepted["customer_id"].astype(str).tolist() == ["7", "8"]
    assert rejects["reason"].tolist() == ["missing_customer_id"]


def test_cutoff_ids_without_events_are_caught():
    events = events_of([str(i) for i in range(50)])
    ids = [f"{i}.0" for i in range(30)] + [str(i) for i in range(30, 50)]  # 60% written differently
    cutoffs = pd.DataFrame({"customer_id": ids, "cutoff": pd.Timestamp("2025-02-01", tz="UTC")})
    with pytest.raises(DataError, match=r"60% of cutoff customer ids \(30 of 50\) have no events: check that the "
                                        r"ids match \(e\.g\. '1\.0' vs '1'"):
        build_features(events, cutoffs, SPEC)
    lenient = FeatureSpec.from_settings(load_settings(overrides=["features.unmatched_ids=warn"]))
    with pytest.warns(signals.schemas.DataWarning, match="60% of cutoff customer ids"):
        build_features(events, cutoffs, lenient)
    few = cutoffs.iloc[28:33]  # a few never-touched customers are normal
    assert len(build_features(events, few, SPEC)) == 5
    tiny = pd.DataFrame({"customer_id": ["1.0"], "cutoff": pd.Timestamp("2025-02-01", tz="UTC")})
    with pytest.raises(DataError, match="100% of cutoff customer ids"):
        build_features(events_of(["1"]), tiny, SPEC)


@pytest.mark.parametrize("values", [np.array([1_738_368_000, 1_738_368_000]), np.array([1.7e18, 1.7e18])])
def test_non_datetime_cutoffs_are_refused(values):
    cutoffs = pd.DataFrame({"customer_id": ["a", "b"], "cutoff": values})
    with pytest.raises(DataError, match=f"cutoff must be a timestamp, got {values.dtype}"):
        build_features(events_of(["a", "b"]), cutoffs, SPEC)


# --------------------------------------------------------------------------------------------
# 4. errors: one line for the user's mistakes, a traceback for bugs


def test_only_package_errors_become_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(app, ["features"])
    assert missing.exit_code == 1 and missing.exception is None or isinstance(missing.exception, SystemExit)
    assert "no events at data/events.parquet" in missing.output and "Traceback" not in missing.output

    import signals.jobs.features as job

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(job, "run_features", bug)
    crashed = runner.invoke(app, ["features"])
    assert isinstance(crashed.exception, ValueError)  # not turned into a friendly line: it is a bug
    assert "broadcast" in str(crashed.exception) and "error: operands" not in crashed.output


def test_config_errors_exit_2_and_data_errors_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["features", "--set", "cutoffs.frequency=daily"]).exit_code == 2
    import signals.jobs.features as job

    def data_problem(*args, **kwargs):
        raise DataError("events: 3 row(s) have no customer_id")

    monkeypatch.setattr(job, "run_features", data_problem)
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 1 and result.output.strip() == "error: events: 3 row(s) have no customer_id"


# --------------------------------------------------------------------------------------------
# 6. configuration that does nothing is not documented as working; 7. seams


def test_no_section_is_marked_reserved_now_that_every_one_is_used():
    # the sink: signals score writes customer_signals there; mlflow: train, retrain, score and ui use it
    text = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
    assert "reserved" not in text.lower()
    assert "reserved" not in signals.settings.MlflowSettings.__doc__.lower()
    assert "reserved" not in signals.settings.SinkSettings.__doc__.lower()
    assert "data_dir" not in signals.settings.PathSettings.model_fields  # nothing read it: removed
    with pytest.raises(ConfigError, match="paths.data_dir: unknown key"):
        load_settings(overrides=["paths.data_dir=data"])
    import signals.jobs.report as report  # reports_dir is where `signals report` / `timeline` write

    assert "settings.paths.reports_dir" in Path(report.__file__).read_text(encoding="utf-8")


def test_one_source_url_helper_and_no_import_cycle():
    import subprocess
    import sys

    import signals.io.sources as sources
    import signals.io.world as world

    assert world.source_url is sources.source_url
    code = "import signals.io.sources, sys; print('signals.ingest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # reading sources does not need ingestion
