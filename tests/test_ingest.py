"""Ingestion: readers, row checks (every reject reason), time zones, dedupe, accounting, job and CLI.

Hand-typed raw frames and temporary files only (no simulator), so each rule is pinned by a row
someone can read.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import click.testing
import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.cli import app
from signals.errors import ConfigError
from signals.ingest import (
    REASONS,
    IngestError,
    IngestResult,
    _parse_naive_text,
    ingest,
    map_source,
    resolve_as_of,
)
from signals.io.sources import read_source
from signals.io.tables import read_events, read_table
from signals.jobs.ingest import run_ingest
from signals.schemas import check_events
from signals.settings import Settings, SourceSettings

CATALOG = list(Settings().catalog)
AS_OF = "2026-01-01T00:00:00Z"
NAMES = {"訪問": "sales_visit", "Sales visit": "sales_visit", "資料請求": "doc_request",
         "Seminar attended": "seminar", "セミナー参加": "seminar", "Order": "purchase", "受注": "purchase"}
COLUMNS = {"customer_id": "AccountId", "ts": "ActivityDate", "touchpoint": "ActivityType", "value": "Amount"}


def source(name: str = "sfa", **kw) -> SourceSettings:
    fields = {"kind": "csv", "path": Path(f"{name}.csv"), "columns": COLUMNS, "touchpoints": NAMES}
    fields.update(kw)
    return SourceSettings(name=name, **fields)


def raw(rows: list[tuple]) -> pd.DataFrame:
    """(AccountId, ActivityDate, ActivityType, Amount) text rows, like a CSV read."""
    return pd.DataFrame(rows, columns=list(COLUMNS.values()), dtype="str")


def frames(**by_name: pd.DataFrame):
    """A reader serving in-memory frames by source name."""
    return lambda src: by_name[src.name]


def run(sources, reader, **kw) -> IngestResult:
    kw.setdefault("as_of", AS_OF)
    kw.setdefault("max_reject_fraction", 1.0)  # these hand-typed frames are mostly bad rows on purpose
    return ingest(sources, touchpoints=CATALOG, reader=reader, **kw)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if pd.Timestamp(text).tzinfo else pd.Timestamp(text, tz="UTC")


def assert_accounting(result: IngestResult) -> None:
    report = result.report
    assert (report["read"] == report["accepted"] + report["rejected"] + report["duplicates"]).all()
    assert (report[list(REASONS)].sum(axis=1) == report["rejected"]).all()
    assert (report.drop(index="total").sum() == report.loc["total"]).all()
    assert report.loc["total", "accepted"] == len(result.events)
    assert report.loc["total", "rejected"] == len(result.rejects)


# --------------------------------------------------------------------------------------------
# readers and configuration errors


def test_csv_reader_keeps_every_column_as_text(tmp_path):
    path = tmp_path / "sfa.csv"
    path.write_text("AccountId,ActivityDate,ActivityType,Amount\n"
                    "00001,2025/04/01 10:00:00,訪問,\n"
                    "00002,2025/04/02 11:00:00,受注,1200.50\n"
                    "NA,2025/04/03 12:00:00,資料請求,null\n", encoding="utf-8")
    out = read_source(source(path=path))
    assert out["AccountId"].tolist() == ["00001", "00002", "NA"]  # zeros kept, "NA" is not parsed
    assert out["Amount"].tolist() == ["", "1200.50", "null"]  # empty stays "", nothing becomes NaN
    assert all(pd.api.types.is_string_dtype(dtype) for dtype in out.dtypes)


def test_csv_reader_honours_encoding(tmp_path):
    path = tmp_path / "sfa.csv"
    path.write_bytes("AccountId,ActivityDate,ActivityType,Amount\n00007,2025-04-01,資料請求,\n".encode("cp932"))
    assert read_source(source(path=path, encoding="cp932"))["ActivityType"].tolist() == ["資料請求"]
    with pytest.raises(IngestError, match=r"encoding"):
        read_source(source(path=path))  # utf-8 by default: the message says which key to set


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(IngestError) as err:
        read_source(source(path=tmp_path / "nope.csv"))
    message = str(err.value)
    assert "source 'sfa'" in message and "file not found" in message and "nope.csv" in message
    assert "ingest.sources[name=sfa].path" in message


def test_missing_mapped_column_names_source_columns_and_key():
    frame = raw([("001", "2025-01-01", "訪問", "")]).rename(columns={"AccountId": "Account"})
    with pytest.raises(IngestError) as err:
        run([source()], frames(sfa=frame))
    message = str(err.value)
    assert "source 'sfa'" in message
    assert "['AccountId']" in message  # the missing raw column
    assert "'Account'" in message and "'ActivityDate'" in message  # the columns the source has
    assert "ingest.sources[name=sfa].columns" in message


def test_empty_sources_are_errors(tmp_path):
    header_only = tmp_path / "sfa.csv"
    header_only.write_text("AccountId,ActivityDate,ActivityType,Amount\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"source 'sfa' has no rows"):
        ingest([source(path=header_only)], touchpoints=CATALOG, as_of=AS_OF)
    blank = tmp_path / "blank.csv"
    blank.write_bytes(b"")
    with pytest.raises(IngestError, match=r"is empty"):
        read_source(source(path=blank))


def test_no_sources_is_an_error():
    with pytest.raises(IngestError, match="no sources configured"):
        ingest([], touchpoints=CATALOG)


def test_mapping_to_a_type_outside_the_catalog_fails_before_reading():
    def reader(src):
        raise AssertionError("must not read when the config is wrong")

    bad = source(touchpoints={"Webinar attended": "webinars"})
    with pytest.raises(IngestError) as err:
        run([bad], reader)
    assert "'Webinar attended' -> 'webinars'" in str(err.value)
    assert "ingest.sources[name=sfa].touchpoints" in str(err.value)


def _support_db(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE tickets (customer INTEGER, opened_at TEXT, category TEXT)")
        con.executemany("INSERT INTO tickets VALUES (?, ?, ?)", [
            (42, "2025-03-01 09:30:00", "問い合わせ"),
            (43, "2025-03-02T00:30:00Z", "Inquiry"),
        ])


def sql_source(**kw) -> SourceSettings:
    fields = {"kind": "sql", "query": "SELECT customer, opened_at, category FROM tickets", "timezone": "Asia/Tokyo",
              "columns": {"customer_id": "customer", "ts": "opened_at", "touchpoint": "category"},
              "touchpoints": {"Inquiry": "inquiry", "問い合わせ": "inquiry"}}
    fields.update(kw)
    return SourceSettings(name="support", **fields)


def test_sql_source_reads_through_sqlalchemy(tmp_path):
    db = tmp_path / "support.db"
    _support_db(db)
    result = ingest([sql_source(url=f"sqlite:///{db}")], touchpoints=CATALOG, as_of=AS_OF)
    events = result.events
    assert events["customer_id"].tolist() == ["42", "43"]  # integer ids become text
    assert events["ts"].tolist() == [utc("2025-03-01 00:30:00"), utc("2025-03-02 00:30:00")]
    assert events["touchpoint"].tolist() == ["inquiry", "inquiry"]
    assert events["source"].tolist() == ["support", "support"]


def test_sql_url_comes_from_the_environment(tmp_path, monkeypatch):
    db = tmp_path / "support.db"
    _support_db(db)
    monkeypatch.setenv("SIGNALS_TEST_SUPPORT_URL", f"sqlite:///{db}")
    assert len(read_source(sql_source(url_env="SIGNALS_TEST_SUPPORT_URL"))) == 2


def test_unset_url_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SIGNALS_TEST_SUPPORT_URL", raising=False)
    with pytest.raises(IngestError) as err:
        read_source(sql_source(url_env="SIGNALS_TEST_SUPPORT_URL"))
    assert "SIGNALS_TEST_SUPPORT_URL is not set" in str(err.value)
    assert "ingest.sources[name=support].url_env" in str(err.value)


def test_failing_query_reports_the_database_message(tmp_path):
    db = tmp_path / "support.db"
    _support_db(db)
    with pytest.raises(IngestError) as err:
        read_source(sql_source(url=f"sqlite:///{db}", query="SELECT * FROM tikets"))
    assert "query failed" in str(err.value) and "no such table: tikets" in str(err.value)


def test_missing_sqlite_file_is_not_created(tmp_path):
    db = tmp_path / "missing.db"
    with pytest.raises(IngestError, match="SQLite database file not found"):
        read_source(sql_source(url=f"sqlite:///{db}"))
    assert not db.exists()


def test_password_is_hidden_in_messages(monkeypatch):
    monkeypatch.setenv("SIGNALS_TEST_SUPPORT_URL", "nosuchdialect://user:s3cret@db.example/crm")
    with pytest.raises(IngestError) as err:
        read_source(sql_source(url_env="SIGNALS_TEST_SUPPORT_URL"))
    assert "s3cret" not in str(err.value)


# --------------------------------------------------------------------------------------------
# every reject reason, each with its own row

REASON_ROWS = [
    (("", "2025-01-01 10:00:00", "訪問", ""), "missing_customer_id", "customer_id is missing"),
    (("   ", "2025-01-01 10:00:00", "訪問", ""), "missing_customer_id", "customer_id is missing"),
    (("#N/A", "2025-01-01 10:00:00", "訪問", ""), "placeholder_customer_id", "'#N/A' is a placeholder"),
    (("null", "2025-01-01 10:00:00", "訪問", ""), "placeholder_customer_id", "'null' is a placeholder"),
    (("001", "", "訪問", ""), "unparseable_ts", "ts is missing"),
    (("001", "01/02/2025", "訪問", ""), "unparseable_ts", "'01/02/2025' is not parseable"),
    (("001", "2025-02-30 10:00:00", "訪問", ""), "unparseable_ts", "'2025-02-30 10:00:00'"),
    (("001", "9999-12-31", "訪問", ""), "unparseable_ts", "outside 1678-2261"),
    (("001", "1900-01-01", "訪問", ""), "placeholder_ts", "'1900-01-01' falls on a placeholder date"),
    (("001", "1970-01-01 09:00:00", "訪問", ""), "placeholder_ts", "placeholder date"),
    (("001", "2024-03-31 02:30:00", "訪問", ""), "nonexistent_local_time", "does not exist in Europe/Berlin"),
    (("001", "2024-10-27 02:30:00", "訪問", ""), "ambiguous_local_time", "happened twice in Europe/Berlin"),
    (("001", "2025-01-01 10:00:00", "Trade show", ""), "unknown_touchpoint", "'Trade show' is not mapped"),
    (("001", "2025-01-01 10:00:00", " ", ""), "unknown_touchpoint", "activity name is missing"),
    (("001", "2025-01-01 10:00:00", "受注", "1,000"), "unparseable_value", "'1,000' is not a finite"),
    (("001", "2025-01-01 10:00:00", "受注", "inf"), "unparseable_value", "'inf'"),
    (("001", "2025-01-01 10:00:00", "受注", "1.7e308"), "value_out_of_range", "'1.7e308' is larger than 1e+15"),
    (("001", "2025-01-01 10:00:00", "受注", "-5"), "negative_value", "'-5' is negative (a refund"),
    (("001", "2026-06-01 00:00:00", "受注", "10"), "future_ts", "is after as_of 2026-01-01T00:00:00Z"),
]


@pytest.mark.parametrize(("row", "reason", "detail"), REASON_ROWS, ids=[f"{r[1]}-{i}" for i, r in enumerate(REASON_ROWS)])
def test_each_reject_reason(row, reason, detail):
    good = ("002", "2025-01-01 10:00:00", "訪問", "")
    accepted, rejects = map_source(raw([good, row]), source(timezone="Europe/Berlin"), touchpoints=CATALOG, as_of=AS_OF)
    assert len(accepted) == 1 and accepted.index.tolist() == [0]
    assert rejects[["source", "row", "line", "reason"]].values.tolist() == [["sfa", 1, 3, reason]]
    assert detail in rejects["detail"].iloc[0]
    # the mapped cells as written, not every raw column (no unmapped personal data by default)
    assert rejects[["customer_id", "ts", "touchpoint", "value"]].iloc[0].tolist() == list(row)
    assert "raw" not in rejects.columns
    _, with_raw = map_source(raw([good, row]), source(timezone="Europe/Berlin"), touchpoints=CATALOG, as_of=AS_OF,
                             rejects_raw_columns=True)
    assert json.loads(with_raw["raw"].iloc[0]) == dict(zip(COLUMNS.values(), row, strict=True))


def test_every_reason_code_is_covered_above():
    assert {reason for _, reason, _ in REASON_ROWS} == set(REASONS)


@pytest.mark.parametrize(("row", "reason"), [
    (("", "garbage", "Trade show", "-1"), "missing_customer_id"),
    (("001", "garbage", "Trade show", "-1"), "unparseable_ts"),
    (("001", "2024-03-31 02:30:00", "Trade show", "-1"), "nonexistent_local_time"),
    (("001", "2024-10-27 02:30:00", "Trade show", "x"), "ambiguous_local_time"),
    (("001", "2030-01-01", "Trade show", "x"), "unknown_touchpoint"),
    (("001", "2030-01-01", "訪問", "x"), "unparseable_value"),
    (("001", "2030-01-01", "訪問", "1e300"), "value_out_of_range"),
    (("001", "2030-01-01", "訪問", "-1"), "negative_value"),
    (("N/A", "1900-01-01", "Trade show", "-1"), "placeholder_customer_id"),
    (("001", "1970-01-01", "Trade show", "-1"), "placeholder_ts"),
])
def test_first_failing_check_wins(row, reason):
    _, rejects = map_source(raw([row]), source(timezone="Europe/Berlin"), touchpoints=CATALOG, as_of=AS_OF)
    assert rejects["reason"].tolist() == [reason]


def test_values_missing_is_zero_and_parsed_otherwise():
    rows = [("001", "2025-01-01", "受注", ""), ("001", "2025-01-02", "受注", " 1200.50 "),
            ("001", "2025-01-03", "受注", "1e3"), ("001", "2025-01-04", "受注", "-0"), ("001", "2025-01-05", "受注", "+3")]
    accepted, rejects = map_source(raw(rows), source(), touchpoints=CATALOG, as_of=AS_OF)
    assert rejects.empty
    assert accepted["value"].tolist() == [0.0, 1200.5, 1000.0, 0.0, 3.0]
    assert not np.signbit(accepted["value"]).any()  # "-0" is stored as 0.0
    numeric = pd.DataFrame({"AccountId": ["1", "2", "3"], "ActivityDate": ["2025-01-01"] * 3,
                            "ActivityType": ["Order"] * 3, "Amount": [np.nan, 5.0, np.inf]})
    accepted, rejects = map_source(numeric, source(), touchpoints=CATALOG, as_of=AS_OF)
    assert accepted["value"].tolist() == [0.0, 5.0]
    assert rejects["reason"].tolist() == ["unparseable_value"]
    no_value = source(columns={k: v for k, v in COLUMNS.items() if k != "value"})
    accepted, _ = map_source(raw(rows).drop(columns="Amount"), no_value, touchpoints=CATALOG, as_of=AS_OF)
    assert accepted["value"].tolist() == [0.0] * 5


def test_ids_are_stripped_text_with_leading_zeros(tmp_path):
    path = tmp_path / "sfa.csv"
    path.write_text("AccountId,ActivityDate,ActivityType,Amount\n"
                    " 00042 ,2025-01-01,訪問,\n0042,2025-01-01,訪問,\n", encoding="utf-8")
    result = ingest([source(path=path)], touchpoints=CATALOG, as_of=AS_OF)
    assert sorted(result.events["customer_id"].tolist()) == ["00042", "0042"]  # two different customers
    floats = pd.DataFrame({"AccountId": [7.0, np.nan], "ActivityDate": ["2025-01-01"] * 2,
                           "ActivityType": ["訪問"] * 2, "Amount": [None, None]})
    accepted, rejects = map_source(floats, source(), touchpoints=CATALOG, as_of=AS_OF)
    assert accepted["customer_id"].tolist() == ["7"]  # an integer id stored as float because of a null
    assert rejects["reason"].tolist() == ["missing_customer_id"]


def test_activity_names_are_stripped_and_catalog_names_pass_through():
    rows = [("001", "2025-01-01", " 資料請求 ", ""), ("001", "2025-01-02", "webinar", ""),
            ("001", "2025-01-03", "Webinar", "")]
    accepted, rejects = map_source(raw(rows), source(), touchpoints=CATALOG, as_of=AS_OF)
    assert accepted["touchpoint"].tolist() == ["doc_request", "webinar"]
    assert rejects["reason"].tolist() == ["unknown_touchpoint"]  # names are case-sensitive
    assert list(accepted["touchpoint"].cat.categories) == CATALOG


# --------------------------------------------------------------------------------------------
# time zones


def ts_of(rows, **kw) -> tuple[list, pd.DataFrame]:
    accepted, rejects = map_source(raw(rows), source(**kw), touchpoints=CATALOG, as_of=AS_OF)
    return accepted["ts"].tolist(), rejects


def test_naive_tokyo_times_become_utc():
    got, _ = ts_of([("1", "2025-04-01 09:00:00", "訪問", ""), ("1", "2025-04-01", "訪問", "")], timezone="Asia/Tokyo")
    assert got == [utc("2025-04-01 00:00:00"), utc("2025-03-31 15:00:00")]


def test_ts_format_with_iso_fallback():
    rows = [("1", "2025/04/01 09:00:00", "訪問", ""), ("1", "2025-04-01T09:00:00+00:00", "訪問", ""),
            ("1", "2025-04-01T09:00:00", "訪問", ""), ("1", "01.04.2025", "訪問", "")]
    got, rejects = ts_of(rows, timezone="Asia/Tokyo", ts_format="%Y/%m/%d %H:%M:%S")
    assert got == [utc("2025-04-01 00:00:00"), utc("2025-04-01 09:00:00"), utc("2025-04-01 00:00:00")]
    assert rejects["row"].tolist() == [3]
    assert "ts_format '%Y/%m/%d %H:%M:%S' nor as ISO 8601" in rejects["detail"].iloc[0]


def test_ts_format_with_offsets():
    rows = [("1", "2025/04/01 09:00:00+0900", "訪問", ""), ("1", "2025/04/01 09:00:00-0100", "訪問", "")]
    got, _ = ts_of(rows, timezone="Europe/Berlin", ts_format="%Y/%m/%d %H:%M:%S%z")
    assert got == [utc("2025-04-01 00:00:00"), utc("2025-04-01 10:00:00")]


def test_berlin_dst_gap_and_overlap():
    rows = [("1", "2024-03-31 01:59:59", "訪問", ""),  # CET, last second before the gap
            ("1", "2024-03-31 02:00:00", "訪問", ""),  # the gap: 02:00-03:00 does not exist
            ("1", "2024-03-31 02:59:59", "訪問", ""),
            ("1", "2024-03-31 03:00:00", "訪問", ""),  # CEST
            ("1", "2024-10-27 01:59:59", "訪問", ""),  # CEST
            ("1", "2024-10-27 02:00:00", "訪問", ""),  # the overlap: 02:00-03:00 happens twice
            ("1", "2024-10-27 02:59:59", "訪問", ""),
            ("1", "2024-10-27 03:00:00", "訪問", "")]  # CET
    got, rejects = ts_of(rows, timezone="Europe/Berlin")
    assert got == [utc("2024-03-31 00:59:59"), utc("2024-03-31 01:00:00"),
                   utc("2024-10-26 23:59:59"), utc("2024-10-27 02:00:00")]
    assert rejects[["row", "reason"]].values.tolist() == [
        [1, "nonexistent_local_time"], [2, "nonexistent_local_time"],
        [5, "ambiguous_local_time"], [6, "ambiguous_local_time"],
    ]


def test_offsets_win_over_the_source_timezone_and_may_mix_with_naive():
    rows = [("1", "2024-10-27T02:30:00+02:00", "訪問", ""),  # inside Berlin's overlap, but the offset says which
            ("1", "2024-10-27T02:30:00+01:00", "訪問", ""),
            ("1", "2025-01-05T10:00:00Z", "訪問", ""),
            ("1", "2025-01-05 10:00:00 -05:00", "訪問", ""),
            ("1", "20250105T100000+0900", "訪問", ""),
            ("1", "2025-01-05 10:00:00", "訪問", ""),  # naive: Berlin winter time
            ("1", "2025-01-05", "訪問", "")]  # a date: "-05" is the day, not an offset
    got, rejects = ts_of(rows, timezone="Europe/Berlin")
    assert rejects.empty
    assert got == [utc("2024-10-27 00:30:00"), utc("2024-10-27 01:30:00"), utc("2025-01-05 10:00:00"),
                   utc("2025-01-05 15:00:00"), utc("2025-01-05 01:00:00"), utc("2025-01-05 09:00:00"),
                   utc("2025-01-04 23:00:00")]


def test_naive_parser_recovers_offsets_the_pattern_missed():
    ns, ok, aware = _parse_naive_text(pd.Series(["2025-01-05T10:00:00", "2025-01-05T10:00:00+09:00", "x"]), None)
    assert ok.tolist() == [True, True, False] and aware.tolist() == [False, True, False]
    assert ns[1] == utc("2025-01-05 01:00:00").value


def test_parquet_tz_aware_and_naive_columns(tmp_path):
    aware = pd.DataFrame({
        "AccountId": ["00001", "00002"],
        "ActivityDate": pd.to_datetime(["2025-04-01 09:00", "2024-10-27 02:30"]).tz_localize("Asia/Tokyo"),
        "ActivityType": ["セミナー参加", "セミナー参加"],
        "Amount": [None, 3.5],
    })
    aware.to_parquet(tmp_path / "mkt.parquet")
    result = ingest([source("mkt", kind="parquet", path=tmp_path / "mkt.parquet", timezone="Europe/Berlin")],
                    touchpoints=CATALOG, as_of=AS_OF)
    # instants stay instants: the Berlin overlap is irrelevant for an aware column
    assert result.events["customer_id"].tolist() == ["00001", "00002"]
    assert result.events["ts"].tolist() == [utc("2025-04-01 00:00:00"), utc("2024-10-26 17:30:00")]
    assert result.events["value"].tolist() == [0.0, 3.5]

    naive = aware.assign(ActivityDate=pd.to_datetime(["2024-03-31 02:30", "2024-06-01 12:00"]))
    naive.to_parquet(tmp_path / "naive.parquet")
    result = ingest([source("mkt", kind="parquet", path=tmp_path / "naive.parquet", timezone="Europe/Berlin")],
                    touchpoints=CATALOG, as_of=AS_OF)
    assert result.events["ts"].tolist() == [utc("2024-06-01 10:00:00")]
    assert result.rejects["reason"].tolist() == ["nonexistent_local_time"]
    assert "'2024-03-31 02:30:00'" in result.rejects["detail"].iloc[0]


def test_as_of_naive_is_local_and_future_rows_are_rejected():
    assert resolve_as_of("2026-01-01 00:00:00", "Asia/Tokyo") == utc("2025-12-31 15:00:00")
    assert resolve_as_of(pd.Timestamp("2026-01-01", tz="Asia/Tokyo"), "Europe/Berlin") == utc("2025-12-31 15:00:00")
    rows = [("1", "2025-12-31T15:00:00Z", "訪問", ""), ("1", "2025-12-31T15:00:00.000001Z", "訪問", "")]
    accepted, rejects = map_source(raw(rows), source(), touchpoints=CATALOG,
                                   as_of=resolve_as_of("2026-01-01 00:00:00", "Asia/Tokyo"))
    assert accepted.index.tolist() == [0]  # ts == as_of is accepted; one microsecond later is the future
    assert rejects["reason"].tolist() == ["future_ts"]
    with pytest.raises(IngestError, match="DST"):
        resolve_as_of("2024-03-31 02:30:00", "Europe/Berlin")
    now = pd.Timestamp.now(tz="UTC")
    assert abs(resolve_as_of(None) - now) < pd.Timedelta(minutes=1)


# --------------------------------------------------------------------------------------------
# unification: dedupe, sort, schema, accounting, strict


def test_dedupe_across_sources_keeps_the_first_source():
    sfa = raw([("001", "2025-05-01 10:00:00", "Seminar attended", ""),  # Tokyo wall time
               ("001", "2025-05-01 10:00:00", "訪問", ""),  # same instant, other touchpoint: kept
               ("002", "2025-05-02 10:00:00", "Seminar attended", ""),
               ("003", "2025-05-02 10:00:00", "Seminar attended", "7")])  # a value: says something else
    mkt = raw([("001", "2025-05-01T01:00:00Z", "セミナー参加", "0"),  # the same seminar, seen by marketing
               ("002", "2025-05-02T01:00:01Z", "セミナー参加", ""),  # one second later: not exact
               ("002", "2025-05-02T01:00:01Z", "セミナー参加", ""),  # repeated inside marketing
               ("003", "2025-05-02T01:00:00Z", "セミナー参加", "")])  # same instant, value 0 vs 7: distinct
    sources = [source("sfa", timezone="Asia/Tokyo"), source("mkt")]
    result = run(sources, frames(sfa=sfa, mkt=mkt))
    events = result.events
    assert len(events) == 6
    seminar = events[(events["customer_id"] == "001") & (events["touchpoint"] == "seminar")]
    assert seminar["source"].tolist() == ["sfa"]
    assert sorted(events[events["customer_id"] == "003"]["value"].tolist()) == [0.0, 7.0]
    assert result.report.loc["sfa", ["accepted", "duplicates"]].tolist() == [4, 0]
    assert result.report.loc["mkt", ["accepted", "duplicates"]].tolist() == [2, 2]
    assert_accounting(result)
    dups = result.duplicates
    assert dups[["source", "row", "kind", "kept_source", "kept_row"]].values.tolist() == [
        ["mkt", 0, "cross_source", "sfa", 0], ["mkt", 2, "repeated_row", "mkt", 1]]
    # source order decides: the other way round, marketing's copy is the one kept
    flipped = run(sources[::-1], frames(sfa=sfa, mkt=mkt))
    seminar = flipped.events[(flipped.events["customer_id"] == "001") & (flipped.events["touchpoint"] == "seminar")]
    assert seminar["source"].tolist() == ["mkt"]


def test_dedupe_tolerance_is_across_sources_and_groups_from_the_first_event():
    seconds = [0, 50, 100, 130, 200, 261]
    stamps = [f"2025-05-01T00:{s // 60:02d}:{s % 60:02d}Z" for s in seconds]
    a = raw([("001", "2025-05-01T00:00:00Z", "訪問", ""), ("001", "2025-05-01T00:01:40Z", "訪問", ""),
             ("001", "2025-05-01T00:03:20Z", "訪問", "")])  # 0, 100, 200 s
    b = raw([("001", t, "訪問", "") for t in stamps] + [("001", "2025-05-01T00:00:30Z", "資料請求", "")])
    result = run([source("a"), source("b")], frames(a=a, b=b), dedupe_tolerance_seconds=60)
    # groups start at 0 s ({0, 50} from b, {0} from a), 100 s ({100, 130} / {100}), 200 s ({200} / {200});
    # 261 s is 61 s after the group's start at 200 s: a group of its own. In a group, b's first event
    # matches a's, b's second is new.
    visits = result.events[result.events["touchpoint"] == "sales_visit"]
    assert sorted((str(r.source), int((r.ts - utc("2025-05-01")).total_seconds())) for r in visits.itertuples()) == [
        ("a", 0), ("a", 100), ("a", 200), ("b", 50), ("b", 130), ("b", 261)]
    assert result.report.loc["b", "duplicates"] == 3
    assert result.duplicates["kept_ts"].tolist() == ["2025-05-01T00:00:00Z", "2025-05-01T00:01:40Z",
                                                     "2025-05-01T00:03:20Z"]
    # within one source the tolerance does not apply: six visits 30-61 s apart are six visits
    alone = run([source("b")], frames(b=b), dedupe_tolerance_seconds=60)
    assert alone.report.loc["b", "duplicates"] == 0 and len(alone.events) == 7


def test_dedupe_tolerance_ties_go_to_the_earlier_source_and_boundary_is_inclusive():
    a = raw([("001", "2025-05-01T00:00:10Z", "訪問", "1")])
    b = raw([("001", "2025-05-01T00:00:10Z", "訪問", "1"), ("001", "2025-05-01T00:01:10Z", "訪問", "1"),
             ("001", "2025-05-01T00:00:05Z", "資料請求", "")])
    result = run([source("a"), source("b")], frames(a=a, b=b), dedupe_tolerance_seconds=60)
    visits = result.events[result.events["touchpoint"] == "sales_visit"]
    assert visits["source"].tolist() == ["a", "b"]  # b's first matches a's; its second (60 s later) is new
    assert result.report.loc["b", "duplicates"] == 1
    c = raw([("001", "2025-05-01T00:01:10Z", "訪問", "1")])
    edge = run([source("a"), source("c")], frames(a=a, c=c), dedupe_tolerance_seconds=60)
    assert edge.report.loc["c", "duplicates"] == 1  # exactly 60 s apart: within the tolerance


def test_output_is_sorted_and_passes_check_events_unchanged():
    sfa = raw([("b", "2025-05-02", "受注", "5"), ("a", "2025-05-02", "訪問", ""), ("a", "2025-05-02", "受注", "1"),
               ("a", "2025-05-01", "受注", "2"), ("10", "2025-05-01", "訪問", ""), ("9", "2025-05-01", "訪問", "")])
    mkt = raw([("a", "2025-05-02", "Seminar attended", "")])
    result = run([source("sfa"), source("mkt")], frames(sfa=sfa, mkt=mkt))
    events = result.events
    pd.testing.assert_frame_equal(check_events(events, CATALOG), events)
    assert list(events.columns) == ["customer_id", "ts", "touchpoint", "value", "source"]
    assert str(events["ts"].dtype) == "datetime64[ns, UTC]" and events["value"].dtype == np.float64
    assert list(events["touchpoint"].cat.categories) == CATALOG
    assert events["customer_id"].cat.categories.dtype == "str"
    expected = events.sort_values(["customer_id", "ts", "touchpoint"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(events, expected)
    assert [(r.customer_id, r.touchpoint) for r in events.itertuples()][:4] == [
        ("10", "sales_visit"), ("9", "sales_visit"), ("a", "purchase"), ("a", "seminar")]
    assert events.index.equals(pd.RangeIndex(len(events)))


def test_all_rows_rejected_gives_an_empty_valid_table():
    result = run([source()], frames(sfa=raw([("", "2025-01-01", "訪問", "")])), max_reject_fraction=1.0)
    assert result.events.empty
    pd.testing.assert_frame_equal(check_events(result.events, CATALOG), result.events)
    assert_accounting(result)


def test_strict_raises_with_counts_by_reason():
    frame = raw([("001", "2025-01-01", "訪問", ""), ("001", "2025-01-01", "訪問", ""),
                 ("002", "x", "訪問", ""), ("003", "y", "訪問", ""), ("004", "2025-01-01", "?", "")])
    with pytest.raises(IngestError) as err:
        run([source()], frames(sfa=frame), strict=True)
    message = str(err.value)
    assert "3 row(s) rejected" in message and "unparseable_ts 2" in message and "unknown_touchpoint 1" in message
    assert err.value.result is not None and len(err.value.result.rejects) == 3
    clean = run([source()], frames(sfa=frame.iloc[:2]), strict=True)  # duplicates are not rejects
    assert clean.report.loc["total", "duplicates"] == 1


# --------------------------------------------------------------------------------------------
# properties: accounting and the dedupe rule on random raw frames

KINDS = ("good", "missing_customer_id", "placeholder_customer_id", "unparseable_ts", "placeholder_ts",
         "unknown_touchpoint", "unparseable_value", "value_out_of_range", "negative_value", "future_ts")
ROW = st.tuples(st.sampled_from(KINDS), st.integers(0, 3), st.integers(0, 6), st.sampled_from(["訪問", "資料請求"]),
                st.sampled_from(["Z", "+09:00", ""]), st.sampled_from(["", "5", "7"]), st.sampled_from(["", "e1", "e2"]))
ID_COLUMNS = {**COLUMNS, "event_id": "ActivityId"}


def _row(kind: str, cust: int, minute: int, name: str, zone: str, value: str, eid: str) -> tuple:
    row = [f"{cust:03d}", f"2025-03-01T00:{minute:02d}:00{zone}", name, value, eid]
    if kind == "missing_customer_id":
        row[0] = " "
    elif kind == "placeholder_customer_id":
        row[0] = "#N/A"
    elif kind == "unparseable_ts":
        row[1] = "2025-03-01T25:00:00"
    elif kind == "placeholder_ts":
        row[1] = "1900-01-01"
    elif kind == "unknown_touchpoint":
        row[2] = "Trade show"
    elif kind == "unparseable_value":
        row[3] = "12abc"
    elif kind == "value_out_of_range":
        row[3] = "1.7e308"
    elif kind == "negative_value":
        row[3] = "-1"
    elif kind == "future_ts":
        row[1] = f"2027-01-01T00:{minute:02d}:00{zone}"
    return tuple(row)


def _reference_dedupe(rows: list[tuple], tolerance_ns: int) -> dict:
    """The documented rule, one event at a time.

    ``rows`` are (source_index, row, customer, ts_ns, touchpoint, value, event_id or None) in
    (source, row) order. Returns {(source, row) of each dropped row: (source, row) of the kept row}.
    """
    dropped, first_of = {}, {}
    survivors = []
    for r in rows:  # 1. within a source: exact repeats (event id compared when the source has one)
        key = (r[0], r[2], r[4], r[3], r[5], r[6])
        if key in first_of:
            dropped[(r[0], r[1])] = first_of[key]
        else:
            first_of[key] = (r[0], r[1])
            survivors.append(r)
    groups = defaultdict(list)
    for r in survivors:
        groups[(r[2], r[4], r[5])].append(r)
    kept_as = {}
    for members in groups.values():  # 2. across sources: clusters from their first event, one-to-one matching
        members.sort(key=lambda r: (r[3], r[0], r[1]))
        clusters, head = [], None
        for r in members:
            if head is None or r[3] - head > tolerance_ns:
                clusters.append([])
                head = r[3]
            clusters[-1].append(r)
        for cluster in clusters:
            kept_by_rank = []
            for src in sorted({r[0] for r in cluster}):
                mine = sorted((r for r in cluster if r[0] == src), key=lambda r: (r[3], r[1]))
                for rank, r in enumerate(mine):
                    if rank < len(kept_by_rank):
                        dropped[(r[0], r[1])] = kept_by_rank[rank]
                    else:
                        kept_by_rank.append((r[0], r[1]))
    for row, kept in dropped.items():  # a repeat of a dropped row points at the row kept in its place
        kept_as[row] = dropped.get(kept, kept)
    return kept_as


def _random_ingest(sources_rows, with_ids, tolerance):
    tz = "Asia/Tokyo"
    names = [f"s{i}" for i in range(len(sources_rows))]
    raw_frames = {name: pd.DataFrame([_row(*r) for r in rows], columns=list(ID_COLUMNS.values()), dtype="str")
                  for name, rows in zip(names, sources_rows, strict=True)}
    configured = [source(name, timezone=tz, columns=ID_COLUMNS if ids else COLUMNS)
                  for name, ids in zip(names, with_ids, strict=True)]
    result = run(configured, frames(**raw_frames), dedupe_tolerance_seconds=tolerance, as_of="2026-01-01T00:00:00Z")
    good = []
    for s, (rows, ids) in enumerate(zip(sources_rows, with_ids, strict=True)):
        for i, (kind, cust, minute, act, zone, value, eid) in enumerate(rows):
            if kind == "good":
                local = pd.Timestamp(f"2025-03-01T00:{minute:02d}:00{zone}")
                ts = local.tz_localize(tz) if local.tzinfo is None else local
                good.append((s, i, f"{cust:03d}", ts.tz_convert("UTC").value, NAMES[act], float(value or 0),
                             (eid or None) if ids else None))
    return names, result, good


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources_rows=st.lists(st.lists(ROW, min_size=1, max_size=25), min_size=1, max_size=3),
       with_ids=st.lists(st.booleans(), min_size=3, max_size=3),
       tolerance=st.sampled_from([0, 60, 150, 3600]))
def test_accounting_and_dedupe_match_a_reference(sources_rows, with_ids, tolerance):
    """read = accepted + rejected + duplicates; every dropped row is in the rejects or the duplicates,
    with the row it duplicates; the kept events are the documented rule's."""
    names, result, good = _random_ingest(sources_rows, with_ids[: len(sources_rows)], tolerance)
    assert_accounting(result)
    for name, rows in zip(names, sources_rows, strict=True):
        assert result.report.loc[name, "read"] == len(rows)
    expected_rejects = sorted((name, i, kind) for name, rows in zip(names, sources_rows, strict=True)
                              for i, (kind, *_) in enumerate(rows) if kind != "good")
    got_rejects = sorted(zip(result.rejects["source"], result.rejects["row"], result.rejects["reason"], strict=True))
    assert got_rejects == expected_rejects
    dropped = _reference_dedupe(good, tolerance * 1_000_000_000)
    got_dropped = {(names.index(r.source), r.row): (names.index(r.kept_source), r.kept_row)
                   for r in result.duplicates.itertuples()}
    assert got_dropped == dropped
    assert len(result.duplicates) == result.report.loc["total", "duplicates"]
    expected_events = sorted((r[2], r[3], r[4], names[r[0]], r[5]) for r in good if (r[0], r[1]) not in dropped)
    got_events = sorted((r.customer_id, r.ts.value, r.touchpoint, r.source, r.value) for r in result.events.itertuples())
    assert got_events == expected_events
    # every raw row is accounted for exactly once: accepted, rejected or a duplicate of a kept row
    rejected = set(zip(result.rejects["source"], result.rejects["row"], strict=True))
    duplicate = set(zip(result.duplicates["source"], result.duplicates["row"], strict=True))
    kept_rows = set(zip(result.duplicates["kept_source"], result.duplicates["kept_row"], strict=True))
    assert not rejected & duplicate and not (kept_rows & (rejected | duplicate))
    events = result.events
    pd.testing.assert_frame_equal(events, events.sort_values(["customer_id", "ts", "touchpoint"], kind="stable",
                                                             ignore_index=True))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 400)), min_size=1, max_size=60),
       st.integers(0, 120))
