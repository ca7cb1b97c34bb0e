"""Nothing lost, nothing leaked, nothing half-written (issue 12): one test per finding.

Hand-typed files in temporary folders; each test names the finding it pins. The property test
(read = accepted + rejected + duplicates, every dropped row in the rejects or duplicates) is
``tests/test_ingest.py::test_accounting_and_dedupe_match_a_reference`` and, through the files the
job writes, :func:`test_every_dropped_row_is_in_the_rejects_or_duplicates_file`; the kill tests are
in ``tests/test_faults.py``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from signals.cli import SignalsGroup, app
from signals.cutoffs import scoring_cutoffs
from signals.errors import DataError, IngestError, OutputError
from signals.features.matrix import build_features
from signals.features.reference import reference_features
from signals.features.spec import FeatureSpec
from signals.ingest import ingest, map_source
from signals.io.atomic import folder_lock
from signals.io.sources import check_read_only_query, mask_url, read_source
from signals.io.tables import read_events, read_table, write_table
from signals.jobs.ingest import run_ingest
from signals.schemas import check_events
from signals.settings import Settings, SourceSettings, Touchpoint, load_settings

CATALOG = Settings().catalog
AS_OF = "2026-01-01T00:00:00Z"
COLUMNS = {"customer_id": "AccountId", "ts": "ActivityDate", "touchpoint": "ActivityType", "value": "Amount"}
NAMES = {"訪問": "sales_visit", "受注": "purchase", "Order": "purchase", "Visit": "sales_visit"}
runner = CliRunner()


def csv_source(path: Path, name: str = "sfa", **kw) -> SourceSettings:
    fields = {"kind": "csv", "path": path, "columns": COLUMNS, "touchpoints": NAMES, "timezone": "Asia/Tokyo"}
    fields.update(kw)
    return SourceSettings(name=name, **fields)


def write_csv(path: Path, rows: list[str], header: str = "AccountId,ActivityDate,ActivityType,Amount",
              encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


def job_settings(folder: Path, sources: list[dict], **ingest) -> Settings:
    return Settings.model_validate({
        "timezone": "Asia/Tokyo",
        "ingest": {"as_of": AS_OF, "sources": sources, **ingest},
        "paths": {name: str(folder / "out" / file) for name, file in (
            ("events", "events.parquet"), ("rejects", "rejects.csv"), ("duplicates", "duplicates.csv"),
            ("features", "features.parquet"), ("customers", "customers.parquet"))},
    })


def source_dict(path: Path, **kw) -> dict:
    return {"name": "sfa", "kind": "csv", "path": str(path), "timezone": "Asia/Tokyo", "columns": COLUMNS,
            "touchpoints": NAMES, **kw}


def config_file(folder: Path, settings: Settings) -> Path:
    path = folder / "config.yaml"
    path.write_text(json.dumps(settings.model_dump(mode="json", include={"timezone", "ingest", "paths"})),
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# 1. distinct events merged as duplicates


def test_1_distinct_amounts_on_one_day_are_distinct_events(tmp_path):
    path = write_csv(tmp_path / "orders.csv", ["00042,2025-03-01,Order,1000", "00042,2025-03-01,Order,250000",
                                               "00042,2025-03-01,Order,80", "00042,2025-03-01,Order,80"])
    result = ingest([csv_source(path)], touchpoints=CATALOG, as_of=AS_OF)
    assert sorted(result.events["value"].tolist()) == [80.0, 1000.0, 250000.0]
    assert result.report.loc["sfa", "duplicates"] == 1  # the repeated 80: the same row twice
    dup = result.duplicates.iloc[0]
    assert (dup["row"], dup["line"], dup["kind"], dup["kept_row"], dup["kept_line"]) == (3, 5, "repeated_row", 2, 4)
    assert dup["value"] == 80.0 and dup["customer_id"] == "00042"


def test_1_event_ids_tell_identical_rows_apart(tmp_path):
    header = "AccountId,ActivityDate,ActivityType,Amount,ActivityId"
    path = write_csv(tmp_path / "visits.csv", ["7,2025-03-01,Visit,,A-1", "7,2025-03-01,Visit,,A-2",
                                               "7,2025-03-01,Visit,,A-2"], header=header)
    with_ids = csv_source(path, columns={**COLUMNS, "event_id": "ActivityId"})
    result = ingest([with_ids], touchpoints=CATALOG, as_of=AS_OF)
    assert len(result.events) == 2  # two visits that day; A-2 was exported twice
    assert result.duplicates[["row", "event_id", "kept_row"]].values.tolist() == [[2, "A-2", 1]]
    without = ingest([csv_source(path)], touchpoints=CATALOG, as_of=AS_OF)
    assert len(without.events) == 1 and len(without.duplicates) == 2  # indistinguishable without ids


def test_1_the_job_writes_the_duplicates_file_and_the_readme_says_so(tmp_path):
    path = write_csv(tmp_path / "sfa.csv", ["1,2025-03-01,Visit,", "1,2025-03-01,Visit,"])
    run_ingest(job_settings(tmp_path, [source_dict(path)]))
    dups = pd.read_csv(tmp_path / "out" / "duplicates.csv", dtype=str)
    assert dups[["source", "row", "line", "kind", "kept_source", "kept_row", "kept_line"]].values.tolist() == [
        ["sfa", "1", "3", "repeated_row", "sfa", "0", "2"]]
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert "Distinct amounts on one day are distinct events" in readme and "data/duplicates.csv" in readme


# --------------------------------------------------------------------------------------------
# 2. CSV outputs keep ids exactly


def test_2_csv_round_trips_keep_zero_padded_ids(tmp_path):
    path = write_csv(tmp_path / "sfa.csv", ["00042,2025-03-01 10:00,Visit,", "0042,2025-03-02 10:00,Visit,",
                                            "42,2025-03-03 10:00,Visit,"])
    settings = job_settings(tmp_path, [source_dict(path)])
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(
        update={"events": tmp_path / "out" / "events.csv", "features": tmp_path / "out" / "features.csv"})})
    run_ingest(settings)
    events = read_events(tmp_path / "out" / "events.csv", CATALOG)
    assert sorted(events["customer_id"].astype(str)) == ["00042", "0042", "42"]
    customers = pd.DataFrame({"customer_id": ["00042", "0042", "42"], "segment": ["SMB", "Mid", "Enterprise"],
                              "first_seen": pd.to_datetime(["2025-01-01"] * 3, utc=True)})
    write_table(customers, tmp_path / "out" / "customers.csv")
    back = read_table(tmp_path / "out" / "customers.csv")
    assert back["customer_id"].tolist() == ["00042", "0042", "42"]
    cutoffs = scoring_cutoffs(events, "2025-03-10", customers=back)
    assert sorted(cutoffs["customer_id"]) == ["00042", "0042", "42"]  # once each, not twice
    spec = FeatureSpec.from_settings(load_settings(overrides=["features.static_columns=[segment]"]))
    X = build_features(events, cutoffs, spec, customers=back)
    assert X["static__segment__attr"].notna().all()
    write_table(X, tmp_path / "out" / "features.csv")
    assert sorted(read_table(tmp_path / "out" / "features.csv")["customer_id"]) == ["00042", "0042", "42"]


# --------------------------------------------------------------------------------------------
# 4. placeholder values are rejects, from configurable lists


def test_4_placeholder_ids_and_dates_are_rejects(tmp_path):
    rows = ["NULL,2025-03-01,Visit,", "#N/A,2025-03-01,Visit,", "None,2025-03-01,Visit,", "nan,2025-03-01,Visit,",
            "N/A,2025-03-01,Visit,", "-,2025-03-01,Visit,", "7,1900-01-01,Visit,", "7,1970-01-01 00:00:00,Visit,",
            "TBD,2025-03-01,Visit,", "7,2025-03-01,Visit,"]
    path = write_csv(tmp_path / "sfa.csv", rows)
    result = run_ingest(job_settings(tmp_path, [source_dict(path)], max_reject_fraction=1))
    assert result.rejected_by_reason() == {"placeholder_customer_id": 6, "placeholder_ts": 2}
    assert sorted(result.events["customer_id"].astype(str)) == ["7", "TBD"]
    custom = run_ingest(job_settings(tmp_path, [source_dict(path)], max_reject_fraction=1,
                                     placeholder_ids=["tbd"], placeholder_dates=[]))
    assert custom.rejected_by_reason() == {"placeholder_customer_id": 1}
    tenure = (pd.Timestamp(AS_OF) - result.events["ts"].min()).days
    assert tenure < 400  # no 45,990-day tenures


# --------------------------------------------------------------------------------------------
# 5, 6. SQL sources only read; passwords never shown; the postgres:// hint


def tickets_db(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE tickets (customer TEXT, opened_at TEXT, category TEXT)")
        con.execute("INSERT INTO tickets VALUES ('1', '2025-03-01T00:00:00Z', 'Inquiry')")
    return path


def sql_source(url: str, query: str = "SELECT customer, opened_at, category FROM tickets") -> SourceSettings:
    return SourceSettings(name="support", kind="sql", url=url, query=query,
                          columns={"customer_id": "customer", "ts": "opened_at", "touchpoint": "category"},
                          touchpoints={"Inquiry": "inquiry"})


@pytest.mark.parametrize("query", ["DROP TABLE tickets", "SELECT 1; DROP TABLE tickets",
                                   "DELETE FROM tickets", "WITH x AS (DELETE FROM tickets RETURNING *) SELECT * FROM x",
                                   "SELECT * INTO copy FROM tickets", "PRAGMA writable_schema = 1"])
def test_5_a_sql_source_cannot_write(tmp_path, query):
    db = tickets_db(tmp_path / "support.db")
    with pytest.raises(IngestError, match=r"must be one read-only SELECT statement"):
        read_source(sql_source(f"sqlite:///{db}", query))
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM tickets").fetchone() == (1,)


def test_5_reads_run_on_a_read_only_connection(tmp_path):
    db = tickets_db(tmp_path / "support.db")
    assert check_read_only_query("SELECT replace(category, 'a', 'b') AS c, comment FROM t -- drop it later") is None
    assert check_read_only_query("SELECT 'DROP TABLE x' AS text FROM t") is None
    assert len(read_source(sql_source(f"sqlite:///{db}"))) == 1
    # a statement the check lets through still cannot write: the SQLite connection is query_only
    import sqlalchemy as sa

    from signals.io.sources import _read_only

    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        _read_only(connection, "sqlite")
        with pytest.raises(sa.exc.OperationalError, match="readonly|read-only|query_only"):
            connection.exec_driver_sql("INSERT INTO tickets VALUES ('2', 'x', 'y')")
    engine.dispose()


@pytest.mark.parametrize("password", ["p@ss/w0rd#1@db", "ss/w0rd%231%40db", "a:b@c?d", "simple-s3cret"])
def test_6_passwords_never_show_whatever_they_hold(monkeypatch, password):
    url = f"postgresql+psycopg://crm_admin:{password}@db.example:5432/crm"
    monkeypatch.setenv("SIGNALS_TEST_URL", url)
    source = SourceSettings(name="support", kind="sql", url_env="SIGNALS_TEST_URL", query="SELECT a, b, c FROM t",
                            columns={"customer_id": "a", "ts": "b", "touchpoint": "c"})
    with pytest.raises(IngestError) as err:
        read_source(source)
    message = str(err.value)
    pieces = [p for p in password.replace("@", "/").replace("#", "/").replace(":", "/").replace("?", "/").split("/")
              if len(p) >= 3]
    for piece in [password, *pieces]:
        assert piece not in message, (piece, message)
    assert "crm_admin:***@" in message or "percent-encode" in message
    assert mask_url(url) == "postgresql+psycopg://crm_admin:***@db.example:5432/crm"


def test_10_postgres_scheme_gets_the_right_hint():
    with pytest.raises(IngestError, match=r"write postgresql://"):
        read_source(sql_source("postgres://crm:secret@db.example/crm"))


# --------------------------------------------------------------------------------------------
# 7. interrupted or concurrent runs; full disks


def test_7_a_second_run_into_the_same_output_says_who_holds_it(tmp_path):
    path = write_csv(tmp_path / "sfa.csv", ["1,2025-03-01,Visit,"])
    settings = job_settings(tmp_path, [source_dict(path)])
    with (folder_lock(settings.paths.events, what="signals ingest (the first run)"),
          pytest.raises(OutputError, match=r"is being written by pid \d+ .*signals ingest \(the first run\)")):
        run_ingest(settings)
    run_ingest(settings)  # released: the next run goes through
    assert Path(settings.paths.events).is_file()


def test_7_a_full_disk_keeps_the_old_outputs_whole(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "sfa.csv", ["1,2025-03-01,Visit,"])
    settings = job_settings(tmp_path, [source_dict(path)])
    run_ingest(settings)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if not p.name.endswith(".lock")}
    write_csv(path, ["1,2025-03-01,Visit,", "2,2025-03-02,Visit,"])
    real = pd.DataFrame.to_parquet

    def disk_full(self, target, *args, **kwargs):
        real(self.head(1), target, *args, **kwargs)  # half a file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(OutputError, match="the disk is full; nothing was replaced"):
        run_ingest(settings)
    after = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if not p.name.endswith(".lock")}
    assert after == before  # the old events, rejects and duplicates, and no temporary file left


def test_7_an_interrupt_swallowed_inside_a_command_still_exits_130():
    import typer

    demo = typer.Typer(cls=SignalsGroup)

    @demo.command()
    def work() -> None:
        try:  # a library that catches KeyboardInterrupt and carries on
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)
        except KeyboardInterrupt:
            pass

    @demo.command()
    def other() -> None:  # a group needs two commands to keep its name
        pass

    result = runner.invoke(demo, ["work"])
    assert result.exit_code == 130
    assert "interrupted (Ctrl-C) during `signals work`: no output was changed" in result.output


# --------------------------------------------------------------------------------------------
# 8. ordinary mistakes are one line


def test_8_as_of_before_any_data_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    events = pd.DataFrame({"customer_id": ["1"], "ts": pd.Timestamp("2025-03-01", tz="UTC"),
                           "touchpoint": "call", "value": 0.0, "source": "sfa"})
    write_table(events, tmp_path / "data" / "events.parquet")
    result = runner.invoke(app, ["features", "--as-of", "2019-01-01"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: as_of 2019-01-01") and "before any data" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "data" / "features.parquet").exists()
    result = runner.invoke(app, ["features", "--as-of", "2025-02-30"])
    assert result.exit_code == 1 and "is not a date or time" in result.output


def test_8_an_impossible_config_date_is_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text("cutoffs:\n  end: 2025-02-30\n", encoding="utf-8")
    result = runner.invoke(app, ["features", "-c", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "cutoffs.end" in result.output


# --------------------------------------------------------------------------------------------
# 10. smaller ones


def test_10_a_wrong_encoding_that_still_decodes_fails_the_source(tmp_path):
    path = write_csv(tmp_path / "sfa.csv", ["1,2025-03-01,訪問,", "2,2025-03-01,受注,100"], encoding="cp932")
    settings = job_settings(tmp_path, [source_dict(path, encoding="latin-1")])
    result = runner.invoke(app, ["ingest", "-c", str(config_file(tmp_path, settings))])
    assert result.exit_code == 1
    assert "100% of 2 rows rejected (unknown_touchpoint 2)" in result.output
    assert "encoding 'latin-1'" in result.output and not Path(settings.paths.events).exists()
    ok = run_ingest(job_settings(tmp_path, [source_dict(path, encoding="cp932")]))
    assert len(ok.events) == 2


def test_10_a_semicolon_export_reads_with_its_delimiter(tmp_path):
    path = write_csv(tmp_path / "sfa.csv", ["1;2025-03-01;Visit;", "2;2025-03-01;Order;12.5"],
                     header="AccountId;ActivityDate;ActivityType;Amount")
    with pytest.raises(IngestError, match=r"looks ';'-separated: set ingest.sources\[name=sfa\].delimiter: ';'"):
        ingest([csv_source(path)], touchpoints=CATALOG, as_of=AS_OF)
    result = ingest([csv_source(path, delimiter=";")], touchpoints=CATALOG, as_of=AS_OF)
    assert result.events["value"].tolist() == [0.0, 12.5]
    tabs = write_csv(tmp_path / "tabs.tsv", ["1\t2025-03-01\tVisit\t"], header="AccountId\tActivityDate\tActivityType\tAmount")
    assert len(ingest([csv_source(tabs, delimiter="\t")], touchpoints=CATALOG, as_of=AS_OF).events) == 1


def test_10_a_day_month_swapped_ts_format_is_caught(tmp_path):
    rows = [f"1,{m:02d}/{d:02d}/2025,Visit," for m, d in [(1, 5), (2, 11), (3, 25), (4, 30), (5, 2)]]
    path = write_csv(tmp_path / "sfa.csv", rows)
    with pytest.raises(IngestError, match=r"ts_format '%d/%m/%Y' looks day/month swapped: 2 of 5 .*'03/25/2025'.*"
                                          r"Set ts_format: '%m/%d/%Y'"):
        ingest([csv_source(path, ts_format="%d/%m/%Y")], touchpoints=CATALOG, as_of=AS_OF)
    right = ingest([csv_source(path, ts_format="%m/%d/%Y")], touchpoints=CATALOG, as_of=AS_OF)
    assert len(right.events) == 5
    typo = write_csv(tmp_path / "typo.csv", ["1,25/03/2025,Visit,", "1,13/13/2025,Visit,"])
    result = ingest([csv_source(typo, ts_format="%d/%m/%Y")], touchpoints=CATALOG, as_of=AS_OF,
                    max_reject_fraction=1)
    assert result.rejected_by_reason() == {"unparseable_ts": 1}  # a real typo is a reject, not a config error


def test_10_huge_amounts_never_reach_the_features():
    raw = pd.DataFrame({"AccountId": ["1", "1"], "ActivityDate": ["2025-03-01T00:00:00Z"] * 2,
                        "ActivityType": ["Order", "Order"], "Amount": [1.7e308, 1.7e308]})  # a typed column
    source = SourceSettings(name="erp", kind="parquet", path=Path("erp.parquet"), columns=COLUMNS, touchpoints=NAMES)
    accepted, rejects = map_source(raw, source, touchpoints=CATALOG, as_of=AS_OF)
    assert accepted.empty and rejects["reason"].tolist() == ["value_out_of_range"] * 2
    events = pd.DataFrame({"customer_id": ["1", "1"], "ts": pd.Timestamp("2025-03-01", tz="UTC"),
                           "touchpoint": "purchase", "value": [1.7e308, 1.7e308]})
    with pytest.raises(DataError, match="value above 1e"):
        check_events(events)


REFUND_CATALOG = {**CATALOG, "refund": Touchpoint(channel="commerce", initiated_by="customer", prior_points=-5,
                                                  role="refund")}


def test_10_refunds_have_a_role_and_value_features_are_net_of_them(tmp_path):
    path = write_csv(tmp_path / "erp.csv", ["1,2025-03-01,Order,1000", "1,2025-03-10,Credit note,-300",
                                            "2,2025-03-02,Order,500", "2,2025-03-03,Order,-20"])
    names = {**NAMES, "Credit note": "refund"}
    result = ingest([csv_source(path, touchpoints=names)], touchpoints=REFUND_CATALOG, as_of=AS_OF,
                    max_reject_fraction=1)
    assert result.rejected_by_reason() == {"negative_value": 1}  # a negative order is still a mistake
    assert "map it to a catalog type with role refund" in result.rejects["detail"].iloc[0]
    refunds = result.events[result.events["touchpoint"] == "refund"]
    assert refunds["value"].tolist() == [300.0]  # stored as the amount given back
    catalog_names = ingest([csv_source(path, touchpoints=names)], touchpoints=list(REFUND_CATALOG), as_of=AS_OF,
                           max_reject_fraction=1)
    assert catalog_names.rejected_by_reason() == {"negative_value": 2}  # without roles, no refunds
    spec = FeatureSpec(catalog=REFUND_CATALOG, features=Settings().features)
    cutoffs = pd.DataFrame({"customer_id": ["1", "2"], "cutoff": pd.Timestamp("2025-04-01", tz="UTC")})
    X = build_features(result.events, cutoffs, spec)
    assert X["value_net__all__90d"].tolist() == [700.0, 500.0]
    assert X["value__refund__total"].tolist() == [300.0, 0.0]
    reference = reference_features(result.events, cutoffs, spec)
    pd.testing.assert_frame_equal(X[reference.columns], reference, check_dtype=False, atol=1e-9)
    assert "value_net__all__30d" not in build_features(result.events.query("touchpoint != 'refund'"), cutoffs,
                                                       FeatureSpec.from_settings(Settings())).columns


def test_10_rejects_keep_mapped_columns_and_lines_and_raw_columns_only_on_request(tmp_path):
    header = "AccountId,ActivityDate,ActivityType,Amount,Email,Note"
    path = tmp_path / "sfa.csv"
    path.write_text(header + "\n1,2025-03-01,Visit,,a@example.com,\"two\nlines\"\n\n"
                    "2,2025-03-01,Trade show,,b@example.com,x\n", encoding="utf-8")
    result = run_ingest(job_settings(tmp_path, [source_dict(path)], max_reject_fraction=1))
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv", dtype=str, keep_default_na=False)
    assert list(rejects.columns) == ["source", "row", "line", "reason", "detail", "customer_id", "ts", "touchpoint",
                                     "value", "event_id"]
    assert rejects[["row", "line", "customer_id", "touchpoint"]].values.tolist() == [["1", "5", "2", "Trade show"]]
    assert "example.com" not in (tmp_path / "out" / "rejects.csv").read_text(encoding="utf-8")
    assert len(result.events) == 1
    run_ingest(job_settings(tmp_path, [source_dict(path)], max_reject_fraction=1, rejects_raw_columns=True))
    raw = pd.read_csv(tmp_path / "out" / "rejects.csv", dtype=str)
    assert json.loads(raw["raw"].iloc[0])["Email"] == "b@example.com"


def test_10_strict_leaves_no_stale_events_for_the_next_step(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "sfa.csv", ["1,2025-03-01,Visit,"])
    settings = job_settings(tmp_path, [source_dict(path)])
    config = config_file(tmp_path, settings)
    assert runner.invoke(app, ["ingest", "-c", str(config)]).exit_code == 0
    write_csv(path, ["1,2025-03-01,Visit,", "2,2025-03-01,Trade show,"])
    result = runner.invoke(app, ["ingest", "-c", str(config), "--strict"])
    assert result.exit_code == 1 and "1 row(s) rejected" in result.output
    assert "events file of an earlier run" in result.output and not Path(settings.paths.events).exists()
    assert len(pd.read_csv(settings.paths.rejects)) == 1
    monkeypatch.chdir(tmp_path)
    nxt = runner.invoke(app, ["features", "-c", str(config)])
    assert nxt.exit_code == 1 and "no events at" in nxt.output


# --------------------------------------------------------------------------------------------
# the property, through the files the job writes

FILE_ROW = st.tuples(st.sampled_from(["1", "2", "00042", "#N/A", " "]), st.sampled_from(["01", "02", "30"]),
                     st.sampled_from(["Visit", "Order", "Trade show"]), st.sampled_from(["", "10", "-5", "x"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.lists(FILE_ROW, min_size=1, max_size=12), min_size=1, max_size=2))
def test_every_dropped_row_is_in_the_rejects_or_duplicates_file(tmp_path, parts):
    sources = []
    for i, rows in enumerate(parts):
        path = write_csv(tmp_path / f"s{i}.csv", [f"{c},2025-03-{d},{a},{v}" for c, d, a, v in rows])
        sources.append(source_dict(path, name=f"s{i}"))
    result = run_ingest(job_settings(tmp_path, sources, max_reject_fraction=1))
    out = tmp_path / "out"
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    dups = pd.read_csv(out / "duplicates.csv", dtype=str, keep_default_na=False)
    events = pd.read_parquet(out / "events.parquet")
    report = result.report
    assert (report["read"] == report["accepted"] + report["rejected"] + report["duplicates"]).all()
    assert len(events) + len(rejects) + len(dups) == sum(len(rows) for rows in parts)
    dropped = list(zip(rejects["source"], rejects["row"].astype(int), strict=True)) + \
        list(zip(dups["source"], dups["row"].astype(int), strict=True))
    assert len(set(dropped)) == len(dropped)  # each dropped row once, in one file
    for r in rejects.itertuples():  # the rejects name the real row and line and show its mapped cells
        customer, day, activity, value = parts[int(r.source[1:])][int(r.row)]
        assert int(r.line) == int(r.row) + 2
        assert (r.customer_id, r.touchpoint, r.value) == (customer, activity, value)
    for d in dups.itertuples():  # a duplicate repeats a row that was kept
        assert (d.kept_source, int(d.kept_row)) not in set(dropped)
        mine = parts[int(d.source[1:])][int(d.row)]
        kept = parts[int(d.kept_source[1:])][int(d.kept_row)]
        assert mine[0].strip() == kept[0].strip() and mine[1:3] == kept[1:3]
        assert float(mine[3] or 0) == float(kept[3] or 0)
