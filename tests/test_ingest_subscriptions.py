"""The ``subscriptions`` source kind: a subscriptions table ingested next to activity sources."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from signals.errors import ConfigError, IngestError
from signals.ingest import ingest
from signals.settings import Settings, SourceSettings, load_settings

AS_OF = "2026-01-01T00:00:00+09:00"
SUB_COLUMNS = {"customer_id": "顧客", "start": "開始", "end": "終了", "value": "月額", "status": "状態"}


def subscription_source(path: Path | str = "subs.csv", **kw) -> SourceSettings:
    fields = {"kind": "subscriptions", "path": None if path is None else Path(path), "timezone": "Asia/Tokyo", "columns": SUB_COLUMNS,
              "subscriptions": {"gap_days": 14, "end_inclusive": True, "statuses": {"解約済": "ended"}}}
    fields.update(kw)
    return SourceSettings(name="billing", **fields)


def activity_source() -> SourceSettings:
    return SourceSettings(name="sfa", kind="csv", path=Path("sfa.csv"), timezone="Asia/Tokyo",
                          columns={"customer_id": "id", "ts": "date", "touchpoint": "type", "value": "amount"},
                          touchpoints={"受注": "purchase", "訪問": "sales_visit"})


SUBS = pd.DataFrame({
    "顧客": ["00042", "00042", "00043", "", "00044"],
    "開始": ["2025-01-01", "2025-04-01", "2025-02-01", "2025-02-01", "2025-03-01"],
    "終了": ["2025-03-31", "2025-06-30", "", "2025-05-01", "2025-02-01"],
    "月額": ["100", "120", "50", "10", "10"],
    "状態": ["active", "解約済", "active", "active", "active"],
})
ACTIVITIES = pd.DataFrame({"id": ["00042", "00043", "00042"], "date": ["2025-01-01", "2025-02-01", "2025-03-10"],
                           "type": ["受注", "受注", "訪問"], "amount": ["100", "999", ""]})


def frames(**by_name: pd.DataFrame):
    return lambda src: by_name[src.name].copy()


def test_a_subscriptions_source_becomes_contract_events_with_its_own_accounting():
    result = ingest([activity_source(), subscription_source()], touchpoints=Settings().catalog, as_of=AS_OF,
                    reader=frames(sfa=ACTIVITIES, billing=SUBS))
    ev = result.events[result.events["source"] == "billing"]
    local = ev.assign(ts=ev["ts"].dt.tz_convert("Asia/Tokyo").dt.strftime("%Y-%m-%d"))
    assert list(local[["customer_id", "ts", "touchpoint", "value"]].itertuples(index=False, name=None)) == [
        ("00042", "2025-01-01", "purchase", 100.0), ("00042", "2025-04-01", "renewal", 120.0),
        ("00042", "2025-07-01", "cancellation", 120.0), ("00043", "2025-02-01", "purchase", 50.0)]
    report = result.report
    assert report.loc["billing", ["read", "accepted", "rejected", "duplicates", "events"]].tolist() == [5, 3, 2, 0, 4]
    assert (report["read"] == report["accepted"] + report["rejected"] + report["duplicates"]).all()
    assert report.loc["total", "events"] == len(result.events)
    assert result.rejected_by_reason("billing") == {"missing_customer_id": 1, "end_not_after_start": 1}
    rejects = result.rejects[result.rejects["source"] == "billing"]
    assert rejects["row"].tolist() == [3, 4] and rejects["line"].tolist() == [5, 6]
    assert rejects["ts"].tolist() == ["2025-02-01", "2025-03-01"] and rejects["value"].tolist() == ["10", "10"]
    # the SFA's order of 00042 on Jan 1 has the same instant and amount as the subscription's start:
    # contract events are derived, never duplicates, so both stay (map contract activities in one place)
    purchases = result.events[(result.events["touchpoint"] == "purchase") & (result.events["customer_id"] == "00042")]
    assert sorted(purchases["source"].astype(str)) == ["billing", "sfa"]
    assert report.loc["sfa", "duplicates"] == 0


def test_the_event_types_must_exist_with_the_roles_labels_read():
    settings = Settings()
    with pytest.raises(IngestError, match=r"subscriptions\.renewal is 'sales_visit', whose role is 'engagement'"):
        ingest([subscription_source(subscriptions={"renewal": "sales_visit"})], touchpoints=settings.catalog,
               as_of=AS_OF, reader=frames(billing=SUBS))
    with pytest.raises(IngestError, match=r"subscriptions\.purchase is 'order', not a catalog type"):
        ingest([subscription_source(subscriptions={"purchase": "order"})], touchpoints=settings.catalog,
               as_of=AS_OF, reader=frames(billing=SUBS))
    with pytest.raises(IngestError, match=r"mapped column\(s\) \['終了'\] not found"):
        ingest([subscription_source()], touchpoints=settings.catalog, as_of=AS_OF,
               reader=frames(billing=SUBS.drop(columns="終了")))


def test_settings_of_a_subscriptions_source():
    assert subscription_source().reader == "csv"
    assert subscription_source("subs.parquet").reader == "parquet"
    assert subscription_source(subscriptions={"format": "parquet"}).reader == "parquet"
    sql = subscription_source(path=None, url="sqlite:///crm.db", query="SELECT * FROM subs")
    assert sql.reader == "sql"
    with pytest.raises(ValueError, match=r"missing mapping for canonical column\(s\) \['start'\]"):
        subscription_source(columns={"customer_id": "a", "end": "b"})
    with pytest.raises(ValueError, match=r"unknown canonical column\(s\) \['ts'\]"):
        subscription_source(columns={"customer_id": "a", "start": "b", "ts": "c"})
    with pytest.raises(ValueError, match="no activity names"):
        subscription_source(touchpoints={"x": "purchase"})
    with pytest.raises(ValueError, match="for kind subscriptions only"):
        SourceSettings(name="x", kind="csv", path="x.csv", columns={"customer_id": "a", "ts": "b", "touchpoint": "c"},
                       subscriptions={"gap_days": 3})


def test_from_a_config_file_with_a_relative_path(tmp_path):
    (tmp_path / "exports").mkdir()
    SUBS.to_csv(tmp_path / "exports" / "subs.csv", index=False)
    config = tmp_path / "conf" / "crm.yaml"
    config.parent.mkdir()
    config.write_text(
        "timezone: Asia/Tokyo\n"
        "ingest:\n"
        f"  as_of: '{AS_OF}'\n"
        "  sources:\n"
        "    - {name: billing, kind: subscriptions, path: ../exports/subs.csv, timezone: Asia/Tokyo,\n"
        "       columns: {customer_id: 顧客, start: 開始, end: 終了, value: 月額, status: 状態},\n"
        "       subscriptions: {gap_days: 14, end_inclusive: true, statuses: {解約済: ended}}}\n",
        encoding="utf-8")
    settings = load_settings(config)
    result = ingest(settings.ingest.sources, touchpoints=settings.catalog, as_of=settings.ingest.as_of,
                    timezone=settings.timezone)
    assert result.report.loc["billing", "events"] == 4
    assert set(result.events["customer_id"]) == {"00042", "00043"}
    with pytest.raises(ConfigError, match="gap_days"):
        load_settings(config, ["ingest.sources.billing.subscriptions.gap_days=-1"])