def test_tolerance_dedupe_matches_the_reference_on_dense_events(events, tolerance):
    """Many events per (customer, touchpoint) a few seconds apart: long chains of groups."""
    half = len(events) // 2
    parts = {"a": events[:half], "b": events[half:]}
    acts = ["訪問", "資料請求"]
    frames_ = {name: raw([(f"c{c}", f"2025-03-01T00:{s // 60:02d}:{s % 60:02d}Z", acts[k], "") for c, k, s in rows])
               for name, rows in parts.items() if rows}
    result = run([source(name) for name in frames_], frames(**frames_), dedupe_tolerance_seconds=tolerance)
    good = [(si, i, f"c{c}", pd.Timestamp(f"2025-03-01T00:{s // 60:02d}:{s % 60:02d}Z").value, NAMES[acts[k]], 0.0,
             None) for si, name in enumerate(frames_) for i, (c, k, s) in enumerate(parts[name])]
    dropped = _reference_dedupe(good, tolerance * 1_000_000_000)
    names = list(frames_)
    expected = sorted((r[2], r[3], r[4], names[r[0]]) for r in good if (r[0], r[1]) not in dropped)
    got = sorted((r.customer_id, r.ts.value, r.touchpoint, r.source) for r in result.events.itertuples())
    assert got == expected
    assert_accounting(result)


