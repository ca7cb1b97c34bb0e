"""Model figures on the simulator, where the true point weights are known.

For each task (purchase, churn): train on the default config's cutoff grid with the rolling-origin
backtest, then report on the test cutoffs of every origin (never seen while fitting) every model
and baseline, pooled over origins with 95% intervals over origins x customers; the learned points
(own effect of one more touch, refit intervals) next to the true weights, their Spearman rank
correlation, whether the zero-weight type's interval covers 0, and the learned vs true temperature
half-life. Prints readable tables, then one JSON line:

    python benchmarks/simulator_models.py [--customers 50000] [--set key=value ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--config", default=None, help="YAML config (default: the built-in defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key.path=value override")
    parser.add_argument("--json", default=None, help="also write the JSON result to this file")
    args = parser.parse_args()

    from signals.modeling.training import LEARNED_TEMPERATURE, MODEL_NAME, fit_task, truth_agreement
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    settings = load_settings(args.config, [f"simulate.n_customers={args.customers}", *args.overrides])
    started = time.perf_counter()
    world = simulate_crm(settings)
    result = {"benchmark": "simulator_models", "customers": args.customers, "events": len(world.events),
              "simulate_seconds": round(time.perf_counter() - started, 1), "shift_date": world.truth["shift_date"],
              "tasks": {}}
    for task in ("purchase", "churn"):
        started = time.perf_counter()
        trained = fit_task(world.events, settings, task=task, customers=world.customers,
                           progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
        seconds = time.perf_counter() - started
        agreement = truth_agreement(trained, world.truth)
        metrics = {f"{r.model}.{r.metric}": [round(r.estimate, 4), round(r.low, 4), round(r.high, 4)]
                   for r in trained.metrics.itertuples()}
        auc = {m: trained.metric(m, "roc_auc") for m in trained.metrics["model"].unique()}
        baselines = [m for m in auc if m != MODEL_NAME]
        versus = {r.baseline: [round(r.estimate, 4), round(r.low, 4), round(r.high, 4), round(r.share_above_0, 3)]
                  for r in trained.versus.itertuples()}
        points = trained.points.set_index("touchpoint")
        zero = [t for t, w in agreement["true_weights"].items() if w == 0]
        covered = [t for t in zero if points.loc[t, "own_points_refit_low"] <= 0 <= points.loc[t, "own_points_refit_high"]]
        signs = [t for t, w in agreement["true_weights"].items() if w != 0]
        right = [t for t in signs if np.sign(points.loc[t, "own_points"]) == np.sign(agreement["true_weights"][t])]
        claims = {
            "lightgbm_beats_every_baseline_on_auc": all(auc[MODEL_NAME] > auc[m] for m in baselines),
            "lightgbm_beats_every_baseline_paired_interval_above_0": bool((trained.versus["low"] > 0).all()),
            "learned_temperature_beats_prior_temperature_on_auc": auc[LEARNED_TEMPERATURE] > auc["prior_temperature"],
            "spearman_at_least_0.9": agreement["spearman"] >= 0.9,
            "zero_weight_intervals_cover_0": f"{len(covered)}/{len(zero)}",
            "signs_right": f"{len(right)}/{len(signs)}",
        }
        by_origin = trained.metrics_by_origin
        auc_by_origin = by_origin[by_origin["metric"] == "roc_auc"]
        result["tasks"][task] = {
            "split": trained.split.describe(), "origins": [f"{s.origin:%Y-%m-%d}" for s in trained.splits],
            "rows": trained.rows, "trees": trained.model.best_iteration_,
            "metrics": metrics, "auc_minus_baseline": versus, "truth": agreement, "claims": claims,
            "seconds": round(seconds, 1), "seconds_by_step": trained.seconds,
            "auc_by_origin": {m: [round(v, 4) for v in g.sort_values("origin")["estimate"]]
                              for m, g in auc_by_origin.groupby("model")},
            "points": trained.points[["touchpoint", "status", "prior_points", "own_points", "own_points_refit_low",
                                      "own_points_refit_high", "shared_points", "total_points", "own_logodds"]]
            .round(3).to_dict(orient="records"),
        }
        _print_task(task, trained, agreement, claims)
    line = json.dumps(result, default=float)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(line + "\n")
    print(line)


def _print_task(task, trained, agreement, claims) -> None:
    table = trained.metrics.pivot(index="model", columns="metric", values="estimate")
    auc = trained.metrics[trained.metrics["metric"] == "roc_auc"].set_index("model")
    print(f"\n== {task}: {trained.split.describe()} rows {trained.rows}")
    print(f"{'model':22s} {'ROC AUC [95%]':>24s} {'PR AUC':>8s} {'lift@10%':>9s} {'Brier':>8s} {'ECE':>8s}")
    for model in auc.sort_values("estimate", ascending=False).index:
        a = auc.loc[model]
        r = table.loc[model]
        print(f"{model:22s} {a.estimate:8.3f} [{a.low:.3f}, {a.high:.3f}] {r.pr_auc:8.3f} {r.top_decile_lift:9.2f} "
              f"{r.brier:8.4f} {r.ece:8.4f}")
    for r in trained.versus.sort_values("estimate").itertuples():
        print(f"  lightgbm - {r.baseline:20s} {r.estimate:+.4f} [{r.low:+.4f}, {r.high:+.4f}]  "
              f"(above 0 in {r.share_above_0:.0%} of paired rounds)")
    print(f"{'touchpoint':14s} {'prior':>6s} {'own points [95% refit]':>24s} {'shared':>7s} {'true weight':>12s}")
    true = agreement["true_weights"]
    table = trained.points.assign(_o=trained.points["own_points"].fillna(-1e9)).sort_values("_o", ascending=False)
    for r in table.itertuples():
        weight = f"{true[r.touchpoint]:+.3f}" if r.touchpoint in true else ""
        if r.status != "defined":
            print(f"{r.touchpoint:14s} {r.prior_points:6g} {r.status:>24s}")
            continue
        print(f"{r.touchpoint:14s} {r.prior_points:6g} {r.own_points:8.1f} [{r.own_points_refit_low:6.1f}, "
              f"{r.own_points_refit_high:6.1f}] {r.shared_points:+7.1f} {weight:>12s}")
    print(f"Spearman(learned, true) = {agreement['spearman']:.3f} ({agreement['regime']} the shift); half-life "
          f"learned {agreement['half_life_days']:g} vs true {agreement['true_half_life_days']:g} days; "
          f"claims {claims}")


if __name__ == "__main__":
    main()
