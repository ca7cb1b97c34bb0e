"""The views' settings and the report's optional inputs: clear errors, and what happens when inputs are missing."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy

from signals.errors import ConfigError, DataError
from signals.features.spec import FeatureSpec
from signals.jobs.report import default_as_of, load_learned, load_scores
from signals.settings import load_settings
from signals.views import History, crm_columns, evidence_split
from tests.views.conftest import history_table


@pytest.mark.parametrize(("override", "message"), [
    ("views.segments.nurture_min_contacts=2", "nurture_min_contacts must be larger than stop_max_peak_contacts"),
    ("views.journey.interest=[webinar, doc_request]", "one stage only"),
    ("views.ignore_touchpoints=[newsleter]", "views.ignore_touchpoints: touchpoint(s) ['newsleter']"),
    ("views.contact.dose_bins=[1, 2]", "dose_bins must start at 0"),
    ("views.segmentz.window_days=30", "unknown key"),
])
def test_bad_view_settings_are_explained(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_settings(overrides=[override])


def test_default_lists_skip_types_a_replaced_catalog_lacks(tmp_path):
    path = tmp_path / "retail.yaml"
    path.write_text("catalog:\n  purchase: {channel: shop, initiated_by: customer, prior_points: 20, role: purchase}\n"
                    "labels:\n  churn: {mode: non_contractual}\n", encoding="utf-8")
    settings = load_settings(path)
    events = history_table([("a", "2025-01-05", "purchase"), ("a", "2025-03-01", "purchase"),
                            ("b", "2025-02-01", "purchase")])
    table = crm_columns(events, "2025-04-01", settings)
    assert table["journey_stage"].tolist() == ["purchase", "purchase"]


def test_crm_columns_reuse_a_history(settings):
    events = history_table([("a", "2024-01-10", "purchase"), ("b", "2025-01-20", "doc_request")])
    history = History(events, "2025-03-01", settings)
    assert crm_columns(history).equals(crm_columns(events, "2025-03-01", settings))
    with pytest.raises(TypeError, match="as_of and settings"):
        crm_columns(events)


def test_history_before_any_event_and_too_short_for_a_grid(settings):
    events = history_table([("a", "2025-01-05", "webinar")])
    with pytest.raises(DataError, match="no event happened before"):
        History(events, "2025-01-01", settings)
    with pytest.raises(DataError, match="too short"):
        evidence_split(History(events, "2025-02-01", settings))


def test_default_as_of_is_the_local_midnight_after_the_last_event():
    events = history_table([("a", "2025-03-04T20:00Z", "webinar")])   # 2025-03-05 05:00 in Tokyo
    assert default_as_of(events, "Asia/Tokyo") == pd.Timestamp("2025-03-05T15:00Z")
    assert default_as_of(events, "UTC") == pd.Timestamp("2025-03-05T00:00Z")


def test_learned_points_are_read_from_bundles(tmp_path, settings):
    assert load_learned(tmp_path)[0] == {}
    bundle = tmp_path / "churn"
    bundle.mkdir()
    (bundle / "points.csv").write_text("touchpoint,learned_points\nwebinar,3.5\n", encoding="utf-8")
    learned, missing = load_learned(tmp_path)
    assert "churn" in missing and "spec.json" in missing["churn"] and "purchase" in missing
    spec = FeatureSpec.from_settings(settings).with_learned_points({"webinar": 3.5}, 45)
    (bundle / "spec.json").write_text(spec.to_json(), encoding="utf-8")
    learned, missing = load_learned(tmp_path)
    curve = learned["churn"].curve
    assert (curve.name, curve.points, curve.half_life_days, curve.task) == ("learned (churn)", {"webinar": 3.5}, 45, "churn")


def test_scores_come_from_a_file_or_the_sqlite_sink(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGNALS_CRM_URL", raising=False)
    settings = load_settings(overrides=[f"sink.url=sqlite:///{tmp_path}/crm.db"])
    scores, note = load_scores(settings)
    assert scores is None and "no SQLite CRM database" in note
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/crm.db")
    pd.DataFrame({"x": [1]}).to_sql("other", engine, index=False)
    scores, note = load_scores(settings)
    assert scores is None and "has no table 'customer_signals'" in note
    rows = pd.DataFrame({"customer_id": ["O'Brien; --", "顧客7"], "task": "churn", "alarm": ["cooling", None]})
    rows.to_sql("customer_signals", engine, index=False)
    engine.dispose()
    scores, note = load_scores(settings)
    assert scores["customer_id"].tolist() == ["O'Brien; --", "顧客7"] and "customer_signals" in note
    assert str(tmp_path) in note and "sqlite:///" not in note            # the URL itself is never shown
    rows.to_csv(tmp_path / "s.csv", index=False)
    file_scores, note = load_scores(settings, tmp_path / "s.csv")
    assert len(file_scores) == 2 and note.endswith("s.csv")
    assert load_scores(load_settings(overrides=["sink.kind=files"]))[1].startswith("sink.kind is files")
    with pytest.raises(DataError, match="file not found"):  # a user's missing file: one line in the CLI
        load_scores(settings, tmp_path / "missing.parquet")


def test_outcomes_refuse_windows_that_are_not_closed(settings):
    events = history_table([("a", "2025-01-05", "purchase")])
    history = History(events, "2025-03-01", settings)
    rows = history.rows_at(pd.Timestamp("2025-02-01", tz="UTC").value)
    with pytest.raises(DataError, match="not closed"):
        history.outcomes(rows)


def test_customers_table_adds_customers_known_before_their_first_touch(settings):
    events = history_table([("a", "2025-01-05", "webinar"), ("b", "2025-05-01", "webinar")])
    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "c", "d", "e"],
                              "first_seen": pd.to_datetime(["2024-12-01", "2025-02-01", "2025-03-01", "2025-01-10",
                                                            None, "2025-06-01"], utc=True)})
    history = History(events, "2025-04-01", settings, customers=customers)
    seen = dict(zip(history.customer_ids[history.known], history.first_seen_ns[history.known], strict=True))
    as_ts = {k: pd.Timestamp(v, tz="UTC") for k, v in seen.items()}
    # a: the table's earlier date; b: listed before its first touch; c: its earliest row; d: no date; e: later
    assert as_ts == {"a": pd.Timestamp("2024-12-01", tz="UTC"), "b": pd.Timestamp("2025-02-01", tz="UTC"),
                     "c": pd.Timestamp("2025-01-10", tz="UTC")}
    assert crm_columns(history)["customer_id"].tolist() == ["a", "b", "c"]