# --------------------------------------------------------------------------------------------
# job and CLI


def _write_demo_sources(folder: Path) -> list[dict]:
    (folder / "sfa.csv").write_text(
        "AccountId,ActivityDate,ActivityType,Amount\n"
        "00001,2025/12/31 23:30:00,受注,1200\n"   # 14:30 UTC: before as_of (2026-01-01 00:00 Tokyo)
        "00001,2026/01/01 00:30:00,訪問,\n"       # after as_of in Tokyo: future
        "00002,2025/05/01 10:00:00,Seminar attended,\n"
        ",2025/05/01 10:00:00,訪問,\n", encoding="utf-8")
    pd.DataFrame({
        "contact_account": ["00002", "00003"],
        "event_time": pd.to_datetime(["2025-05-01 01:00", "2025-05-02 01:00"]).tz_localize("UTC"),
        "event_name": ["セミナー参加", "資料請求"],
    }).to_parquet(folder / "marketing.parquet")
    return [
        {"name": "sfa", "kind": "csv", "path": str(folder / "sfa.csv"), "timezone": "Asia/Tokyo",
         "ts_format": "%Y/%m/%d %H:%M:%S",
         "columns": {"customer_id": "AccountId", "ts": "ActivityDate", "touchpoint": "ActivityType", "value": "Amount"},
         "touchpoints": NAMES},
        {"name": "marketing", "kind": "parquet", "path": str(folder / "marketing.parquet"),
         "columns": {"customer_id": "contact_account", "ts": "event_time", "touchpoint": "event_name"},
         "touchpoints": NAMES},
    ]


