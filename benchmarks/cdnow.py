"""CDNOW, the real-data check: LightGBM on point-in-time features against BG/NBD and RFM.

CDNOW (``signals.io.cdnow.read_cdnow``) holds every CD purchase, 1997-01..1998-06, of the 23,570
customers whose first purchase fell in 1997-Q1. The standard split (Fader, Hardie & Lee 2005):
calibration 1997-01-01..1997-09-30, holdout 1997-10-01..1998-06-30.

1. Training: weekly cutoffs whose label windows end inside the calibration period
   (``T + horizon <= 1997-10-01``, the ``cutoffs.n_training`` latest of them); every customer
   first seen before a cutoff is a row, labelled "buys at least once in ``[T, T + horizon)``"
   (``purchase_within``, ``quiet_days = 0``). Only calibration events are passed to training, so
   no holdout event can reach a feature or a label. The latest ``model.validation_cutoffs``
   cutoffs are the validation part (early stopping, calibration); the rest train
   :class:`~signals.modeling.estimators.SignalModel`.
2. Holdout: at the cutoff 1997-10-01, every customer (all were first seen before it) gets
   (a) ">= 1 purchase in ``[1997-10-01, +horizon)``" (13 weeks with ``configs/cdnow.yaml``) and
   (b) ">= 1 purchase in the whole holdout ``[1997-10-01, 1998-07-01)``". The model's calibrated
   probability of (a) is its score for both labels (for (b) it is a ranking, not a probability).
3. Baselines on the same customers: BG/NBD fitted on the calibration period (P(alive) and the
   expected purchases over each label's horizon), RFM (``benchmarks.bgnbd.rfm_score``), and the
   package's baselines that apply (logistic regression on the same features, the prior-points
   temperature, which here is a purchase temperature, the RFM quintiles of the feature matrix and
   seed 003's falling frequency).
4. Metrics (``bootstrap_metrics``: ROC AUC, PR AUC, top-decile lift, and Brier / ECE for the one
   calibrated probability, the model's on label (a)) with 95% intervals over customers, plus the
   paired bootstrap difference of ROC AUC between the model and each BG/NBD score.

Run from the repository root::

    python benchmarks/cdnow.py [--config configs/cdnow.yaml] [--rounds N] [--json out.json]
                               [--customers N] [--set key.path=value ...] [--quiet]

``--customers N`` runs on a random subsample of N customers (a quick check; the figures are then
not the benchmark's). Prints one table per label; the JSON with every figure goes to ``--json``
(or to stdout after the tables when no file is given; ``--quiet`` prints only the JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bgnbd import BGNBD, rfm_summary  # noqa: E402
from benchmarks.bgnbd import rfm_score as bgnbd_rfm_score  # noqa: E402
from signals.cutoffs import scoring_cutoffs, training_cutoffs  # noqa: E402
from signals.dataset import LABEL, build_training_set  # noqa: E402
from signals.features.matrix import build_features, feature_columns  # noqa: E402
from signals.features.spec import FeatureSpec  # noqa: E402
from signals.labels import purchase_within  # noqa: E402
from signals.modeling.baselines import (  # noqa: E402
    LogisticBaseline,
    falling_frequency,
    prior_temperature,
)
from signals.modeling.baselines import rfm_score as feature_rfm_score  # noqa: E402
from signals.modeling.estimators import SignalModel  # noqa: E402
from signals.modeling.metrics import METRICS, bootstrap_metrics, paired_auc_difference, roc_auc  # noqa: E402
from signals.modeling.splits import TimeSplit, time_split  # noqa: E402
from signals.schemas import CUSTOMER_ID, CUTOFF, TS, check_events  # noqa: E402
from signals.settings import Settings, load_settings  # noqa: E402

__all__ = [
    "CALIBRATION_END",
    "CALIBRATION_START",
    "HOLDOUT_END",
    "TASK",
    "bgnbd_scores",
    "calibration_events",
    "holdout_labels",
    "holdout_matrix",
    "main",
    "print_tables",
    "run",
    "split_training",
    "training_grid",
    "training_set",
]

CALIBRATION_START = pd.Timestamp("1997-01-01", tz="UTC")  # weeks 1-39: 1997-01-01 .. 1997-09-30
CALIBRATION_END = pd.Timestamp("1997-10-01", tz="UTC")    # = the holdout cutoff (its first moment)
HOLDOUT_END = pd.Timestamp("1998-07-01", tz="UTC")        # weeks 40-78: 1997-10-01 .. 1998-06-30
TASK = "purchase"
MODEL = "lightgbm"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
METRIC_TITLES = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "top_decile_lift": "top-decile lift",
                 "brier": "Brier", "ece": "ECE"}
DAY = pd.Timedelta(days=1)


# --------------------------------------------------------------------------------------------
# the pieces


def calibration_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events of the calibration period, ``ts < 1997-10-01``: all that training may see."""
    return events[(events[TS] < CALIBRATION_END).to_numpy()].reset_index(drop=True)


