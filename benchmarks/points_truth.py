"""Do the learned points recover the simulator's truth, and are their intervals honest?

For the demo world (``configs/demo.yaml``) and the confounded world (the same with
``simulate.confounding: true``), for both tasks, and for three kinds of points:

- ``lightgbm``: the learned points of ``fit_task`` (the own effect of one more touch);
- ``logistic_regression``: the same what-if on the logistic-regression baseline (same features,
  same split, same intervals);
- ``prior``: the hand-set prior points (no interval).

it reports, against ``truth.json``'s ``points_truth`` (the causal log-odds effect of one more
touch now on the task's label; in the confounded world also what a purely predictive model sees):

- ``spearman``: Spearman(points, causal effect) over the ten engagement types (the sign is flipped
  for churn, where points reward touches that lower the risk);
- ``zero_weight_covered``: how many types whose true weight is 0 (the newsletter) get an interval
  that covers 0;
- ``signs_right``: how many types with a non-zero truth get the right sign;
- ``coverage_share``: how many intervals cover the truth on the points' own scale (each type's
  points as a share of the engagement types' total absolute points, truth likewise: the overall
  scale cancels); ``coverage_logodds``: the same on the raw log-odds scale (strict: any shrinkage
  of the model shows).

Then the same over ``--seeds`` worlds with different seeds (smaller, ``--seed-customers``), as
coverage rates; there only the points are learned (the latest origin's model and its refits),
not the whole backtest. Prints one JSON document (also ``--json FILE``).

Two phases, so the current and an older version of the package can be compared on the same worlds:

    python benchmarks/points_truth.py --worlds /tmp/worlds --make-worlds   # needs this version (the simulator)
    python benchmarks/points_truth.py --worlds /tmp/worlds                 # fits; works with the pre-issue-14 API too
    python benchmarks/points_truth.py                                      # both, in a temporary folder
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from scipy.stats import t as student_t

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"
ENGAGEMENT = ("seminar", "webinar", "doc_request", "web_visit", "email_open", "email_click", "newsletter",
              "inquiry", "call", "sales_visit")
SIGN = {"purchase": 1.0, "churn": -1.0}
WORLDS = {"unconfounded": [], "confounded": ["simulate.confounding=true"]}


# ---------------------------------------------------------------------------------------------
# worlds


def make_worlds(folder: Path, customers: int, seeds: int, seed_customers: int) -> None:
    from signals.io.world import write_world
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    plan = [("demo", customers, 7)] + [(f"seed{s:02d}", seed_customers, 100 + s) for s in range(seeds)]
    for name, n, seed in plan:
        for world, overrides in WORLDS.items():
            target = folder / f"{name}-{world}"
            if (target / "truth.json").is_file():
                continue
            settings = load_settings(DEMO, [f"simulate.n_customers={n}", f"simulate.seed={seed}", *overrides])
            started = time.perf_counter()
            sim = simulate_crm(settings)
            paths = settings.paths.model_copy(update={"events": target / "events.parquet",
                                                      "customers": target / "customers.parquet",
                                                      "truth": target / "truth.json"})
            write_world(sim, paths)
            print(f"  world {target.name}: {len(sim.events):,} events ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)


def load_world(folder: Path):
    from signals.io.tables import read_events, read_table
    from signals.settings import load_settings

    settings = load_settings(DEMO)
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    return read_events(folder / "events.parquet", settings.catalog), read_table(folder / "customers.parquet"), truth


# ---------------------------------------------------------------------------------------------
# fitting: the current API and the pre-issue-14 one


def _new_api() -> bool:
    import signals.modeling.training as training

    return hasattr(training, "learn_points")


def _regime(split, truth: dict) -> str:
    shift = truth.get("shift_date")
    if shift is None:
        return "before"
    after = sum(t >= pd.Timestamp(shift, tz="UTC") for t in split.train)
    return "after" if after * 2 >= len(split.train) else "before"


def _lr_refit(ts, split, settings, *, customer_weights=None):
    from signals.modeling.baselines import LogisticBaseline

    train = split.masks(ts.data)[0]
    weight = None
    if customer_weights is not None:
        weight = np.asarray(customer_weights, dtype=float)[ts.customer_code][train]
    X, y = ts.rows(train)
    if weight is not None:
        X, y, weight = X[weight > 0], y[weight > 0], weight[weight > 0]
    return LogisticBaseline(seed=settings.model.seed).fit(X, y, sample_weight=weight)


def fit_new(events, customers, settings, task: str, *, with_lr: bool, progress, points_only: bool = False) -> dict:
    """Points with intervals from this version: LightGBM, logistic regression (priors: see prior_score).

    The demo worlds run the whole ``fit_task`` (what a user gets); the seed worlds only the steps the
    points need (``training_set``, ``fit_model`` and ``learn_points`` on the latest origin).
    """
    from signals.modeling.training import (
        backtest_splits,
        fit_model,
        fit_task,
        learn_points,
        plan_training_split,
        training_set,
    )

    if points_only:
        ts = training_set(events, settings, task=task, customers=customers,
                          plan=plan_training_split(events, settings, task=task))
        split = backtest_splits(ts)[-1]
        learned = learn_points(fit_model(ts, split, settings), ts, split, settings)
        out = {"split": split, "lightgbm": _from_table(learned.table, learned.draws)}
    else:
        trained = fit_task(events, settings, task=task, customers=customers, progress=progress)
        ts = training_set(events, settings, task=task, customers=customers, plan=trained.plan) if with_lr else None
        split = trained.split
        out = {"split": split, "lightgbm": _from_table(trained.points, trained.point_draws)}
    if with_lr:
        model = _lr_refit(ts, split, settings)
        lr = learn_points(model, ts, split, settings, refit=_lr_refit)
        out["logistic_regression"] = _from_table(lr.table, lr.draws)
    return out


def _from_table(table: pd.DataFrame, draws: pd.DataFrame) -> dict:
    table = table.set_index("touchpoint")
    result = {"interval": str(table["interval"].iloc[0]),
              "points": table["own_points"], "low": table["own_points_refit_low"],
              "high": table["own_points_refit_high"], "logodds": table["own_logodds"],
              "logodds_low": table["own_logodds_refit_low"], "logodds_high": table["own_logodds_refit_high"],
              "status": table["status"], "draws": None}
    if len(draws):
        result["draws"] = draws.pivot(index="refit", columns="touchpoint", values="own_logodds")
    return result


def fit_legacy(events, customers, settings, task: str, *, with_lr: bool, progress) -> dict:
    """The pre-issue-14 API: points = total effect, intervals resample customers with the model fixed."""
    from signals.cutoffs import training_cutoffs
    from signals.dataset import LABEL, build_training_set
    from signals.features.matrix import feature_columns
    from signals.features.spec import FeatureSpec
    from signals.labels import horizon_days
    from signals.modeling.baselines import LogisticBaseline
    from signals.modeling.points import points_table, touch_effects
    from signals.modeling.splits import time_split
    from signals.modeling.training import fit_task

    trained = fit_task(events, settings, task=task, customers=customers, progress=progress)
    interval = "95% bootstrap of reference customers, model fixed"
    out = {"split": trained.split, "lightgbm": _from_legacy(trained.points, interval, task), "seconds": {}}
    if with_lr:
        ms = settings.model
        spec = FeatureSpec.from_settings(settings)
        horizon = horizon_days(task, settings.labels)
        cutoffs = training_cutoffs(events, horizon_days=horizon, n_cutoffs=settings.cutoffs.n_training,
                                   frequency=settings.cutoffs.frequency, timezone=settings.timezone,
                                   end=settings.cutoffs.end, customers=customers,
                                   min_history_days=settings.cutoffs.min_history_days)
        data = build_training_set(events, cutoffs, spec, task=task, labels=settings.labels, customers=customers)
        split = time_split(data["cutoff"], n_validation=ms.validation_cutoffs, n_test=ms.test_cutoffs,
                           horizon_days=horizon, embargo=ms.embargo)
        train, val, _ = split.masks(data)
        features = feature_columns(data)
        model = LogisticBaseline().fit(data.loc[train, features], data.loc[train, LABEL].to_numpy())
        validation = data.loc[val, ["customer_id", "cutoff"]]
        reference = validation.sample(n=min(ms.points_reference_rows, len(validation)), random_state=ms.seed)
        effects = touch_effects(model, events, reference, spec, customers=customers)
        table = points_table(effects, reference["customer_id"], spec, task=task, rounds=ms.bootstrap_rounds,
                             seed=ms.seed)
        out["logistic_regression"] = _from_legacy(table, interval, task)
    return out


def _from_legacy(table: pd.DataFrame, interval: str, task: str) -> dict:
    table = table.set_index("touchpoint")
    factor = SIGN[task] * table["scale"].iloc[0]
    ends = np.sort(np.column_stack([table["low"], table["high"]]) / factor, axis=1) if factor else np.full((len(table), 2), np.nan)
    return {"interval": interval, "points": table["learned_points"], "low": table["low"], "high": table["high"],
            "logodds": table["effect_logodds"], "logodds_low": pd.Series(ends[:, 0], index=table.index),
            "logodds_high": pd.Series(ends[:, 1], index=table.index),
            "status": pd.Series("defined", index=table.index), "draws": None}


# ---------------------------------------------------------------------------------------------
# scoring against the truth


def _share_interval(result: dict, task: str, types: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points as shares of the engagement types' absolute total, with the interval on that scale."""
    points = result["points"].reindex(types).to_numpy(dtype=float)
    total = np.nansum(np.abs(points))
    share = points / total if total > 0 else points * np.nan
    draws = result["draws"]
    if draws is not None and len(draws) > 1:
        d = SIGN[task] * draws.reindex(columns=types).to_numpy(dtype=float)
        d = d / np.nansum(np.abs(d), axis=1, keepdims=True)
        half = student_t.ppf(0.975, len(d) - 1) * np.nanstd(d, axis=0, ddof=1)
        return share, share - half, share + half
    low = result["low"].reindex(types).to_numpy(dtype=float)
    high = result["high"].reindex(types).to_numpy(dtype=float)
    return share, np.minimum(low, high) / total, np.maximum(low, high) / total