def _settings(folder: Path, **ingest_overrides) -> Settings:
    return Settings.model_validate({
        "timezone": "Asia/Tokyo",
        "ingest": {"as_of": "2026-01-01T00:00:00", "sources": _write_demo_sources(folder), **ingest_overrides},
        "paths": {"events": str(folder / "out" / "events.parquet"), "rejects": str(folder / "out" / "rejects.csv")},
    })


def test_run_ingest_writes_events_and_rejects(tmp_path):
    result = run_ingest(_settings(tmp_path), strict=False)
    events = read_events(tmp_path / "out" / "events.parquet", CATALOG)
    assert events["customer_id"].tolist() == ["00001", "00002", "00003"]  # zeros survive the round trip
    assert events["ts"].iloc[0] == utc("2025-12-31 14:30:00")
    assert events["value"].iloc[0] == 1200.0
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv", dtype=str)
    assert rejects["reason"].tolist() == ["future_ts", "missing_customer_id"]
    assert rejects["row"].tolist() == ["1", "3"]
    assert result.report.loc["marketing", "duplicates"] == 1  # the seminar both systems recorded
    assert result.as_of == utc("2025-12-31 15:00:00")  # naive as_of is in settings.timezone


def test_run_ingest_strict_writes_rejects_but_not_events(tmp_path):
    with pytest.raises(IngestError, match="2 row"):
        run_ingest(_settings(tmp_path), strict=True)
    assert len(read_table(tmp_path / "out" / "rejects.csv")) == 2
    assert not (tmp_path / "out" / "events.parquet").exists()
    other = tmp_path / "elsewhere.parquet"
    run_ingest(_settings(tmp_path), strict=False, events_path=other, rejects_path=tmp_path / "r.csv")
    assert other.exists() and (tmp_path / "r.csv").exists()


