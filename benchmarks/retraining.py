"""Monthly retraining across the simulator's behaviour shift: does champion / challenger keep up?

Simulates the demo world (configs/demo.yaml: a behaviour shift on simulate.shift_date), then runs
the real ``signals retrain`` backfill (a temporary SQLite MLflow store, registry and aliases
included) every month from the shift date to the end of the data. The first retrain, as of the
shift date, sees only pre-shift data: its model is the **frozen** model. For every later retrain
the benchmark scores, on that retrain's test cutoffs (the latest labelled ones, never seen by any
of the models involved):

- the champion after the retrain's decision (the re-trained model if promoted, else the
  champion in force) vs the frozen model: ROC AUC and the paired bootstrap difference;
- Spearman(learned points, true weights) against the before- and the after-shift weights;
- the seconds the retrain took (training, comparison, drift, logging, registration).

For purchase it also scores the same test rows with the simulator's own hazard
(``benchmarks/shift_oracle.py``): ``oracle_auc`` (the after-shift truth, with each customer's
hidden purchase effect), ``oracle_old_weights_auc`` (the same with the before-shift weights),
``oracle_without_u_auc``, and ``informed_auc`` / ``informed_old_world_auc`` (the truth plus the
touches expected from each customer's latent state and episodes, with the rules of after / before
the shift). ``value_of_knowing_the_shift`` (oracle minus oracle with the old weights) and
``value_of_knowing_the_shift_informed`` (informed minus informed old world: weights and channel
mix, for a model that knows everything else) are what the shift alone is worth in ranking;
``ceiling_over_frozen`` (oracle minus frozen) is what a model would gain over the frozen one if it
ranked like the truth as the cutoff leaves it, hidden effects included (not a strict bound: a
model may also foresee touches still to come).

Then the touchpoints whose points moved most between the frozen model and the last retrain, with
the direction the simulator's truth says (a true weight that changes by at least 0.1 log-odds at the
shift moved). Prints one JSON document (and the MLflow store it used, to open with ``signals ui``):

    python benchmarks/retraining.py [--customers 10000] [--every 1M] [--window 12] [--set key=value ...]

Retrains fit with the defaults: one backtest origin (``mlflow.retrain_backtest_origins``: the kept
model is the latest origin's, whose split does not depend on the number of origins), the points
with their 10 refits, the fits side by side on the cores (``model.parallel_fits``).
``--set model.points_interval=none`` leaves every registered model and its points as they are and
skips the refits (only their intervals go), for a quicker backfill.
``seconds_per_retrain`` times the retrains as run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(ROOT))
MOVED = 0.1  # a true weight that changes by at least this much log-odds at the shift "moved"


def _references(after: list[dict]) -> dict | None:
    """Models vs the simulator's truth on the post-shift test months: the value of knowing the shift
    over every post-shift retrain, and the means over those whose window lies wholly after the shift."""
    if not after:
        return None
    summary = {}
    for key in ("value_of_knowing_the_shift", "value_of_knowing_the_shift_informed"):
        value = [r[key] for r in after]
        summary[f"{key}_every_post_shift_month"] = {
            "retrains": len(after), "mean": round(sum(value) / len(value), 4), "min": min(value), "max": max(value)}
    table = [r for r in after if r["train_share_after_shift"] == 1]
    if table:
        mean = lambda key: round(sum(r[key] for r in table) / len(table), 4)  # noqa: E731
        summary["wholly_post_shift_windows"] = {
            "retrains": len(table), "champion_auc": mean("champion_auc"), "frozen_auc": mean("frozen_auc"),
            "oracle_auc": mean("oracle_auc"), "oracle_old_weights_auc": mean("oracle_old_weights_auc"),
            "oracle_without_u_auc": mean("oracle_without_u_auc"), "informed_auc": mean("informed_auc"),
            "informed_old_world_auc": mean("informed_old_world_auc"),
            "champion_minus_frozen": round(sum(r["champion_minus_frozen"][0] for r in table) / len(table), 4),
            "value_of_knowing_the_shift": mean("value_of_knowing_the_shift"),
            "value_of_knowing_the_shift_informed": mean("value_of_knowing_the_shift_informed"),
            "ceiling_over_frozen": mean("ceiling_over_frozen")}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000, help="simulated customers (demo: 10000)")
    parser.add_argument("--every", default="1M")
    parser.add_argument("--from", dest="start", default=None, help="first as-of date (default: the shift date)")
    parser.add_argument("--to", dest="end", default=None, help="last as-of date (default: simulate.end)")
    parser.add_argument("--window", type=int, default=12, help="cutoffs.n_training: the rolling window in months")
    parser.add_argument("--tasks", default="purchase,churn")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key.path=value override")
    parser.add_argument("--json", default=None, help="also write the JSON result to this file")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    from benchmarks.shift_oracle import reference_scores
    from signals.jobs.retrain import evaluate_bundle, run_backfill
    from signals.modeling.drift import points_and_effect
    from signals.modeling.metrics import paired_auc_difference, roc_auc
    from signals.modeling.points import TASK_SIGN
    from signals.modeling.pyfunc import load_signal_model
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    store = Path(tempfile.mkdtemp(prefix="signals-bench-retrain-"))
    overrides = [f"simulate.n_customers={args.customers}", f"cutoffs.n_training={args.window}",
                 f"mlflow.tracking_uri=sqlite:///{store / 'mlflow.db'}", f"mlflow.artifact_location={store / 'artifacts'}",
                 "mlflow.tracking_uri_env=null", *args.overrides]
    settings = load_settings(ROOT / "configs" / "demo.yaml", overrides)
    started = time.perf_counter()
    world = simulate_crm(settings)
    truth = world.truth
    shift = pd.Timestamp(truth["shift_date"], tz=settings.timezone).tz_convert("UTC")
    start = args.start or truth["shift_date"]
    end = args.end or str(settings.simulate.end)
    log = lambda m: print(f"  {m}", file=sys.stderr, flush=True)  # noqa: E731
    log(f"simulated {len(world.events):,} events of {args.customers:,} customers in {time.perf_counter() - started:.0f} s")

    frozen: dict[str, object] = {}
    rows: dict[str, list[dict]] = {t: [] for t in tasks}

    def spearman(points: dict[str, float], task: str, regime: str) -> float:
        weights = truth["weights"][task][regime]
        types = [t for t in weights if t in points and np.isfinite(points[t])]
        return float(spearmanr([points[t] for t in types], [TASK_SIGN[task] * weights[t] for t in types]).statistic)

    def on_retrain(retrain) -> None:
        for task, r in retrain.tasks.items():
            if task not in frozen:  # the first retrain (as of the shift date): the frozen model
                frozen[task] = load_signal_model(f"models:/signals-{task}/{r.version}",
                                                 tracking_uri=settings.mlflow.tracking_uri, dst=store / f"frozen-{task}")
            test = r.test_rows
            y, ids = test["label"].to_numpy(), test["customer_id"].to_numpy()
            frozen_score, _ = evaluate_bundle(frozen[task], world.events, test, customers=world.customers)
            if r.decision.promote or r.champion_scores is None:
                champion_score = test["score__lightgbm"].to_numpy()
            else:
                champion_score = r.champion_scores[0]
            diff = paired_auc_difference(y, champion_score, frozen_score, ids, rounds=settings.model.bootstrap_rounds,
                                         seed=settings.model.seed)
            points = dict(zip(*points_and_effect(r.trained.points)[["touchpoint", "points"]].T.to_numpy(), strict=True))
            post_share = float(np.mean([t >= shift for t in r.trained.split.train]))
            oracle = {}
            if task == "purchase":
                refs = reference_scores(world, test, horizon_days=settings.labels.purchase.horizon_days)
                oracle = {f"{name}_auc": round(roc_auc(y, s), 4) for name, s in refs.items()}
                oracle["value_of_knowing_the_shift"] = round(oracle["oracle_auc"] - oracle["oracle_old_weights_auc"], 4)
                oracle["value_of_knowing_the_shift_informed"] = round(
                    oracle["informed_auc"] - oracle["informed_old_world_auc"], 4)
                oracle["ceiling_over_frozen"] = round(oracle["oracle_auc"] - roc_auc(y, frozen_score), 4)
            rows[task].append({
                "as_of": f"{retrain.as_of.tz_convert(settings.timezone):%Y-%m-%d}",
                "test_cutoffs": [f"{t.tz_convert(settings.timezone):%Y-%m-%d}" for t in r.trained.split.test],
                "test_after_shift": bool(min(r.trained.split.test) >= shift),
                "train_share_after_shift": round(post_share, 2),
                "test_rows": len(test), "test_positives": int(y.sum()),
                "challenger_auc": round(r.challenger_metrics["roc_auc"], 4),
                "champion_before_auc": None if r.champion_metrics is None else round(r.champion_metrics["roc_auc"], 4),
                "decision": r.decision.label, "reason": r.decision.reason,
                "champion_auc": round(roc_auc(y, champion_score), 4),
                "frozen_auc": round(roc_auc(y, frozen_score), 4),
                "champion_minus_frozen": [round(diff["estimate"], 4), round(diff["low"], 4), round(diff["high"], 4)],
                **oracle,
                "spearman_before": round(spearman(points, task, "before"), 3),
                "spearman_after": round(spearman(points, task, "after"), 3),
                "max_psi": round(float(r.drift["psi"].max()), 3),
                "base_rate": [round(r.base_rate["reference_rate"], 4), round(r.base_rate["current_rate"], 4)],
                "seconds": round(r.seconds, 1),
                "seconds_by_step": {k: round(v, 1) for k, v in r.seconds_by_step.items()},
            })
            last = rows[task][-1]
            log(f"{task} {last['as_of']}: champion {last['champion_auc']} vs frozen {last['frozen_auc']} "
                f"({last['decision']}), Spearman before/after {last['spearman_before']}/{last['spearman_after']}, "
                f"{last['seconds']} s")

    backfill = run_backfill(settings, start=start, end=end, every=args.every, tasks=tasks, progress=None,
                            show_progress=False, inputs=(world.events, world.customers, truth),
                            out_dir=store / "reports", on_retrain=on_retrain)

    result = {"benchmark": "retraining", "customers": args.customers, "events": len(world.events),
              "shift_date": truth["shift_date"], "from": start, "to": end, "every": args.every,
              "window_cutoffs": args.window, "overrides": args.overrides, "retrains": len(backfill.retrains),
              "tasks": {}, "points_over_time_png": str(backfill.figure),
              "mlflow_store": settings.mlflow.tracking_uri}
    history = backfill.history
    for task in tasks:
        table = rows[task]
        after = [r for r in table if r["test_after_shift"]]
        diffs = [r["champion_minus_frozen"][0] for r in after]
        first_as_of, last_as_of = history["as_of"].min(), history["as_of"].max()
        part = history[history["task"] == task]
        before_points = part[part["as_of"] == first_as_of].set_index("touchpoint")
        after_points = part[part["as_of"] == last_as_of].set_index("touchpoint")
        weights = truth["weights"][task]
        moved = []
        for tp in weights["before"]:
            if tp not in before_points.index or tp not in after_points.index:
                continue
            change = float(after_points.loc[tp, "points"] - before_points.loc[tp, "points"])
            effect_change = float(after_points.loc[tp, "effect"] - before_points.loc[tp, "effect"])
            truth_change = TASK_SIGN[task] * (weights["after"][tp] - weights["before"][tp])
            direction = "up" if truth_change >= MOVED else "down" if truth_change <= -MOVED else "same"
            moved.append({
                "touchpoint": tp,
                "points_frozen": round(float(before_points.loc[tp, "points"]), 2),
                "points_last": round(float(after_points.loc[tp, "points"]), 2), "points_change": round(change, 2),
                "logodds_change": round(effect_change, 3),
                "true_weight_before": weights["before"][tp], "true_weight_after": weights["after"][tp],
                "truth_direction": direction,
                "points_direction": ("n/a" if not np.isfinite(change) else  # n/a in one of the two tables
                                     "up" if change > 0 else "down" if change < 0 else "same"),
                "logodds_direction": ("n/a" if not np.isfinite(effect_change) else
                                      "up" if TASK_SIGN[task] * effect_change > 0 else "down"),
            })
        moved.sort(key=lambda m: -abs(m["points_change"]))
        changed = [m for m in moved if m["truth_direction"] != "same"]
        result["tasks"][task] = {
            "retrains": table,
            "after_shift": {
                "retrains": len(after),
                "mean_champion_minus_frozen": round(float(np.mean(diffs)), 4) if diffs else None,
                "share_champion_better": round(float(np.mean([d > 0 for d in diffs])), 2) if diffs else None,
                "last": after[-1] if after else None,
                "target_plus_0.03_met": (bool(np.mean(diffs) >= 0.03) if diffs else None) if task == "purchase" else None,
            },
            "references_after_shift": _references(after) if task == "purchase" else None,
            "spearman_before_regime_on_pre_shift_windows": [r["spearman_before"] for r in table if r["train_share_after_shift"] == 0],
            "spearman_after_regime_on_post_shift_windows": [r["spearman_after"] for r in table if r["train_share_after_shift"] == 1],
            "moved_most": moved[:6],
            "types_the_shift_moved": {m["touchpoint"]: {"truth": m["truth_direction"], "points": m["points_direction"],
                                                        "logodds": m["logodds_direction"]}
                                      for m in moved if m["truth_direction"] != "same"},
            "points_move_as_truth_says": (f"{sum(m['points_direction'] == m['truth_direction'] for m in changed)}"
                                          f"/{len(changed)}"),
        }
    seconds = [r["seconds"] for task in tasks for r in rows[task]]
    steps = {step: round(float(np.median([r["seconds_by_step"].get(step, 0.0) for task in tasks for r in rows[task]])), 1)
             for step in ("train", "compare", "drift", "track")}
    result["seconds_per_retrain"] = {"median": round(float(np.median(seconds)), 1), "max": round(float(np.max(seconds)), 1),
                                     "median_by_step": steps, "target_under_60s": bool(np.median(seconds) < 60)}
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    def strict(value):  # NaN -> null: strict JSON
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [strict(v) for v in value]
        if isinstance(value, float | np.floating):
            return float(value) if np.isfinite(value) else None
        return value

    line = json.dumps(strict(result), default=float)
    if args.json:
        Path(args.json).write_text(line + "\n", encoding="utf-8")
    print(line)


if __name__ == "__main__":
    main()