def score(result: dict, truth_entry: dict, task: str) -> dict:
    causal = truth_entry["causal_logodds"]
    types = [t for t in ENGAGEMENT if t in result["points"].index and result["status"].get(t) == "defined"]
    target = SIGN[task] * np.array([causal[t] for t in types])
    points = result["points"].reindex(types).to_numpy(dtype=float)
    low = result["low"].reindex(types).to_numpy(dtype=float)
    high = result["high"].reindex(types).to_numpy(dtype=float)
    has_interval = np.isfinite(low).all() and np.isfinite(high).all()
    zero = [t for t, v in zip(types, target, strict=True) if v == 0]
    nonzero = [i for i, v in enumerate(target) if v != 0]
    out = {
        "types": len(types),
        "spearman": float(spearmanr(points, target).statistic),
        "zero_weight_types": zero,
        "zero_weight_covered": (sum(int(low[types.index(t)] <= 0 <= high[types.index(t)]) for t in zero)
                                if has_interval else 0),
        "signs_right": int(sum(np.sign(points[i]) == np.sign(target[i]) for i in nonzero)),
        "signs_total": len(nonzero),
        "interval": result["interval"],
    }
    if truth_entry.get("predictive_logodds"):
        predictive = SIGN[task] * np.array([truth_entry["predictive_logodds"][t] for t in types])
        out["spearman_vs_predictive"] = float(spearmanr(points, predictive).statistic)
    if has_interval:
        share, s_low, s_high = _share_interval(result, task, types)
        true_share = target / np.abs(target).sum()
        out["coverage_share"] = int(np.sum((s_low <= true_share) & (true_share <= s_high)))
        lo = result["logodds_low"].reindex(types).to_numpy(dtype=float)
        hi = result["logodds_high"].reindex(types).to_numpy(dtype=float)
        truth = np.array([causal[t] for t in types])
        out["coverage_logodds"] = int(np.sum((lo <= truth) & (truth <= hi)))
    out["points"] = {t: [round(float(p), 2), round(float(a), 2), round(float(b), 2)]
                     for t, p, a, b in zip(types, points, low, high, strict=True)}
    out["causal_logodds"] = {t: round(float(causal[t]), 4) for t in types}
    return out