def _cli(args: list[str]):
    # get_group: the app stays a command group even while `ingest` is its only command
    return click.testing.CliRunner().invoke(typer.main.get_group(app), args, terminal_width=200)


def _config(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(settings.model_dump(mode="json", include={"timezone", "ingest", "paths"})),
                    encoding="utf-8")
    return path


def test_cli_ingest_prints_the_report(tmp_path):
    config = _config(tmp_path, _settings(tmp_path))
    result = _cli(["ingest", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "sfa" in result.output and "marketing" in result.output and "total" in result.output
    assert "future_ts 1" in result.output and "missing_customer_id 1" in result.output
    assert (tmp_path / "out" / "events.parquet").exists()


def test_cli_ingest_errors_are_messages_not_tracebacks(tmp_path):
    settings = _settings(tmp_path)
    config = _config(tmp_path, settings)
    (tmp_path / "sfa.csv").unlink()
    result = _cli(["ingest", "-c", str(config)])
    assert result.exit_code == 1
    assert "file not found" in result.output and "ingest.sources[name=sfa].path" in result.output
    assert "Traceback" not in result.output

    _write_demo_sources(tmp_path)
    result = _cli(["ingest", "-c", str(config), "--strict", "--rejects", str(tmp_path / "strict.csv")])
    assert result.exit_code == 1 and "2 row(s) rejected" in result.output
    assert (tmp_path / "strict.csv").exists()

    result = _cli(["ingest", "-c", str(config), "--set", "ingest.sources=[]"])
    assert result.exit_code == 2 and "no sources configured" in result.output


def test_run_ingest_checks_output_names_before_reading(tmp_path):
    with pytest.raises(ConfigError, match=r"events file .*events\.txt: use a \.parquet or \.csv name"):
        run_ingest(_settings(tmp_path), events_path=tmp_path / "events.txt")
    assert not (tmp_path / "out" / "rejects.csv").exists()
