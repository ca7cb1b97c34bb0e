"""The CDNOW real-data check (benchmarks/cdnow.py, configs/cdnow.yaml).

What could break silently: training cutoffs whose label windows reach past the cutoff the model
is fitted at, events at or after that cutoff leaking into a feature, a label, BG/NBD's parameters
or the rolled-out path, holdout events reaching the validation protocol (choices must be made
without them), holdout labels that do not mean what they say, and the report losing a model or a
metric. The full run is marked slow; everything else runs on real CDNOW data in seconds.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from benchmarks import cdnow as bench

from signals.cutoffs import first_seen, scoring_cutoffs
from signals.io.cdnow import cdnow_available, read_cdnow
from signals.modeling.bgnbd import count_purchase_days
from signals.modeling.metrics import paired_auc_difference
from signals.schemas import CUSTOMER_ID, CUTOFF, TS
from signals.settings import load_settings

pytestmark = pytest.mark.skipif(not cdnow_available(), reason="CDNOW needs the optional extra: pip install 'signals[cdnow]'")

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
CAL_END = pd.Timestamp("1997-10-01", tz="UTC")
HOLDOUT_END = pd.Timestamp("1998-07-01", tz="UTC")
MODELS = {"model", "lightgbm_direct", "bgnbd_p_alive", "rfm", "rfm_feature_quintiles", "logistic_regression",
          "prior_temperature", "falling_frequency"}
RANK_METRICS = {"roc_auc", "pr_auc", "top_decile_lift"}
FAST = ["model.lightgbm.num_threads=1", "model.lightgbm.n_estimators=60"]


@pytest.fixture(scope="module")
def settings():
    return load_settings(CONFIG, FAST)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return read_cdnow(quantities=True)


@pytest.fixture(scope="module")
def small(events) -> pd.DataFrame:
    """A random 600 customers: enough for every piece, fast to build."""
    return bench._subsample(events, 600, seed=0)


def _with_noise_from(events: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """``events`` plus purchases of every customer from ``start`` on, one exactly at ``start``."""
    ids = events[CUSTOMER_ID].astype(str).unique()
    when = [start, start + pd.Timedelta(days=3), start + pd.Timedelta(days=40), HOLDOUT_END - pd.Timedelta(days=1)]
    extra = pd.DataFrame({
        CUSTOMER_ID: np.repeat(ids, len(when)),
        TS: pd.DatetimeIndex(when * len(ids)),
        "touchpoint": "purchase",
        "value": 1000.0,
        "source": "test",
        bench.QUANTITY: 50,
    })
    out = pd.concat([events.astype({CUSTOMER_ID: str, "touchpoint": str, "source": str}), extra], ignore_index=True)
    return out.sample(frac=1.0, random_state=0).reset_index(drop=True)  # order must not matter either


# --------------------------------------------------------------------------------------------
# the config and the variants


def test_config_is_the_cdnow_setup() -> None:
    settings = load_settings(CONFIG)
    assert list(settings.catalog) == ["purchase"]
    tp = settings.catalog["purchase"]
    assert (tp.role, tp.prior_points, tp.channel, tp.initiated_by) == ("purchase", 20, "commerce", "customer")
    assert settings.timezone == "UTC"
    assert settings.labels.purchase.horizon_days == 91
    assert settings.labels.purchase.quiet_days == 0
    assert settings.cutoffs.frequency == "weekly"
    # every LightGBM key is pinned in the file, so the reported figures do not move with the defaults
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert set(raw["model"]["lightgbm"]) == set(type(settings.model.lightgbm).model_fields)


def test_settings_that_change_the_question_are_refused() -> None:
    with pytest.raises(ValueError, match="quiet_days"):
        bench.check_settings(load_settings(CONFIG, ["labels.purchase.quiet_days=30"]))
    with pytest.raises(ValueError, match="single touchpoint"):
        bench.check_settings(load_settings(None, ["labels.purchase.quiet_days=0"]))  # the default catalog
    with pytest.raises(ValueError, match="must fit in the holdout"):
        bench.check_settings(load_settings(CONFIG, ["labels.purchase.horizon_days=301"]))
    with pytest.raises(ValueError, match="whole weeks"):
        bench.check_settings(load_settings(CONFIG, ["labels.purchase.horizon_days=90"]))


def test_the_chosen_variant_is_one_of_the_logged_ones() -> None:
    assert bench.CHOSEN in bench.VARIANTS
    assert len({v.fit_key() for v in bench.VARIANTS.values() if v.blend_bgnbd == 0}) == sum(
        v.blend_bgnbd == 0 for v in bench.VARIANTS.values())  # no two variants fit the same model
    assert all(c + pd.Timedelta(days=91) <= CAL_END for c in bench.VALIDATION_CUTOFFS)


# --------------------------------------------------------------------------------------------
# training cutoffs


@pytest.mark.parametrize(("end", "horizon"), [(CAL_END, 91), (CAL_END, 7), (bench.VALIDATION_CUTOFFS[1], 91),
                                              (bench.VALIDATION_CUTOFFS[0], 7)])
def test_training_label_windows_end_by_the_cutoff_fitted_at(events, settings, end, horizon) -> None:
    grid = bench.training_grid(events, settings, end=end, horizon_days=horizon, n_cutoffs=10_000)
    cutoffs = pd.DatetimeIndex(sorted(grid[CUTOFF].unique()))
    span = pd.Timedelta(days=horizon)
    assert (cutoffs + span <= end).all()
    assert cutoffs[-1] + pd.Timedelta(days=7) + span > end  # the latest Monday that fits is used
    assert (cutoffs.day_of_week == 0).all() and (cutoffs == cutoffs.normalize()).all()
    seen = first_seen(events)
    for cutoff, rows in list(grid.groupby(CUTOFF))[-2:]:  # every customer first seen before a cutoff, nobody else
        assert set(rows[CUSTOMER_ID].astype(str)) == set(seen.index[seen < cutoff])
    limited = bench.training_grid(events, settings, end=end, horizon_days=horizon, n_cutoffs=3)
    assert list(limited[CUTOFF].unique()) == list(cutoffs[-3:])


# --------------------------------------------------------------------------------------------
# nothing at or after the cutoff reaches fitting or scoring


@pytest.mark.parametrize("name", ["direct", "rollout", "rollout_bgnbd", "rollout_candidates", "gam_order_size_price",
                                  "gam_order_size_timing", "gam_order_size_cohort"])
def test_no_event_at_or_after_the_cutoff_reaches_a_fit_or_a_score(small, settings, name) -> None:
    variant = bench.VARIANTS[name]
    end = bench.VALIDATION_CUTOFFS[1]
    noisy = _with_noise_from(small, end)
    customers = scoring_cutoffs(bench.known_before(small, end), end)
    windows = {"a": 91, "b": 91}
    if variant.method == "rollout":
        variant = replace(variant, step_days=28)  # a quick rollout: 4 steps of 4 weeks
        windows = {"a": 28, "b": 56}
    fits, scores = [], []
    for ev in (small, noisy):
        fitted = bench.fit_at(ev, end, settings, variant)
        fits.append(fitted)
        scores.append(bench.model_scores(fitted, ev, settings, customers, windows)[0])
    columns = fits[0].features + ["label"]
    pd.testing.assert_frame_equal(fits[0].data[columns], fits[1].data[columns])
    assert fits[0].info == fits[1].info
    for key in windows:
        np.testing.assert_array_equal(scores[0][key], scores[1][key])
    assert (scores[0]["b"] >= scores[0]["a"]).all() or variant.method != "rollout"


def test_bgnbd_baseline_is_fitted_on_the_past_only(events) -> None:
    ids = scoring_cutoffs(events, CAL_END)[CUSTOMER_ID].astype(str).to_numpy()
    horizons = {"a": 91, "b": 273}
    model, summary, scores = bench.bgnbd_at(events, CAL_END, ids, horizons)
    model_noisy, summary_noisy, scores_noisy = bench.bgnbd_at(_with_noise_from(events, CAL_END), CAL_END, ids, horizons)
    pd.testing.assert_series_equal(model.params_, model_noisy.params_)
    pd.testing.assert_frame_equal(summary, summary_noisy)
    assert list(summary.index) == list(ids)
    for key in ("p_alive", "expected_a", "expected_b"):
        np.testing.assert_array_equal(scores[key], scores_noisy[key])
    assert (scores["expected_b"] >= scores["expected_a"]).all()


def test_validation_never_sees_the_holdout(small, settings) -> None:
    variants = [bench.VARIANTS["direct"], replace(bench.VARIANTS["rollout_blend25"], step_days=28)]
    cutoffs = bench.VALIDATION_CUTOFFS[1:]
    log = bench.validate(small, settings, variants, cutoffs=cutoffs)
    again = bench.validate(_with_noise_from(small, CAL_END), settings, variants, cutoffs=cutoffs)
    for name in ("direct", "rollout_blend25"):
        for key in ("mean_difference", "min_difference"):
            assert log["variants"][name][key] == again["variants"][name][key]
    for name in ("ceiling", "ceiling_order_size", "ceiling_gam_order_size"):
        assert log[name] == again[name]
    entry = log["variants"]["direct"]["cutoffs"]["1997-07-01"]
    assert entry["a"]["customers"] == 600 and 0 < entry["a"]["positives"] < 600
    assert abs(entry["a"]["difference"] - (entry["a"]["roc_auc"] - entry["a"]["bgnbd_roc_auc"])) < 1e-12
    assert log["best"] in {"direct", "rollout_blend25"}
    # at 1997-07-01 (a') and (b') are one 13-week window: the distinct-window mean counts it once
    assert entry["a"] == entry["b"]
    assert log["variants"]["direct"]["mean_difference_distinct_windows"] == entry["a"]["difference"]
    assert log["best_by_distinct_windows"] in {"direct", "rollout_blend25"}
    assert "`direct`" in bench.validation_markdown(log)


def test_candidate_features_use_the_past_only() -> None:
    ev = pd.DataFrame({
        CUSTOMER_ID: ["a"] * 5,
        TS: pd.to_datetime(["1997-01-01", "1997-01-01", "1997-01-11", "1997-01-31", "1997-02-10"], utc=True),
        "touchpoint": "purchase", "value": [10.0, 5.0, 30.0, 15.0, 99.0],
    })
    rows = pd.DataFrame({CUSTOMER_ID: ["a", "a", "b"],
                         CUTOFF: pd.to_datetime(["1997-02-10", "1997-01-05", "1997-02-10"], utc=True)})
    f = bench.candidate_features(ev, rows)
    # at 02-10 (the purchase on 02-10 is the future): days 01-01 (15 = 10 + 5, 2 lines), 01-11 (30), 01-31 (15)
    assert f.loc[0, "cand__purchase__gap_mean"] == 15.0          # gaps 10 and 20 days
    assert f.loc[0, "cand__purchase__gap_last"] == 20.0
    assert f.loc[0, "cand__purchase__gap_overdue"] == 10.0 / 15.0  # 10 days since 01-31
    assert f.loc[0, "cand__purchase__spend_mean"] == 20.0
    assert f.loc[0, "cand__purchase__spend_first"] == 15.0 and f.loc[0, "cand__purchase__spend_last"] == 15.0
    assert f.loc[0, "cand__purchase__lines_mean"] == pytest.approx(4 / 3)
    assert np.isnan(f.loc[1, "cand__purchase__gap_mean"]) and f.loc[1, "cand__purchase__spend_mean"] == 15.0
    assert f.loc[2].isna().all()


# --------------------------------------------------------------------------------------------
# holdout labels


def test_holdout_labels_equal_direct_counts_from_the_raw_events(events, settings) -> None:
    customers = scoring_cutoffs(events, CAL_END)
    assert len(customers) == events[CUSTOMER_ID].nunique()  # the whole cohort bought in 1997-Q1
    labels = bench.labels_at(events, customers, {"a": 91, "b": 273}, settings.catalog)
    ids = customers[CUSTOMER_ID].astype(str).to_numpy()
    ts, who = events[TS], events[CUSTOMER_ID].astype(str)
    for key, end in (("a", CAL_END + pd.Timedelta(days=91)), ("b", HOLDOUT_END)):
        buyers = set(who[(ts >= CAL_END) & (ts < end)])
        np.testing.assert_array_equal(labels[key], pd.Index(ids).isin(buyers).astype(np.int8))
    # (b) agrees with the BG/NBD holdout counts (distinct purchase days)
    days = count_purchase_days(events, CAL_END, HOLDOUT_END).reindex(ids, fill_value=0)
    np.testing.assert_array_equal(labels["b"], (days.to_numpy() > 0).astype(np.int8))
    assert labels["a"].sum() < labels["b"].sum()


# --------------------------------------------------------------------------------------------
# metrics and the script


def test_paired_auc_difference() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    noise = rng.normal(size=400)
    same = paired_auc_difference(y, noise, noise, np.arange(400), rounds=30, seed=1)
    assert same["estimate"] == 0 and same["low"] == 0 and same["high"] == 0
    better = paired_auc_difference(y, y + 0.5 * noise, noise, np.arange(400), rounds=30, seed=1)
    assert better["low"] > 0.2 and better["share_above_0"] == 1.0


@pytest.mark.slow
def test_main_runs_end_to_end_on_a_subsample(tmp_path, capsys) -> None:
    out = tmp_path / "cdnow.json"
    result = bench.main(["--customers", "1200", "--rounds", "20", "--json", str(out), "--quiet",
                         *(arg for s in FAST for arg in ("--set", s))])
    written = out.read_text(encoding="utf-8")
    assert json.loads(capsys.readouterr().out) == json.loads(written)  # --quiet prints just the JSON it writes
    assert result["data"]["customers"] == 1200
    assert result["variant"]["name"] == bench.CHOSEN
    assert result["model"]["last_label_window_ends"] <= "1997-10-01"
    assert result["direct"]["last_label_window_ends"] <= "1997-10-01"
    assert set(result["bgnbd"]["params"]) == {"r", "alpha", "a", "b"}
    for key, expected in (("a", "bgnbd_expected_13w"), ("b", "bgnbd_expected_39w")):
        lab = result["labels"][key]
        assert set(lab["table"]) == MODELS | {expected} | (
            {"rollout_probability"} if bench.VARIANTS[bench.CHOSEN].blend_bgnbd else set())
        for metrics in lab["table"].values():
            assert set(metrics) >= RANK_METRICS
            assert 0 <= metrics["roc_auc"]["estimate"] <= 1
            assert all(m["low"] <= m["high"] for m in metrics.values())
        assert set(lab["auc_difference"]) == set(lab["table"]) - {"model"}  # paired, against every score
        assert set(lab["versus_bgnbd_expected"]) == set(lab["table"]) - {"model", expected}
        assert lab["auc_difference"][expected]["estimate"] == pytest.approx(
            lab["table"]["model"]["roc_auc"]["estimate"] - lab["table"][expected]["roc_auc"]["estimate"])
        assert lab["beats_bgnbd_roc_auc"] == all(
            lab["table"]["model"]["roc_auc"]["estimate"] > lab["table"][m]["roc_auc"]["estimate"]
            for m in (expected, "bgnbd_p_alive"))
        assert 0 < lab["positives"] < lab["customers"] == 1200
    text = io.StringIO()
    bench.print_tables(result, file=text)
    printed = text.getvalue()
    assert "(a) a purchase in the first 13 weeks of the holdout" in printed
    assert "(b) a purchase in the whole holdout" in printed
    assert all(name in printed for name in MODELS)


@pytest.mark.slow
def test_full_benchmark_beats_bgnbd_on_both_labels(tmp_path) -> None:
    """The measured claim on all 23,570 customers (~2 minutes of CPU): the chosen model beats both
    BG/NBD scores on both labels, the paired interval of the margin over expected purchases above 0.
    (The issue's +0.015 is not reached: +0.009 on both; README, "Real data: CDNOW".)"""
    result = bench.main(["--rounds", "20", "--quiet", "--json", str(tmp_path / "cdnow.json")])
    assert result["data"]["customers"] == 23_570
    for key, expected in (("a", "bgnbd_expected_13w"), ("b", "bgnbd_expected_39w")):
        lab = result["labels"][key]
        assert lab["beats_bgnbd_roc_auc"], lab["auc_difference"]
        assert lab["auc_difference"][expected]["low"] > 0, lab["auc_difference"]