def prior_score(settings, truth_entry: dict, task: str) -> dict:
    types = list(ENGAGEMENT)
    priors = np.array([settings.catalog[t].prior_points for t in types])
    target = SIGN[task] * np.array([truth_entry["causal_logodds"][t] for t in types])
    nonzero = [i for i, v in enumerate(target) if v != 0]
    return {"types": len(types), "spearman": float(spearmanr(priors, target).statistic),
            "zero_weight_types": [t for t, v in zip(types, target, strict=True) if v == 0],
            "zero_weight_covered": int(sum(priors[i] == 0 for i, v in enumerate(target) if v == 0)),
            "signs_right": int(sum(np.sign(priors[i]) == np.sign(target[i]) for i in nonzero)),
            "signs_total": len(nonzero), "interval": "none (hand-set)"}


def run_world(folder: Path, overrides: list[str], *, with_lr: bool, progress, points_only: bool = False) -> dict:
    from signals.settings import load_settings

    events, customers, truth = load_world(folder)
    settings = load_settings(DEMO, overrides)
    out = {}
    for task in ("purchase", "churn"):
        started = time.perf_counter()
        if _new_api():
            result = fit_new(events, customers, settings, task, with_lr=with_lr, progress=progress,
                             points_only=points_only)
        else:
            result = fit_legacy(events, customers, settings, task, with_lr=with_lr, progress=progress)
        regime = _regime(result["split"], truth)
        entry = truth["points_truth"][task][regime]
        scores = {"regime": regime, "lightgbm": score(result["lightgbm"], entry, task)}
        if with_lr:
            scores["logistic_regression"] = score(result["logistic_regression"], entry, task)
        scores["prior"] = prior_score(settings, entry, task)
        scores["seconds"] = round(time.perf_counter() - started, 1)
        out[task] = scores
    return out


