"""Write-back of customer_signals: SQLite and a real PostgreSQL server, plus Parquet / CSV files.

Every backend: a batch, the same batch again (replaced, no duplicate), a failure part-way (no
partial rows: the old batch stays whole), a second as-of date (history kept), hostile ids stored
exactly. Credentials only from the environment, never shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import signals.io.sinks as sinks
from signals.errors import ConfigError, OutputError
from signals.io.sinks import FileSink, SqlSink, example_signals, open_sink, resolve_url
from signals.settings import SinkSettings, load_settings

HOSTILE = [
    "a'b", 'say "hi"', "x; DROP TABLE customer_signals; --", "Robert'); DELETE FROM customer_signals;--",
    "顧客-０４２", "Ünïcødé ß", "emoji 🚀", "00042", "NULL", "", "back\\slash", "tab\there", "new\nline",
    " padded ", "%s", "?", ":name", "$1",
][:]
HOSTILE = [h for h in HOSTILE if h]  # an empty id is not an id (check_signals refuses it)


def batch(ids, *, as_of="2026-01-01", version="1", task="purchase", score_shift=0.0) -> pd.DataFrame:
    frame = example_signals(ids, as_of=as_of, task=task, version=version)
    frame["score"] = np.clip(frame["score"] - score_shift, 0, 1)
    return frame


def ids(n: int, prefix: str = "C") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.xdist_group("postgresql"))])
def sql_sink(request, tmp_path):
    if request.param == "sqlite":
        sink = SqlSink(f"sqlite:///{tmp_path / 'crm.db'}", chunk_rows=7)
        yield sink
        sink.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    table = f"signals_{request.node.name.split('[')[0][-30:]}"
    sink = SqlSink(url, table, chunk_rows=7)
    yield sink
    with sink.engine().begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
    sink.dispose()


def stored(sink) -> pd.DataFrame:
    return sink.read().sort_values(["as_of", "task", "model_version", "customer_id"]).reset_index(drop=True)


def test_batch_rerun_replaces_and_never_duplicates(sql_sink):
    first = batch(ids(40))
    result = sql_sink.write(first, progress=False)
    assert result.rows == 40 and len(result.batches) == 1
    again = batch(ids(40), score_shift=0.05)
    sql_sink.write(again, progress=False)
    table = stored(sql_sink)
    assert len(table) == 40 and table["customer_id"].is_unique
    np.testing.assert_allclose(table.set_index("customer_id")["score"].sort_index(),
                               again.set_index("customer_id")["score"].sort_index(), rtol=0, atol=1e-15)
    # the batch is replaced whole: customers no longer scored leave it
    sql_sink.write(batch(ids(25)), progress=False)
    assert len(stored(sql_sink)) == 25


def test_a_failure_mid_write_leaves_the_old_batch_whole(sql_sink, monkeypatch):
    old = batch(ids(40))
    sql_sink.write(old, progress=False)
    calls = {"n": 0}
    real = {name: getattr(sinks, name) for name in ("_send_sqlite", "_send_postgresql")}

    def failing(name):
        def send(*args):
            calls["n"] += 1
            if calls["n"] == 3:  # two chunks (14 rows) already sent in this transaction
                raise OSError("connection reset by peer (injected)")
            return real[name](*args)
        return send

    for name in real:
        monkeypatch.setattr(sinks, name, failing(name))
    new = batch(ids(60), score_shift=0.3)
    new2 = batch(ids(60, "N"), as_of="2026-02-01")
    with pytest.raises(OutputError, match="rolled back"):
        sql_sink.write(pd.concat([new, new2]), progress=False)
    assert calls["n"] == 3
    table = stored(sql_sink)
    assert len(table) == 40
    pd.testing.assert_series_equal(table["score"], old.sort_values("customer_id")["score"].reset_index(drop=True))


def test_a_second_as_of_keeps_the_history_and_versions_are_separate(sql_sink):
    sql_sink.write(batch(ids(10), as_of="2026-01-01"), progress=False)
    sql_sink.write(batch(ids(12), as_of="2026-02-01"), progress=False)
    sql_sink.write(batch(ids(12), as_of="2026-02-01", version="2"), progress=False)
    sql_sink.write(batch(ids(12), as_of="2026-02-01", task="churn"), progress=False)
    table = stored(sql_sink)
    counts = table.groupby([table["as_of"].dt.strftime("%Y-%m-%d"), "task", "model_version"]).size().to_dict()
    assert counts == {("2026-01-01", "purchase", "1"): 10, ("2026-02-01", "purchase", "1"): 12,
                      ("2026-02-01", "purchase", "2"): 12, ("2026-02-01", "churn", "1"): 12}
    assert len(sql_sink.read(as_of=pd.Timestamp("2026-02-01", tz="UTC"), task="purchase")) == 24


def test_hostile_ids_are_data_and_stored_exactly(sql_sink):
    frame = batch(HOSTILE)
    frame["reason_1"] = [f"reason for {h}" for h in HOSTILE]
    sql_sink.write(frame, progress=False)
    sql_sink.write(frame, progress=False)
    table = sql_sink.read()
    assert sorted(table["customer_id"]) == sorted(HOSTILE)
    assert dict(zip(table["customer_id"], table["reason_1"], strict=True)) == {h: f"reason for {h}" for h in HOSTILE}
    with sql_sink.engine().connect() as conn:  # the table survived every id
        assert conn.execute(sa.select(sa.func.count()).select_from(sql_sink.table)).scalar() == len(HOSTILE)


def test_values_round_trip(sql_sink):
    frame = batch(ids(9))
    frame.loc[2, "alarm"] = "kizashi"
    frame.loc[3, "temperature"] = np.nan
    frame["run_id"] = "abc123"
    sql_sink.write(frame, progress=False)
    table = stored(sql_sink)
    assert table.loc[2, "alarm"] == "kizashi" and table["alarm"].isna().sum() == 8
    assert np.isnan(table.loc[3, "temperature"]) and table.loc[4, "temperature"] == 10.0
    assert table["as_of"].iloc[0] == pd.Timestamp("2026-01-01", tz="UTC")
    assert table["scored_at"].iloc[0] == pd.Timestamp("2026-01-01 06:00", tz="UTC")
    assert list(table["rank"]) == list(range(1, 10)) and set(table["run_id"]) == {"abc123"}
    assert table["reason_2"].isna().all()


@pytest.mark.xdist_group("postgresql")
def test_postgresql_refuses_a_nul_byte_mid_copy_and_rolls_back(postgres_url):
    sink = SqlSink(postgres_url, "signals_nul", chunk_rows=10)
    try:
        sink.write(batch(ids(30)), progress=False)
        bad = batch(ids(30), score_shift=0.2)
        bad.loc[25, "reason_1"] = "bad\x00byte"  # PostgreSQL text cannot hold NUL: the third chunk fails
        with pytest.raises(OutputError, match="rolled back"):
            sink.write(bad, progress=False)
        table = stored(sink)
        assert len(table) == 30 and table["score"].max() == pytest.approx(0.9)
    finally:
        with sink.engine().begin() as conn:
            conn.exec_driver_sql('DROP TABLE IF EXISTS "signals_nul"')
        sink.dispose()


@pytest.mark.xdist_group("postgresql")
def test_postgresql_credentials_come_from_the_environment_and_are_never_shown(postgres_url):
    password = sa.engine.make_url(postgres_url).password
    settings = load_settings(overrides=["sink.kind=postgresql"])
    url = resolve_url(settings.sink, environ={"SIGNALS_CRM_URL": postgres_url})
    assert url.password == password and url.drivername == "postgresql+psycopg"
    sink = open_sink(settings.sink, environ={"SIGNALS_CRM_URL": postgres_url})
    assert password not in sink.destination and "***" in sink.destination
    wrong = sa.engine.make_url(postgres_url).set(password="not-the-password")
    with pytest.raises(OutputError) as err:
        SqlSink(wrong).write(batch(ids(3)), progress=False)
    assert "not-the-password" not in str(err.value) and password not in str(err.value)
    assert "password authentication failed" in str(err.value)


def test_credentials_never_in_the_config():
    with pytest.raises(ConfigError, match="holds a password"):
        load_settings(overrides=["sink.url=postgresql://crm:hunter2@db.example/crm"])
    with pytest.raises(ConfigError, match=r"sink\.kind is postgresql but sink\.url is a sqlite URL.*SIGNALS_CRM_URL"):
        resolve_url(load_settings(overrides=["sink.kind=postgresql"]).sink, environ={})
    env = {"SIGNALS_CRM_URL": "sqlite:////tmp/other.db"}
    assert resolve_url(SinkSettings(), environ=env).database == "/tmp/other.db"
    assert resolve_url(SinkSettings(url_env=None), environ=env).database == "crm.db"


def test_contract_errors_are_clear(tmp_path):
    sink = SqlSink(f"sqlite:///{tmp_path / 'crm.db'}")
    with pytest.raises(OutputError, match="missing column"):
        sink.write(batch(ids(3)).drop(columns="band"), progress=False)
    bad = batch(ids(3))
    bad.loc[1, "customer_id"] = None
    with pytest.raises(OutputError, match=r"customer_signals\.customer_id: 1 row\(s\) are empty"):
        sink.write(bad, progress=False)
    with pytest.raises(OutputError, match="repeat a key"):
        sink.write(batch(["a", "b", "a"]), progress=False)


def test_an_older_table_gets_the_new_optional_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = sa.create_engine(url)
    old = sinks.signals_table()
    old._columns.remove(old.c.reason_3)  # a table created before reason_3 existed
    with engine.begin() as conn:
        old.create(conn)
    engine.dispose()
    sink = SqlSink(url)
    sink.write(batch(ids(3)), progress=False)
    assert len(sink.read()) == 3 and "reason_3" in sink.read().columns


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_file_sink_batches_are_whole_replaced_and_kept(tmp_path, fmt):
    sink = FileSink(tmp_path / "out", format=fmt)
    frame = batch(HOSTILE)
    sink.write(frame, progress=False)
    sink.write(frame, progress=False)
    sink.write(batch(ids(5), as_of="2026-02-01"), progress=False)
    table = sink.read()
    assert len(table) == len(HOSTILE) + 5
    assert sorted(sink.read(as_of=pd.Timestamp("2026-01-01", tz="UTC"))["customer_id"]) == sorted(HOSTILE)
    files = sorted(p.relative_to(sink.root).as_posix() for p in sink.root.rglob(f"*.{fmt}"))
    assert files == [f"as_of=20260101T000000Z/purchase__signals-purchase__1.{fmt}",
                     f"as_of=20260201T000000Z/purchase__signals-purchase__1.{fmt}"]
    assert table["reason_2"].isna().all() and table["customer_id"].map(type).eq(str).all()