def _check_settings(settings: Settings) -> None:
    purchases = settings.touchpoints_with_role("purchase")
    if purchases != ["purchase"] or list(settings.catalog) != ["purchase"]:
        raise ValueError(f"the CDNOW check needs a catalog with the single touchpoint 'purchase' "
                         f"(role purchase); got {list(settings.catalog)}")
    if settings.labels.purchase.quiet_days != 0:
        raise ValueError("the CDNOW check scores every existing customer: set labels.purchase.quiet_days: 0 "
                         f"(got {settings.labels.purchase.quiet_days})")
    horizon = pd.Timedelta(days=settings.labels.purchase.horizon_days)
    if CALIBRATION_END + horizon > HOLDOUT_END:
        raise ValueError(f"labels.purchase.horizon_days ({horizon.days}) must fit in the holdout "
                         f"({(HOLDOUT_END - CALIBRATION_END).days} days)")


def training_grid(events: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The training ``(customer_id, cutoff)`` rows: calendar cutoffs with ``T + horizon <= 1997-10-01``.

    The ``cutoffs.n_training`` latest ``cutoffs.frequency`` cutoffs that fit (not after
    ``cutoffs.end`` if set), each with every customer first seen before it (after
    ``cutoffs.min_history_days``). Only calibration events are looked at.
    """
    horizon = settings.labels.purchase.horizon_days
    cal = calibration_events(events)
    grid = training_cutoffs(
        cal, horizon_days=horizon, n_cutoffs=settings.cutoffs.n_training, frequency=settings.cutoffs.frequency,
        timezone=settings.timezone, end=settings.cutoffs.end, data_end=CALIBRATION_END,
        min_history_days=settings.cutoffs.min_history_days,
    )
    late = grid[CUTOFF] + pd.Timedelta(days=horizon) > CALIBRATION_END
    if late.any():  # training_cutoffs guarantees it; a broken guarantee would leak the holdout
        raise RuntimeError(f"{int(late.sum())} training rows have label windows past {CALIBRATION_END:%Y-%m-%d}")
    return grid


def split_training(cutoffs: Sequence[pd.Timestamp] | pd.Series, settings: Settings) -> TimeSplit:
    """Train / validation cutoffs in time; the test part is the single holdout cutoff 1997-10-01.

    With ``model.embargo`` a training cutoff's label window must close before the first
    validation cutoff; without it (``configs/cdnow.yaml``) the latest training labels overlap the
    validation period, which only makes early stopping and calibration a little optimistic: the
    reported figures are on the holdout, which no training label reaches.
    """
    instants = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(cutoffs)))
    return time_split(instants.append(pd.DatetimeIndex([CALIBRATION_END])),
                      n_validation=settings.model.validation_cutoffs, n_test=1,
                      horizon_days=settings.labels.purchase.horizon_days, embargo=settings.model.embargo)


def training_set(events: pd.DataFrame, settings: Settings, spec: FeatureSpec | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, TimeSplit]:
    """Features and labels of every training row, from calibration events only.

    Returns the training set (``build_training_set``: ``customer_id``, ``cutoff``, features,
    ``label``), the grid it was built on (:func:`training_grid`) and its split
    (:func:`split_training`).
    """
    spec = FeatureSpec.from_settings(settings) if spec is None else spec
    grid = training_grid(events, settings)
    data = build_training_set(calibration_events(events), grid, spec, task=TASK, labels=settings.labels)
    return data, grid, split_training(grid[CUTOFF], settings)


def holdout_matrix(events: pd.DataFrame, settings: Settings, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """Features at the holdout cutoff 1997-10-01 of every customer first seen before it.

    Built from calibration events only (features use ``ts < cutoff`` anyway: this makes it plain).
    """
    spec = FeatureSpec.from_settings(settings) if spec is None else spec
    cal = calibration_events(events)
    return build_features(cal, scoring_cutoffs(cal, CALIBRATION_END, timezone=settings.timezone), spec)


def holdout_labels(events: pd.DataFrame, customers: pd.DataFrame, settings: Settings) -> dict[str, dict[str, Any]]:
    """Labels (a) and (b) at the holdout cutoff for ``customers`` (``customer_id, cutoff`` rows).

    (a): a purchase in ``[1997-10-01, 1997-10-01 + horizon)``; (b): a purchase in
    ``[1997-10-01, 1998-07-01)``. Returns, per label, its window, horizon in days and the 0/1
    label array in the row order of ``customers``.
    """
    horizon_a = settings.labels.purchase.horizon_days
    horizon_b = (HOLDOUT_END - CALIBRATION_END).days
    out = {}
    for key, days, title in (("a", horizon_a, f"a purchase in the first {_weeks(horizon_a)} of the holdout"),
                             ("b", horizon_b, "a purchase in the whole holdout")):
        labelled = purchase_within(events, customers, horizon_days=days, catalog=settings.catalog, quiet_days=0)
        out[key] = {
            "title": title,
            "window": [f"{CALIBRATION_END:%Y-%m-%d}", f"{CALIBRATION_END + pd.Timedelta(days=days):%Y-%m-%d}"],
            "horizon_days": int(days),
            "y": labelled[LABEL].to_numpy().astype(np.int8),
        }
    return out


def _weeks(days: float) -> str:
    return f"{days / 7:g} weeks"


def bgnbd_scores(events: pd.DataFrame, customer_ids: Sequence[str], horizons_days: Mapping[str, float]
                 ) -> tuple[BGNBD, pd.DataFrame, dict[str, np.ndarray]]:
    """BG/NBD fitted on the calibration period; P(alive) and expected purchases over each horizon.

    Returns the fitted model, the calibration summary (in the order of ``customer_ids``) and the
    scores: ``p_alive`` and ``expected_<key>`` for each ``horizons_days[key]`` (in weeks, the
    summary's unit).
    """
    summary = rfm_summary(calibration_events(events), CALIBRATION_END)
    missing = set(customer_ids) - set(summary.index)
    if missing:
        raise ValueError(f"{len(missing)} holdout customer(s) have no calibration purchase, e.g. {sorted(missing)[:3]}")
    summary = summary.loc[list(customer_ids)]
    model = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    x, t_x, big_t = summary["frequency"], summary["recency"], summary["T"]
    scores = {"p_alive": model.conditional_probability_alive(x, t_x, big_t)}
    for key, days in horizons_days.items():
        scores[f"expected_{key}"] = model.conditional_expected_number_of_purchases_up_to_time(days / 7, x, t_x, big_t)
    return model, summary, scores


def _table(metrics: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {metric: {estimate, low, high}}}`` in the row order of ``metrics``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in metrics.itertuples(index=False):
        out.setdefault(r.model, {})[r.metric] = {"estimate": float(r.estimate), "low": float(r.low),
                                                  "high": float(r.high)}
    return out


def _subsample(events: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    ids = np.sort(events[CUSTOMER_ID].astype(str).unique())
    if not 0 < n <= len(ids):
        raise ValueError(f"--customers must be in 1..{len(ids)}, got {n}")
    keep = set(np.random.default_rng(seed).choice(ids, size=n, replace=False))
    out = events[events[CUSTOMER_ID].astype(str).isin(keep).to_numpy()].reset_index(drop=True)
    out[CUSTOMER_ID] = out[CUSTOMER_ID].astype(str).astype("category")
    return out


# --------------------------------------------------------------------------------------------
# the benchmark


def run(events: pd.DataFrame, settings: Settings, *, rounds: int | None = None,
        progress=lambda message: None) -> dict[str, Any]:
    """The whole check on canonical CDNOW ``events``; returns every figure (JSON-ready)."""
    _check_settings(settings)
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        seconds[name] = round(time.perf_counter() - started - sum(seconds.values()), 2)

    ms = settings.model
    rounds = ms.bootstrap_rounds if rounds is None else rounds
    events = check_events(events, settings.catalog)
    cal = calibration_events(events)
    spec = FeatureSpec.from_settings(settings)
    horizon = settings.labels.purchase.horizon_days

    progress(f"training set: {settings.cutoffs.n_training} {settings.cutoffs.frequency} cutoffs, calibration events only")
    data, grid, split = training_set(events, settings, spec)
    features = feature_columns(data)
    train_mask, val_mask, _ = split.masks(data)
    X_tr, y_tr = data.loc[train_mask, features], data.loc[train_mask, LABEL].to_numpy()
    X_va, y_va = data.loc[val_mask, features], data.loc[val_mask, LABEL].to_numpy()
    lap("training_set")

    progress(f"LightGBM on {len(X_tr):,} rows, early stopping and {ms.calibration} calibration on {len(X_va):,}")
    model = SignalModel(ms.lightgbm, ms.calibration, ms.seed).fit(X_tr, y_tr, X_va, y_va)
    lap("lightgbm")

    # the holdout cutoff: features from calibration events, labels from the holdout
    holdout = holdout_matrix(events, settings, spec)
    customers, X_ho = holdout[[CUSTOMER_ID, CUTOFF]], holdout[features]
    labels = holdout_labels(events, customers, settings)
    ids = customers[CUSTOMER_ID].astype(str).to_numpy()
    probability = model.probability(X_ho)
    lap("holdout_features")

    progress("baselines: BG/NBD, RFM, logistic regression, prior temperature, falling frequency")
    bgnbd, summary, bg = bgnbd_scores(events, ids, {key: lab["horizon_days"] for key, lab in labels.items()})
    logistic = LogisticBaseline().fit(X_tr, y_tr)
    shared = {
        "bgnbd_p_alive": bg["p_alive"],
        "rfm": bgnbd_rfm_score(summary)["rfm"].to_numpy(dtype=np.float64),
        "rfm_feature_quintiles": feature_rfm_score(X_tr, X_ho, spec, TASK),
        "logistic_regression": logistic.decision_function(X_ho),
        "prior_temperature": prior_temperature(X_ho, spec, TASK),
        "falling_frequency": falling_frequency(X_ho, spec, TASK),
    }
    lap("baselines")

    progress(f"metrics: {rounds} bootstrap rounds over {len(ids):,} customers")
    results = {}
    for key, lab in labels.items():
        y = lab["y"]
        expected = f"bgnbd_expected_{_weeks(lab['horizon_days']).replace(' weeks', 'w')}"
        models: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
            # (a): the calibrated probability of the label it was trained for; (b): the same
            # values, a ranking only (the probability is of (a), not of (b))
            MODEL: (probability, probability if key == "a" else None),
            expected: (bg[f"expected_{key}"], None),
        }
        models.update({name: (score, None) for name, score in shared.items()})
        metrics = bootstrap_metrics(y, models, ids, rounds=rounds, seed=ms.seed)
        versus = {name: paired_auc_difference(y, probability, models[name][0], ids, rounds=rounds, seed=ms.seed)
                  for name in (expected, "bgnbd_p_alive")}
        results[key] = {
            "title": lab["title"],
            "window": lab["window"],
            "horizon_days": lab["horizon_days"],
            "customers": len(y),
            "positives": int(y.sum()),
            "model_score": ("calibrated probability of this label" if key == "a" else
                            "the calibrated probability of label (a), used as a ranking"),
            "table": _table(metrics),
            "auc_difference_vs_bgnbd": versus,
            "beats_bgnbd_roc_auc": bool(all(v["estimate"] > 0 for v in versus.values())),
        }
        if key == "a":
            results[key]["model_mean_probability"] = float(probability.mean())
    lap("metrics")

    first_cutoff = grid[CUTOFF].min()
    return {
        "benchmark": "cdnow",
        "data": {
            "customers": int(events[CUSTOMER_ID].nunique()), "events": len(events),
            "calibration": [f"{CALIBRATION_START:%Y-%m-%d}", f"{CALIBRATION_END - DAY:%Y-%m-%d}"],
            "holdout": [f"{CALIBRATION_END:%Y-%m-%d}", f"{HOLDOUT_END - DAY:%Y-%m-%d}"],
            "calibration_events": len(cal),
            "holdout_events": int(((events[TS] >= CALIBRATION_END) & (events[TS] < HOLDOUT_END)).sum()),
        },
        "split": {
            **split.describe(),
            "test": f"{CALIBRATION_END:%Y-%m-%d} (the holdout cutoff, 1 customer row each)",
            "frequency": settings.cutoffs.frequency,
            "label_horizon_days": horizon,
            "last_training_label_window_ends": f"{grid[CUTOFF].max() + pd.Timedelta(days=horizon):%Y-%m-%d}",
            "customers_at_first_cutoff": int((grid[CUTOFF] == first_cutoff).sum()),
            "note": ("no embargo between train and validation: the latest training labels overlap the "
                     "validation cutoffs, which only affects early stopping and calibration; the reported "
                     "test is the holdout, and every training label window ends by "
                     f"{CALIBRATION_END:%Y-%m-%d}") if not split.embargo else
                    "embargo: training label windows close before the first validation cutoff",
        },
        "rows": {
            "training_grid": len(grid), "train": int(train_mask.sum()), "validation": int(val_mask.sum()),
            "train_positives": int(y_tr.sum()), "validation_positives": int(y_va.sum()),
            "holdout_customers": len(ids), "features": len(features),
        },
        "model": {
            "best_iteration": model.best_iteration_, "calibration": ms.calibration,
            "validation_roc_auc": roc_auc(y_va, model.decision_function(X_va)),
            "lightgbm": ms.lightgbm.model_dump(),
            "top_features": {k: float(v) for k, v in model.importance().head(10).items()},
        },
        "bgnbd": {
            "params": {k: float(v) for k, v in bgnbd.params_.items()},
            "log_likelihood": bgnbd.log_likelihood_, "customers": int(bgnbd.n_customers_),
            "fitted_on": f"purchase days {CALIBRATION_START:%Y-%m-%d} .. {CALIBRATION_END - DAY:%Y-%m-%d}",
        },
        "labels": results,
        "bootstrap_rounds": rounds,
        "notes": [
            "The model's score for both labels is its calibrated probability of (a); for (b) it is a "
            "ranking (not a probability of (b)), so Brier and ECE are given for (a) only.",
            "BG/NBD scores: P(alive) at 1997-10-01 and the expected purchase days over the label's horizon; "
            "baselines give rankings, not probabilities (no Brier/ECE). P(alive) is 1 for every customer "
            "without a repeat purchase (BG/NBD lets customers drop out only after a repeat purchase), so it "
            "ranks one-time buyers first and scores below 0.5.",
            "rfm: benchmarks.bgnbd.rfm_score on the calibration summary (quintiles over the holdout "
            "customers); rfm_feature_quintiles: signals.modeling.baselines.rfm_score (quintile edges from "
            "the training rows); prior_temperature: 20 points per purchase, cooled at the trend half-life.",
            "95% intervals: percentile bootstrap over customers; 'vs BG/NBD' is the paired difference "
            "(the same resampled customers for both scores).",
        ],
        "seconds": {**seconds, "total": round(time.perf_counter() - started, 2)},
    }


# --------------------------------------------------------------------------------------------
# output


def _cell(m: Mapping[str, float] | None, digits: int) -> str:
    if m is None:
        return "-"
    return f"{m['estimate']:.{digits}f} [{m['low']:.{digits}f}, {m['high']:.{digits}f}]"


def print_tables(result: Mapping[str, Any], file=None) -> None:
    """One table per label (rich), then the split, the row counts and BG/NBD's parameters."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file, width=160)
    split, rows, bg = result["split"], result["rows"], result["bgnbd"]
    console.print(f"[bold]CDNOW[/bold]: {result['data']['customers']:,} customers, {result['data']['events']:,} "
                  f"events; calibration {' .. '.join(result['data']['calibration'])}, holdout "
                  f"{' .. '.join(result['data']['holdout'])}")
    console.print(f"training cutoffs ({split['frequency']}, {split['label_horizon_days']}-day labels): train "
                  f"{split['train']}, validation {split['validation']}; last training label window ends "
                  f"{split['last_training_label_window_ends']}; rows train {rows['train']:,} "
                  f"({rows['train_positives']:,} positive), validation {rows['validation']:,} "
                  f"({rows['validation_positives']:,} positive), {rows['features']} features")
    console.print(f"[dim]{split['note']}[/dim]")
    console.print(f"LightGBM: {result['model']['best_iteration']} trees, {result['model']['calibration']} "
                  f"calibration, validation ROC AUC {result['model']['validation_roc_auc']:.4f}; BG/NBD on "
                  f"{bg['customers']:,} customers: " + ", ".join(f"{k}={v:.4f}" for k, v in bg["params"].items()))
    for key, lab in result["labels"].items():
        table = Table(title=f"({key}) {lab['title']}: [{lab['window'][0]}, {lab['window'][1]}), "
                            f"{lab['positives']:,} of {lab['customers']:,} customers positive "
                            f"({lab['positives'] / lab['customers']:.1%})", title_justify="left")
        table.add_column("model")
        for metric in METRICS:
            table.add_column(f"{METRIC_TITLES[metric]} [95%]", justify="right")
        ordered = sorted(lab["table"].items(), key=lambda kv: -kv[1]["roc_auc"]["estimate"])
        for name, metrics in ordered:
            digits = {"roc_auc": 4, "pr_auc": 4, "top_decile_lift": 3, "brier": 4, "ece": 4}
            table.add_row(name, *(_cell(metrics.get(m), digits[m]) for m in METRICS),
                          style="bold" if name == MODEL else None)
        console.print(table)
        mean = (f"; mean probability {lab['model_mean_probability']:.3f} vs observed rate "
                f"{lab['positives'] / lab['customers']:.3f}" if "model_mean_probability" in lab else "")
        console.print(f"model score: {lab['model_score']}{mean}")
        for name, d in lab["auc_difference_vs_bgnbd"].items():
            console.print(f"ROC AUC {MODEL} - {name}: {d['estimate']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
                          f"(paired bootstrap; above 0 in {d['share_above_0']:.0%} of rounds)")
        verdict = "beats" if lab["beats_bgnbd_roc_auc"] else "does NOT beat"
        console.print(f"=> {MODEL} {verdict} both BG/NBD scores on ROC AUC for label ({key})\n")
    for note in result["notes"]:
        console.print(f"[dim]- {note}[/dim]")
    console.print("seconds: " + ", ".join(f"{k} {v:g}" for k, v in result["seconds"].items()))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run the check on CDNOW, print the tables and the JSON; returns the result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="YAML config (default: configs/cdnow.yaml)")
    parser.add_argument("--rounds", type=int, default=None, help="bootstrap rounds (default: model.bootstrap_rounds)")
    parser.add_argument("--json", default=None, help="also write the JSON result to this file")
    parser.add_argument("--customers", type=int, default=None,
                        help="run on a random subsample of this many customers (a quick check)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set model.lightgbm.num_threads=1")
    parser.add_argument("--quiet", action="store_true", help="print only the JSON")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")

    from signals.io.cdnow import read_cdnow

    started = time.perf_counter()
    settings = load_settings(args.config, args.overrides)
    events = read_cdnow()
    if args.customers is not None:
        events = _subsample(events, args.customers, settings.model.seed)
    read_seconds = time.perf_counter() - started
    say = (lambda m: None) if args.quiet else (lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    result = run(events, settings, rounds=args.rounds, progress=say)
    result["config"] = str(args.config)
    result["overrides"] = list(args.overrides)
    result["subsample_customers"] = args.customers
    result["seconds"] = {"read_cdnow": round(read_seconds, 2), **result["seconds"],
                         "total": round(time.perf_counter() - started, 2)}
    if not args.quiet:
        print_tables(result)
    text = json.dumps(result, indent=2, default=float)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.json is None or args.quiet:
        print(text)
    return result


if __name__ == "__main__":
    main()
