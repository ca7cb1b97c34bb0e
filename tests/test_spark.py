"""Spark in local mode: the same features, labels, training sets and scores as the pandas path.

One SparkSession (``local[2]``, 3 shuffle partitions, no UI) serves the module; every test of it
runs in one xdist worker (group ``spark``). The world is small (300 simulated customers over two
years, the demo config: Tokyo cutoffs, static customer attributes), plus customers absent from
the events, customers without events and one customer with 1M events. Skipped only when PySpark
is not installed (the ``spark`` extra); a missing Java runtime is an error, not a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed: install the spark extra (pip install -e '.[spark]')")

from pyspark.sql import functions as F  # noqa: E402

from signals import spark as ss  # noqa: E402
from signals.cutoffs import scoring_cutoffs, training_cutoffs  # noqa: E402
from signals.dataset import build_training_set  # noqa: E402
from signals.errors import DataError  # noqa: E402
from signals.features.matrix import build_features  # noqa: E402
from signals.features.spec import FeatureSpec  # noqa: E402
from signals.labels import label_cutoffs  # noqa: E402
from signals.settings import LightGBMSettings, load_settings  # noqa: E402
from signals.simulate import simulate_crm  # noqa: E402

pytestmark = pytest.mark.xdist_group("spark")

ATOL = 1e-9
GHOSTS = ["ghost-1", "ghost-2", "00042"]  # cutoffs for customers absent from the events


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("no Java runtime for the Spark tests: run `make system-deps` (Debian's default-jre-headless)")
    session = ss.spark_session("local[2]", shuffle_partitions=3, app_name="signals-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def world():
    settings = load_settings("configs/demo.yaml", ["simulate.n_customers=300", "simulate.start=2024-01-01"])
    sim = simulate_crm(settings)
    spec = FeatureSpec.from_settings(settings)
    cutoffs = training_cutoffs(sim.events, horizon_days=90, n_cutoffs=4, timezone=settings.timezone,
                               customers=sim.customers)
    ghosts = pd.DataFrame({"customer_id": np.repeat(GHOSTS, 2), "cutoff": np.tile(cutoffs["cutoff"].unique()[:2], 3)})
    cutoffs = pd.concat([cutoffs, ghosts], ignore_index=True)
    # customers in the customers table but without a single event
    silent = pd.DataFrame({"customer_id": ["silent-1", "silent-2"], "first_seen": pd.Timestamp("2024-02-01", tz="UTC"),
                           "industry": ["retail", None], "size_band": "1-9", "employees": [5, 7],
                           "segment": "SMB", "region": "Kanto"})
    customers = pd.concat([sim.customers.astype({"customer_id": str}), silent], ignore_index=True)
    cutoffs = pd.concat([cutoffs, pd.DataFrame({"customer_id": ["silent-1", "silent-2"],
                                                "cutoff": cutoffs["cutoff"].iloc[-1]})], ignore_index=True)
    return settings, spec, sim.events, cutoffs, customers


def to_spark(spark, frame: pd.DataFrame):
    """Categoricals as text; UTC instants as naive UTC (the session's time zone is UTC)."""
    frame = frame.copy()
    for column, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(str)
        elif isinstance(dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return spark.createDataFrame(frame)


@pytest.fixture(scope="module")
def spark_world(spark, world):
    _, _, events, cutoffs, customers = world
    return to_spark(spark, events), to_spark(spark, cutoffs), to_spark(spark, customers)


def types(schema) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def _text(series: pd.Series) -> list:
    return [None if pd.isna(v) else str(v) for v in series.astype(object)]


def assert_same(expected: pd.DataFrame, got: pd.DataFrame, *, keys=("customer_id", "cutoff")) -> dict:
    """Every row and column equal: text exactly, instants exactly, numbers to ATOL (NaN == NaN)."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    expected = expected.assign(customer_id=_text(expected["customer_id"]))
    expected = expected.sort_values(list(keys)).reset_index(drop=True)
    got = got.assign(cutoff=pd.to_datetime(got["cutoff"], utc=True)).sort_values(list(keys)).reset_index(drop=True)
    worst = {}
    for column in expected.columns:
        want, have = expected[column], got[column]
        if column == "cutoff":
            assert (want.dt.as_unit("ns").array.asi8 == have.dt.as_unit("ns").array.asi8).all()
        elif isinstance(want.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(want.dtype):
            assert _text(want) == _text(have), column
        else:
            a, b = want.to_numpy(np.float64), have.to_numpy(np.float64)
            assert np.array_equal(np.isnan(a), np.isnan(b)), column
            diff = float(np.max(np.abs(a - b), initial=0.0, where=~np.isnan(a)))
            assert diff <= ATOL, (column, diff)
            worst[column] = diff
    return worst


def test_features_equal_pandas_for_every_row_and_column(spark, world, spark_world):
    settings, spec, events, cutoffs, customers = world
    expected = build_features(events, cutoffs, spec, customers=customers)
    sdf = ss.build_features_spark(spark_world[0], spark_world[1], spec, customers=spark_world[2])
    assert types(sdf.schema) == types(ss.schema_of(expected))  # same columns and types, known before running
    assert types(sdf.schema) == types(ss.feature_schema(spec, spark_world[2].schema))
    got = sdf.toPandas()
    worst = assert_same(expected, got)
    print(f"\nfeatures: {len(got)} rows x {len(got.columns) - 2} columns equal; max |spark - pandas| = "
          f"{max(worst.values()):.3g} over {len(worst)} numeric columns")
    by_id = got.set_index("customer_id")
    assert (by_id.loc[GHOSTS, "freq__all__365d"] == 0).all()           # absent from the events
    assert by_id.loc[GHOSTS, "recency__all__days"].isna().all()
    assert by_id.loc[GHOSTS, "static__segment__attr"].isna().all()     # and from the customers table
    assert (by_id.loc[["silent-1", "silent-2"], "freq__all__365d"] == 0).all()
    assert list(by_id.loc[["silent-1", "silent-2"], "static__segment__attr"]) == ["SMB", "SMB"]


def test_bucket_count_does_not_change_a_value(spark, world, spark_world):
    _, spec, events, cutoffs, customers = world
    expected = build_features(events, cutoffs, spec, customers=customers)
    got = ss.build_features_spark(spark_world[0], spark_world[1], spec, customers=spark_world[2], buckets=1,
                                  validate=False).toPandas()
    assert_same(expected, got)


def test_buckets_with_events_but_no_cutoffs_give_no_rows(spark, world, spark_world):
    _, spec, events, cutoffs, customers = world
    few = cutoffs[cutoffs["customer_id"].isin(["ghost-1", str(events["customer_id"].iloc[0])])]
    expected = build_features(events, few, spec, customers=customers)
    got = ss.build_features_spark(spark_world[0], to_spark(spark, few), spec, customers=spark_world[2], buckets=16,
                                  validate=False).toPandas()
    assert_same(expected, got)


@pytest.mark.parametrize("task", ["churn", "purchase"])
def test_labels_equal_pandas(spark, world, spark_world, task):
    settings, _, events, cutoffs, _ = world
    expected = label_cutoffs(events, cutoffs, task, labels=settings.labels, catalog=settings.catalog)
    sdf = ss.label_cutoffs_spark(spark_world[0], spark_world[1], task, labels=settings.labels, catalog=settings.catalog)
    got = sdf.toPandas()
    assert_same(expected[["customer_id", "cutoff", "eligible", "label"]], got)
    assert got["eligible"].sum() > 0 and got["label"].sum() > 0
    print(f"\n{task} labels: {len(got)} rows equal ({int(got['eligible'].sum())} eligible, "
          f"{int(got['label'].sum())} positive)")


def test_training_set_equals_pandas(spark, world, spark_world):
    settings, spec, events, cutoffs, customers = world
    expected = build_training_set(events, cutoffs, spec, task="purchase", labels=settings.labels, customers=customers)
    sdf = ss.build_training_set_spark(*spark_world[:2], spec, task="purchase", labels=settings.labels,
                                      customers=spark_world[2])
    assert types(sdf.schema) == types(ss.schema_of(expected))
    assert_same(expected, sdf.toPandas())


def test_cutoffs_on_the_cluster_equal_pandas(spark, world, spark_world):
    settings, _, events, _, customers = world
    expected = training_cutoffs(events, horizon_days=60, n_cutoffs=5, frequency="monthly", timezone=settings.timezone,
                                customers=customers, min_history_days=30)
    got, instants = ss.training_cutoffs_spark(spark_world[0], horizon_days=60, n_cutoffs=5, frequency="monthly",
                                              timezone=settings.timezone, customers=spark_world[2], min_history_days=30)
    assert list(instants) == sorted(expected["cutoff"].unique())
    assert_same(expected, got.toPandas())
    expected = scoring_cutoffs(events, "2025-06-01", timezone=settings.timezone, customers=customers)
    got, _ = ss.scoring_cutoffs_spark(spark_world[0], "2025-06-01", timezone=settings.timezone, customers=spark_world[2])
    assert_same(expected, got.toPandas())


def test_a_customer_with_a_million_events_in_one_partition(spark, world):
    """1M events of one customer (a touch a minute for ~2 years), built on the cluster from
    ``spark.range``, in one bucket with other customers; equal to pandas on the same events."""
    settings, spec, events, _, _ = world
    n, start_s = 1_000_000, int(pd.Timestamp("2024-01-01", tz="UTC").timestamp())
    types = list(spec.touchpoints)
    i = np.arange(n)
    whale = pd.DataFrame({"customer_id": "whale", "ts": pd.to_datetime(start_s + 60 * i, unit="s", utc=True),
                          "touchpoint": np.asarray(types, dtype=object)[i % len(types)],
                          "value": np.where(np.asarray(types)[i % len(types)] == "purchase", 100.0, 0.0)})
    others = events[events["customer_id"].isin(events["customer_id"].unique()[:20])]
    instants = pd.date_range("2024-03-01", "2025-11-01", freq="4MS", tz="UTC")
    cutoffs = pd.DataFrame({"customer_id": np.repeat(["whale", *others["customer_id"].unique()[:5].astype(str)],
                                                     len(instants)),
                            "cutoff": np.tile(instants, 6)})
    spec = spec.model_copy(update={"families": tuple(f for f in spec.families if f != "static"),
                                   "features": spec.features.model_copy(update={"static_columns": ()})})
    expected = build_features(pd.concat([whale, others.astype({"customer_id": str})], ignore_index=True), cutoffs, spec)

    ids = spark.range(n)
    whale_sdf = ids.select(
        F.lit("whale").alias("customer_id"),
        F.timestamp_seconds(F.lit(start_s) + F.col("id") * 60).alias("ts"),
        F.element_at(F.array(*[F.lit(t) for t in types]), (F.col("id") % len(types) + 1).cast("int")).alias("touchpoint"),
    ).withColumn("value", F.when(F.col("touchpoint") == "purchase", 100.0).otherwise(0.0))
    sdf_events = whale_sdf.unionByName(to_spark(spark, others.drop(columns="source")))
    got = ss.build_features_spark(sdf_events, to_spark(spark, cutoffs), spec, buckets=2).toPandas()
    assert_same(expected, got)
    assert got.loc[got["customer_id"] == "whale", "freq__all__365d"].max() == 365 * 24 * 60


def _bundle(tmp_path, world):
    """A small model bundle in the layout of ``signals train`` (model/ + spec.json)."""
    from signals.modeling.estimators import SignalModel

    settings, spec, events, cutoffs, customers = world
    points = {name: tp.prior_points for name, tp in settings.catalog.items()}
    spec = spec.with_learned_points(points, 30)
    data = build_training_set(events, cutoffs, spec, task="purchase", labels=settings.labels, customers=customers)
    features = [c for c in data.columns if c.count("__") == 2]
    cut = sorted(data["cutoff"].unique())[-1]
    train, valid = data[data["cutoff"] < cut], data[data["cutoff"] == cut]
    model = SignalModel(LightGBMSettings(n_estimators=40, min_child_samples=10, num_threads=1), calibration="sigmoid")
    model.fit(train[features], train["label"], valid[features], valid["label"])
    model.save(tmp_path / "purchase" / "model")
    (tmp_path / "purchase" / "spec.json").write_text(spec.to_json(), encoding="utf-8")
    return tmp_path / "purchase", model, spec


def test_scores_equal_pandas(spark, world, spark_world, tmp_path):
    _, _, events, cutoffs, customers = world
    bundle, model, spec = _bundle(tmp_path, world)
    X = build_features(events, cutoffs, spec, customers=customers)
    expected = pd.DataFrame({"customer_id": X["customer_id"], "cutoff": X["cutoff"], "score": model.probability(X)})
    got = ss.score_spark(*spark_world[:2], bundle, customers=spark_world[2]).toPandas()
    worst = assert_same(expected, got)
    print(f"\nscores: {len(got)} rows equal; max |spark - pandas| = {worst['score']:.3g}")
    assert got["score"].between(0, 1).all() and got["score"].std() > 0


def test_bad_input_is_a_clear_error_before_any_group_runs(spark, world, spark_world):
    _, spec, events, cutoffs, _ = world
    bad_events = spark_world[0].withColumn(
        "touchpoint", F.when(F.col("touchpoint") == "webinar", F.lit("webinarr")).otherwise(F.col("touchpoint")))
    with pytest.raises(DataError, match=r"not in the catalog \(webinarr"):
        ss.build_features_spark(bad_events, spark_world[1], spec, customers=spark_world[2])
    half_second = spark_world[1].withColumn("cutoff", F.col("cutoff") + F.expr("INTERVAL 500 MILLISECONDS"))
    with pytest.raises(DataError, match="whole seconds"):
        ss.build_features_spark(spark_world[0], half_second, spec, customers=spark_world[2])
    with pytest.raises(DataError, match="duplicate"):
        ss.build_features_spark(spark_world[0], spark_world[1].unionByName(spark_world[1].limit(1)), spec,
                                customers=spark_world[2])
    with pytest.raises(DataError, match="customers table"):
        ss.build_features_spark(spark_world[0], spark_world[1], spec)
    with pytest.raises(DataError, match="must be a timestamp"):
        ss.build_features_spark(spark_world[0].withColumn("ts", F.col("ts").cast("string")), spark_world[1], spec,
                                customers=spark_world[2])


@pytest.mark.slow
def test_cli_features_engine_spark_equals_the_pandas_engine(spark, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from signals.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    small = ["-c", str(Path(__file__).parents[1] / "configs" / "demo.yaml"),
             "--set", "simulate.n_customers=150", "--set", "simulate.start=2024-06-01", "--set", "cutoffs.n_training=3"]
    assert runner.invoke(app, ["simulate", *small, "--no-messy", "--no-progress"]).exit_code == 0
    for engine, out in (("pandas", "data/pandas.parquet"), ("spark", "data/spark.parquet")):
        result = runner.invoke(app, ["features", *small, "--engine", engine, "--out", out])
        assert result.exit_code == 0, result.output
        assert "features, 3 cutoff(s)" in result.output
    expected = pd.read_parquet(tmp_path / "data" / "pandas.parquet")
    got = pd.read_parquet(tmp_path / "data" / "spark.parquet")
    assert isinstance(got["cutoff"].dtype, pd.DatetimeTZDtype)  # UTC instants, as the pandas engine writes
    assert_same(expected, got)
    result = runner.invoke(app, ["features", *small, "--engine", "spark", "--as-of", "2025-12-01", "--out", "data/today.parquet"])
    assert result.exit_code == 0, result.output
    today = pd.read_parquet(tmp_path / "data" / "today.parquet")
    assert today["customer_id"].is_unique and (today["cutoff"] == pd.Timestamp("2025-11-30 15:00", tz="UTC")).all()


# ---- scoring: the customer_signals rows on Spark --------------------------------------------------
AS_OF = "2025-11-01"
COMPARED = ["customer_id", "as_of", "task", "model_name", "model_version", "run_id", "score", "rank", "band",
            "temperature", "temperature_prior", "temperature_change_14d", "temperature_change_30d", "alarm",
            "reason_1", "reason_2", "reason_3", "segment", "journey_stage", "usual_temperature", "temperature_surge"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small world on files (events and customers Parquet) with both tasks' bundles, as
    ``signals simulate`` and ``signals train`` write them; the sink writes Parquet folders."""
    from signals.jobs.simulate import run_simulate
    from signals.jobs.train import run_train

    root = tmp_path_factory.mktemp("spark-score")
    settings = load_settings("configs/demo.yaml", [
        "simulate.n_customers=500", "simulate.start=2024-01-01", "model.bootstrap_rounds=10",
        "model.backtest_origins=1", "model.min_positives=1",  # a small world: one origin, few churners
        "model.points_reference_rows=300", "model.lightgbm.num_threads=1",
        f"paths.events={root / 'events.parquet'}", f"paths.customers={root / 'customers.parquet'}",
        f"paths.truth={root / 'truth.json'}", f"paths.models_dir={root / 'models'}",
        "sink.kind=files", f"sink.folder={root / 'signals'}", "sink.url_env=null",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}"])
    run_simulate(settings, messy=False)
    for task in ("purchase", "churn"):
        run_train(settings, task=task)
    return settings, root


@pytest.fixture(scope="module")
def scored(spark, trained):
    """The pandas scoring job's rows, and ``signals score --engine spark`` on the same world, models
    and as-of date (its Parquet batches, the sink's kind ``files``, read back as one Spark DataFrame)."""
    from typer.testing import CliRunner

    from signals.cli import app
    from signals.jobs.score import run_score

    settings, root = trained
    expected = run_score(settings, as_of=AS_OF, write=False, show_progress=False)
    result = CliRunner().invoke(app, [  # tracked, as by default: the MLflow run of a Spark scoring run
        "score", "--engine", "spark", "--as-of", AS_OF, "-c", str(Path(__file__).parents[1] / "configs" / "demo.yaml"),
        "--set", f"paths.events={settings.paths.events}", "--set", f"paths.customers={settings.paths.customers}",
        "--set", f"paths.models_dir={settings.paths.models_dir}", "--set", "sink.kind=files",
        "--set", f"sink.folder={settings.sink.folder}", "--set", f"mlflow.tracking_uri={settings.mlflow.tracking_uri}"])
    assert result.exit_code == 0, result.output
    batches = sorted(str(p) for p in (Path(settings.sink.folder) / "customer_signals").glob("as_of=*/*.parquet"))
    return expected, result.output, spark.read.parquet(*batches)


def _signals_equal(expected: pd.DataFrame, got: pd.DataFrame, columns=COMPARED) -> dict:
    """Every row and column: text and ranks exactly, instants exactly, numbers to ATOL (NaN == NaN)."""
    keys = ["task", "customer_id"]
    expected = expected.assign(customer_id=_text(expected["customer_id"])).sort_values(keys, ignore_index=True)
    got = got.sort_values(keys, ignore_index=True)
    assert len(got) == len(expected)
    worst = {}
    for column in [c for c in columns if c in got.columns]:
        want, have = expected[column], got[column]
        if column == "as_of":
            assert (want.dt.as_unit("ns").array.asi8 == pd.to_datetime(have, utc=True).dt.as_unit("ns").array.asi8).all()
        elif column == "rank":
            assert (want.to_numpy(np.int64) == have.to_numpy(np.int64)).all()
        elif pd.api.types.is_float_dtype(want.dtype):
            a, b = want.to_numpy(np.float64), have.to_numpy(np.float64)
            assert np.array_equal(np.isnan(a), np.isnan(b)), column
            worst[column] = float(np.max(np.abs(a - b), initial=0.0, where=~np.isnan(a)))
            assert worst[column] <= ATOL, (column, worst[column])
        else:
            assert _text(want) == _text(have), column
    return worst


def test_cli_score_engine_spark_equals_the_pandas_job(scored, trained):
    """Every customer_signals row and column: probability, rank (over all customers of a task),
    band, temperatures, alarm, 3 reasons, segment and journey stage; written where and as the
    pandas file sink writes its batches, and read back by it."""
    from signals.io.sinks import open_sink
    from signals.jobs.spark import summarize_spark

    settings, _ = trained
    expected, output, frame = scored
    signals = expected.signals
    sink = open_sink(settings.sink)
    got = sink.read()
    worst = _signals_equal(signals, got)
    assert got["scored_at"].nunique() == 1 and got["as_of"].eq(expected.as_of).all()
    folders = list(sink.root.glob("as_of=*/*.parquet"))
    assert len(folders) == 2 and all(p.is_dir() for p in folders)  # one Parquet folder per batch (task)
    summary = summarize_spark(frame)
    assert summary.keys() == expected.summary.keys()
    for task, info in expected.summary.items():  # counts exact, the percentiles approximate (percentile_approx)
        mine = summary[task]
        assert (mine["rows"], mine["alarms"], mine["bands"], mine["model"]) == \
               (info["rows"], info["alarms"], info["bands"], info["model"])
        assert mine["score_mean"] == pytest.approx(info["score_mean"], abs=1e-12)
        assert f"{info['alarms']:,}" in output
    assert set(signals["task"]) == {"purchase", "churn"} and signals["alarm"].notna().sum() > 0
    assert signals["reason_1"].notna().mean() > 0.5 and signals["segment"].notna().all()
    assert "highest scores and why" in output and f"{len(signals):,} rows ->" in output and "MLflow run" in output
    print(f"\nscoring: {len(got)} customer_signals rows equal ({dict(signals['task'].value_counts())}, "
          f"{int(signals['alarm'].notna().sum())} alarms); ranks, bands, alarms, reasons, segments identical; "
          f"max |spark - pandas| = {max(worst.values()):.3g} (score {worst['score']:.3g})")


def test_signals_written_again_replace_their_batch(spark, scored, tmp_path):
    """JDBC into SQLite: a second write of the same batch replaces it; other as-of dates stay; the
    table equals what the pandas sink writes for the same rows; the staging table is gone."""
    from sqlalchemy import inspect

    from signals.io.sinks import SqlSink
    from signals.io.spark_io import write_signals_spark
    from signals.settings import SinkSettings

    expected, _, frame = scored
    sink = SinkSettings(kind="sqlite", url=f"sqlite:///{tmp_path / 'crm.db'}", url_env=None)
    older = expected.signals.assign(as_of=pd.Timestamp("2025-10-01", tz="UTC"))
    SqlSink(sink.url).write(older, progress=False)  # history from an earlier pandas run
    for _ in range(2):
        result = write_signals_spark(frame, sink)
        assert result.rows == len(expected.signals) and len(result.batches) == 2
    table = SqlSink(sink.url).read()
    assert len(table) == 2 * len(expected.signals)
    now = table[table["as_of"] == expected.as_of]
    _signals_equal(expected.signals, now)
    pandas_db = SqlSink(f"sqlite:///{tmp_path / 'pandas.db'}")
    pandas_db.write(expected.signals, progress=False)
    keys = ["task", "customer_id"]
    pd.testing.assert_frame_equal(now.drop(columns="scored_at").sort_values(keys, ignore_index=True),
                                  pandas_db.read().drop(columns="scored_at").sort_values(keys, ignore_index=True))
    assert inspect(SqlSink(sink.url).engine()).get_table_names() == ["customer_signals"]


def test_global_ranks_on_the_cluster_equal_rank_descending(spark):
    from signals.modeling.scoring import rank_descending

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"task": np.repeat(["a", "b"], 300), "customer_id": [f"c{i:04d}" for i in rng.permutation(600)],
                          "score": rng.choice([0.1, 0.2, 0.5, 0.7, 0.9], 600) + rng.choice([0, 1e-12], 600)})
    got = ss.rank_descending_spark(spark.createDataFrame(frame), bins=4).toPandas()
    for task, part in frame.groupby("task"):
        part = part.sort_values("customer_id")
        want = dict(zip(part["customer_id"], rank_descending(part["score"].to_numpy()), strict=True))
        mine = got[got["task"] == task]
        assert dict(zip(mine["customer_id"], mine["rank"], strict=True)) == want


@pytest.mark.slow
def test_jdbc_write_into_postgresql(spark, scored):
    from signals.io.pgserver import PostgresUnavailable, temporary_postgres
    from signals.io.sinks import SqlSink
    from signals.io.spark_io import write_signals_spark
    from signals.settings import SinkSettings

    if "/usr/share/java/postgresql.jar" not in ss.jdbc_jars():
        pytest.skip("no PostgreSQL JDBC driver: make system-deps installs Debian's libpostgresql-jdbc-java")
    expected, _, frame = scored
    sink = SinkSettings(kind="postgresql", url="postgresql://signals@127.0.0.1/crm", url_env="CRM_URL",
                        table="public.customer_signals")
    try:
        with temporary_postgres(password="p@ss/w0rd#1") as url:
            for _ in range(2):
                result = write_signals_spark(frame, sink, environ={"CRM_URL": url})
            table = SqlSink(url, "public.customer_signals").read()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    assert "p@ss" not in result.destination and result.rows == len(expected.signals)
    _signals_equal(expected.signals, table)
