"""How much is knowing the behaviour shift worth? The simulator's own purchase hazard as a scorer.

The simulated world (``signals.simulate``) draws purchases from a known daily hazard::

    logit h(t) = base_logits.purchase[status][segment] + sum_k w_k * D_k(t) + u_i

with ``w`` the before- or after-shift weights and ``u_i`` each customer's hidden purchase effect
(``world.latent``; no model sees it). This module scores labelled rows ``(customer_id, cutoff)``
with that hazard as the cutoff leaves it (the expected purchases over the label horizon if no
further touch came), so a benchmark can put learned models next to three references on the same
rows:

- ``oracle``: the truth with the weights of the regime in force (after the shift) and ``u``: what
  no model can beat, except by luck;
- ``oracle_old_weights``: the same hazard with the before-shift weights: the value of knowing the
  shift is ``AUC(oracle) - AUC(oracle_old_weights)``;
- ``oracle_without_u``: the after-shift hazard without the hidden effect: what the touchpoints,
  the status and the segment alone give.

``D_k(t)`` are recomputed here from the events with NumPy, independently of the feature
builders. The confounded world (saturating, segment-dependent terms) is refused.

    python benchmarks/shift_oracle.py [--customers 10000] [--from 2024-07-01] [--to 2025-11-01]

prints one JSON document: per monthly cutoff and pooled, the AUCs of the three references on the
eligible rows of the purchase task.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
STATUS_OF = {"purchase": 1, "renewal": 1, "cancellation": 2}   # the status a contract event leaves
STATUSES = ("prospect", "active", "churned")


def _seconds(values) -> np.ndarray:
    return (pd.DatetimeIndex(values).tz_convert("UTC").as_unit("s").asi8).astype(np.int64)


def true_purchase_scores(world, rows: pd.DataFrame, *, horizon_days: int, regime: str = "after",
                         hidden_effect: bool = True) -> np.ndarray:
    """The simulator's expected purchases in ``[cutoff, cutoff + horizon_days)`` per row, no touch after the cutoff.

    ``world``: a :class:`signals.simulate.SimulatedWorld` (events, customers, latent, truth).
    ``rows``: ``customer_id`` and ``cutoff`` (tz-aware). ``regime``: which true weights, ``before``
    or ``after`` the shift. ``hidden_effect``: add each customer's latent ``u`` (False: ``u = 0``).
    The status at a cutoff is the one the latest contract event before it left (none: prospect).
    """
    truth = world.truth
    if truth.get("confounding", {}).get("enabled"):
        raise ValueError("the oracle covers the plain world; the confounded world's hazard saturates")
    if regime not in ("before", "after"):
        raise ValueError(f"regime must be 'before' or 'after', got {regime!r}")
    events = world.events
    ids = pd.Index(events["customer_id"].cat.categories)
    row_code = ids.get_indexer(rows["customer_id"].astype(str))
    if (row_code < 0).any():
        raise ValueError(f"{int((row_code < 0).sum())} rows name customers the world does not have")
    row_cut = _seconds(rows["cutoff"])
    ev_code = events["customer_id"].cat.codes.to_numpy().astype(np.int64)
    ev_ts = _seconds(events["ts"])
    ev_type = events["touchpoint"].astype(str).to_numpy()
    types = truth["engagement_types"]
    weights = np.array([truth["weights"]["purchase"][regime][t] for t in types])
    half_life = truth["true_half_life_days"] * 86_400.0
    hazard = np.zeros(len(rows))
    status = np.zeros(len(rows), dtype=np.int64)
    kind = np.full(len(ev_type), -1, dtype=np.int64)
    for k, t in enumerate(types):
        kind[ev_type == t] = k
    contract = np.isin(ev_type, list(STATUS_OF))
    c_code, c_ts = ev_code[contract], ev_ts[contract]
    c_status = np.array([STATUS_OF[t] for t in ev_type[contract]], dtype=np.int64)
    touch = kind >= 0
    t_code, t_ts, t_weight = ev_code[touch], ev_ts[touch], weights[kind[touch]]
    for cut in np.unique(row_cut):
        here = row_cut == cut
        before = t_ts < cut
        per_customer = np.bincount(t_code[before], minlength=len(ids),
                                   weights=t_weight[before] * 0.5 ** ((cut - t_ts[before]) / half_life))
        hazard[here] = per_customer[row_code[here]]
        done = c_ts < cut
        code, when, left = c_code[done], c_ts[done], c_status[done]
        order = np.lexsort((when, code))
        code, left = code[order], left[order]
        last = np.ones(len(code), dtype=bool)                      # each customer's latest contract event
        last[:-1] = code[1:] != code[:-1]
        latest = np.zeros(len(ids), dtype=np.int64)
        latest[code[last]] = left[last]
        status[here] = latest[row_code[here]]
    segment = world.customers.set_index("customer_id")["segment"].astype(str).reindex(ids).to_numpy()[row_code]
    table = truth["base_logits"]["purchase"]
    base = np.array([table[STATUSES[s]][g] for s, g in zip(status, segment, strict=True)])
    if hidden_effect:
        latent = world.latent.set_index("customer_id")["purchase_effect"].reindex(ids).to_numpy()
        base = base + latent[row_code]
    decay = 0.5 ** (np.arange(horizon_days) / truth["true_half_life_days"])   # the hazard's touch term cools daily
    logits = base[:, None] + hazard[:, None] * decay[None, :]
    return (1.0 / (1.0 + np.exp(-logits))).sum(axis=1)


def reference_scores(world, rows: pd.DataFrame, *, horizon_days: int) -> dict[str, np.ndarray]:
    """The three references of the module docstring, by name."""
    return {
        "oracle": true_purchase_scores(world, rows, horizon_days=horizon_days),
        "oracle_old_weights": true_purchase_scores(world, rows, horizon_days=horizon_days, regime="before"),
        "oracle_without_u": true_purchase_scores(world, rows, horizon_days=horizon_days, hidden_effect=False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--from", dest="start", default=None, help="first cutoff (default: the shift date)")
    parser.add_argument("--to", dest="end", default="2025-11-01", help="last cutoff (its label horizon must fit)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "demo.yaml"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from signals.cutoffs import cutoff_grid
    from signals.labels import label_cutoffs
    from signals.modeling.metrics import roc_auc
    from signals.settings import load_settings
    from signals.simulate import simulate_crm

    settings = load_settings(args.config, [f"simulate.n_customers={args.customers}"])
    world = simulate_crm(settings)
    start = args.start or world.truth["shift_date"]
    grid = cutoff_grid(start, args.end, frequency="monthly", timezone=settings.timezone)
    ids = world.events["customer_id"].cat.categories
    rows = pd.DataFrame({"customer_id": pd.Categorical(np.repeat(ids, len(grid)), categories=ids),
                         "cutoff": np.tile(grid, len(ids))})
    labelled = label_cutoffs(world.events, rows, "purchase", labels=settings.labels, catalog=settings.catalog)
    labelled = labelled[labelled["eligible"]].reset_index(drop=True)
    horizon = settings.labels.purchase.horizon_days
    scores = reference_scores(world, labelled, horizon_days=horizon)
    y = labelled["label"].to_numpy()
    months = []
    for cut in grid:
        here = (labelled["cutoff"] == cut).to_numpy()
        aucs = {name: round(roc_auc(y[here], s[here]), 4) for name, s in scores.items()}
        months.append({"cutoff": f"{cut.tz_convert(settings.timezone):%Y-%m-%d}", "rows": int(here.sum()),
                       "positives": int(y[here].sum()), **aucs,
                       "value_of_knowing_the_shift": round(aucs["oracle"] - aucs["oracle_old_weights"], 4)})
    gaps = [m["value_of_knowing_the_shift"] for m in months]
    result = {"benchmark": "shift_oracle", "customers": args.customers, "events": len(world.events),
              "shift_date": world.truth["shift_date"], "horizon_days": horizon, "months": months,
              "value_of_knowing_the_shift": {"mean": round(float(np.mean(gaps)), 4),
                                             "median": round(float(np.median(gaps)), 4),
                                             "min": round(float(np.min(gaps)), 4), "max": round(float(np.max(gaps)), 4)},
              "pooled": {name: round(roc_auc(y, s), 4) for name, s in scores.items()}}
    line = json.dumps(result)
    if args.json:
        Path(args.json).write_text(line + "\n", encoding="utf-8")
    print(line)


if __name__ == "__main__":
    main()