def aggregate(per_world: list[dict]) -> dict:
    """Coverage rates and mean Spearman over many worlds, per task and method."""
    out = {}
    for task in ("purchase", "churn"):
        out[task] = {}
        for method in ("lightgbm", "logistic_regression", "prior"):
            rows = [w[task][method] for w in per_world if method in w[task]]
            if not rows:
                continue
            entry = {"worlds": len(rows), "spearman_mean": round(float(np.mean([r["spearman"] for r in rows])), 3),
                     "spearman_min": round(float(np.min([r["spearman"] for r in rows])), 3),
                     "zero_weight_covered": f"{sum(r['zero_weight_covered'] for r in rows)}/"
                                            f"{sum(len(r['zero_weight_types']) for r in rows)}",
                     "signs_right": f"{sum(r['signs_right'] for r in rows)}/{sum(r['signs_total'] for r in rows)}"}
            if "coverage_share" in rows[0]:
                n = sum(r["types"] for r in rows)
                entry["coverage_share"] = round(sum(r["coverage_share"] for r in rows) / n, 3)
                entry["coverage_logodds"] = round(sum(r["coverage_logodds"] for r in rows) / n, 3)
                entry["intervals"] = n
            if "spearman_vs_predictive" in rows[0]:
                entry["spearman_vs_predictive_mean"] = round(float(np.mean([r["spearman_vs_predictive"] for r in rows])), 3)
            out[task][method] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", type=Path, default=None, help="folder of the simulated worlds (default: a temporary one)")
    parser.add_argument("--make-worlds", action="store_true", help="only simulate the worlds into --worlds")
    parser.add_argument("--customers", type=int, default=10_000, help="customers of the demo world (default 10000)")
    parser.add_argument("--seeds", type=int, default=20, help="worlds with different seeds for coverage (default 20)")
    parser.add_argument("--seed-customers", type=int, default=3000, help="customers of each seed world (default 3000)")
    parser.add_argument("--no-lr", action="store_true", help="skip the logistic-regression points")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key.path=value for every fit")
    parser.add_argument("--json", default=None, help="also write the JSON result to this file")
    parser.add_argument("--partial", default=None,
                        help="append each world's result to this JSON-lines file as soon as it is done "
                             "(a long run that is stopped keeps what it measured)")
    args = parser.parse_args()

    started = time.perf_counter()
    temporary = None
    if args.worlds is None:
        temporary = tempfile.TemporaryDirectory(prefix="points-truth-")
        args.worlds = Path(temporary.name)
    args.worlds.mkdir(parents=True, exist_ok=True)
    if args.make_worlds or temporary is not None or not any(args.worlds.iterdir()):
        make_worlds(args.worlds, args.customers, args.seeds, args.seed_customers)
        if args.make_worlds:
            return

    def progress(message: str) -> None:
        print(f"    {message}", file=sys.stderr, flush=True)

    new = _new_api()
    quick = [] if new else ["model.bootstrap_rounds=10"]  # the legacy fit_task also scores the test cutoffs
    result = {"benchmark": "points_truth", "api": "issue-14 (own points, refit intervals)" if new else
              "pre-issue-14 (total effect, intervals with the model fixed)",
              "git": _git(), "demo": {"customers": args.customers}, "seeds": {"customers": args.seed_customers}}
    seeds = sorted({p.name.split("-")[0] for p in args.worlds.iterdir() if p.name.startswith("seed")})[:args.seeds]
    result["seeds"]["n"] = len(seeds)
    for world in WORLDS:  # each world kind whole (demo world, then its seeds) before the next
        print(f"demo world, {world}", file=sys.stderr, flush=True)
        result["demo"][world] = run_world(args.worlds / f"demo-{world}", list(args.overrides),
                                          with_lr=not args.no_lr, progress=progress)
        _append(args.partial, {"world": f"demo-{world}", "result": result["demo"][world]})
        per_world = []
        for name in seeds:
            print(f"{name}, {world}", file=sys.stderr, flush=True)
            per_world.append(run_world(args.worlds / f"{name}-{world}", [*quick, *args.overrides],
                                       with_lr=not args.no_lr, progress=None, points_only=True))
            _append(args.partial, {"world": f"{name}-{world}", "result": per_world[-1]})
        result["seeds"][world] = aggregate(per_world)
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, default=float)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)


def _append(path: str | None, record: dict) -> None:
    """One JSON line per finished world (``--partial``)."""
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=float) + "\n")


def _git() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
