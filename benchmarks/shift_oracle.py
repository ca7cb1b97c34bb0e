"""How much is knowing the behaviour shift worth? The simulator's own purchase hazard as a scorer.

The simulated world (``signals.simulate``) draws purchases from a known daily hazard::

    logit h(t) = base_logits.purchase[status][segment] + sum_k w_k * D_k(t) + u_i

with ``w`` the before- or after-shift weights and ``u_i`` each customer's hidden purchase effect
(``world.latent``; no model sees it). This module scores labelled rows ``(customer_id, cutoff)``
with that hazard (the expected purchases over the label horizon), so a benchmark can put learned
models next to five references on the same rows:

- ``oracle``: the truth with the weights of the regime in force (after the shift) and ``u``, as
  the cutoff leaves it. Not a strict upper bound: a model may read from the history that touches
  are still coming (an interest episode under way), which this score leaves out. (Adding the
  touches that actually came would leak the label: active subscribers get more visits and calls,
  so the touches after a purchase reveal it.)
- ``oracle_old_weights``: the same hazard with the before-shift weights: the value of knowing the
  shift, to the truth itself, is ``AUC(oracle) - AUC(oracle_old_weights)``;
- ``oracle_without_u``: the after-shift hazard without the hidden effect: what the touchpoints,
  the status and the segment alone give;
- ``informed`` / ``informed_old_world``: the oracle plus the touches *expected* in the horizon
  from each customer's latent engagement, sales coverage and interest episodes, with the weights
  and the touch rates of after / before the shift (:func:`informed_purchase_scores`). Their
  difference is what knowing the shift (weights and channel mix) is worth to a model that has
  learned everything else: the limit of "re-trained minus frozen" when data is plentiful.

``D_k(t)`` are recomputed here from the events with NumPy, independently of the feature
builders. The confounded world (saturating, segment-dependent terms) is refused.

    python benchmarks/shift_oracle.py [--customers 10000] [--from 2024-07-01] [--to 2025-11-01] [--config FILE]

prints one JSON document: per monthly cutoff and pooled, the AUCs of the five references on the
eligible rows of the purchase task.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from signals.simulate import STATUSES

ROOT = Path(__file__).resolve().parents[1]
STATUS_OF = {"purchase": 1, "renewal": 1, "cancellation": 2}   # the status a contract event leaves (STATUSES)


def _seconds(values) -> np.ndarray:
    return (pd.DatetimeIndex(values).tz_convert("UTC").as_unit("s").asi8).astype(np.int64)


@dataclass
class CutoffState:
    """What the simulator knows of each row at its cutoff."""

    code: np.ndarray       # the customer's position in the world's ids
    decayed: np.ndarray    # (rows, K) D_k at the cutoff, K = truth["engagement_types"]
    status: np.ndarray     # 0 prospect, 1 active, 2 churned: left by the latest contract event before the cutoff
    segment: np.ndarray    # the customer's segment name
    cutoff: np.ndarray     # seconds


def cutoff_state(world, rows: pd.DataFrame) -> CutoffState:
    """``D_k``, status and segment of each ``(customer_id, cutoff)`` row, from the events before the cutoff."""
    truth = world.truth
    if truth.get("confounding", {}).get("enabled"):
        raise ValueError("the oracle covers the plain world; the confounded world's hazard saturates")
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
    half_life = truth["true_half_life_days"] * 86_400.0
    decayed = np.zeros((len(rows), len(types)))
    status = np.zeros(len(rows), dtype=np.int64)
    kind = np.full(len(ev_type), -1, dtype=np.int64)
    for k, t in enumerate(types):
        kind[ev_type == t] = k
    contract = np.isin(ev_type, list(STATUS_OF))
    c_code, c_ts = ev_code[contract], ev_ts[contract]
    c_status = np.array([STATUS_OF[t] for t in ev_type[contract]], dtype=np.int64)
    touch = kind >= 0
    t_code, t_ts, t_kind = ev_code[touch], ev_ts[touch], kind[touch]
    for cut in np.unique(row_cut):
        here = row_cut == cut
        before = t_ts < cut
        flat = np.bincount(t_code[before] * len(types) + t_kind[before], minlength=len(ids) * len(types),
                           weights=0.5 ** ((cut - t_ts[before]) / half_life))
        decayed[here] = flat.reshape(len(ids), len(types))[row_code[here]]
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
    return CutoffState(code=row_code, decayed=decayed, status=status, segment=segment, cutoff=row_cut)


def _base_logits(world, state: CutoffState, hidden_effect: bool) -> np.ndarray:
    table = world.truth["base_logits"]["purchase"]
    base = np.array([table[STATUSES[s]][g] for s, g in zip(state.status, state.segment, strict=True)])
    if hidden_effect:
        ids = world.events["customer_id"].cat.categories
        base = base + world.latent.set_index("customer_id")["purchase_effect"].reindex(ids).to_numpy()[state.code]
    return base


def _expected_purchases(logits: np.ndarray) -> np.ndarray:
    return expit(logits).sum(axis=1)


def true_purchase_scores(world, rows: pd.DataFrame, *, horizon_days: int, regime: str = "after",
                         hidden_effect: bool = True, state: CutoffState | None = None) -> np.ndarray:
    """The simulator's expected purchases in ``[cutoff, cutoff + horizon_days)`` per row, no touch after the cutoff.

    ``world``: a :class:`signals.simulate.SimulatedWorld` (events, customers, latent, truth).
    ``rows``: ``customer_id`` and ``cutoff`` (tz-aware). ``regime``: which true weights, ``before``
    or ``after`` the shift. ``hidden_effect``: add each customer's latent ``u`` (False: ``u = 0``).
    The status at a cutoff is the one the latest contract event before it left (none: prospect).
    ``state``: :func:`cutoff_state` of the rows, if already computed.
    """
    if regime not in ("before", "after"):
        raise ValueError(f"regime must be 'before' or 'after', got {regime!r}")
    truth = world.truth
    state = state if state is not None else cutoff_state(world, rows)
    weights = np.array([truth["weights"]["purchase"][regime][t] for t in truth["engagement_types"]])
    decay = 0.5 ** (np.arange(horizon_days) / truth["true_half_life_days"])   # the hazard's touch term cools daily
    logits = _base_logits(world, state, hidden_effect)[:, None] + (state.decayed @ weights)[:, None] * decay[None, :]
    return _expected_purchases(logits)


def informed_purchase_scores(world, rows: pd.DataFrame, *, horizon_days: int, regime: str = "after",
                             state: CutoffState | None = None) -> np.ndarray:
    """Expected purchases over the horizon for someone who knows the world's state at the cutoff and its rules.

    On top of :func:`true_purchase_scores` (with ``u``), the touch term of each day adds the
    touches *expected* from the cutoff on: the simulator's rates for the customer's status and
    segment, its engagement and sales-coverage multipliers (``world.latent``) and its interest
    episodes (``world.episodes``, known in advance). ``regime`` picks the weights **and** the rates
    (the channel mix) of one side of the shift: ``before`` is the best a model frozen before the
    shift could believe, ``after`` the best a re-trained one could, so their AUC difference is
    what knowing the shift is worth to a model that has learned everything else. Expectations enter
    the logit (the touches' randomness is averaged first); the status is held at the cutoff's.
    """
    if regime not in ("before", "after"):
        raise ValueError(f"regime must be 'before' or 'after', got {regime!r}")
    truth = world.truth
    state = state if state is not None else cutoff_state(world, rows)
    types = truth["engagement_types"]
    weights = np.array([truth["weights"]["purchase"][regime][t] for t in types])
    ids = world.events["customer_id"].cat.categories
    latent = world.latent.set_index("customer_id").reindex(ids)
    rates = np.array([[truth["touch_rates_per_year"][regime][t][s] for s in STATUSES] for t in types]) / 365.25
    rate = rates[:, state.status].T                                                   # (rows, K) per day
    segment_mult = truth["segment_rate_multipliers"]
    rate = rate * np.array([[segment_mult.get(t, {}).get(g, 1.0) for t in types] for g in state.segment])
    covered = np.isin(types, truth["heterogeneity"]["coverage_multiplier"]["applies_to"])
    rate = rate * np.where(covered[None, :], latent["coverage"].to_numpy()[state.code][:, None], 1.0)
    initiated = np.isin(types, truth["customer_initiated"])
    usual = rate * np.where(initiated[None, :], latent["engagement"].to_numpy()[state.code][:, None], 1.0)
    extra = rate * np.where(initiated[None, :], truth["episodes"]["rate_multiplier"] - 1.0, 0.0)
    in_episode = _episode_days(world, state, horizon_days)                             # (rows, days) 0/1
    daily = (usual @ weights)[:, None] + in_episode * (extra @ weights)[:, None]        # weighted touches a day
    half = truth["true_half_life_days"]
    lag = np.arange(horizon_days)[None, :] - np.arange(horizon_days)[:, None]          # day d minus day j
    spread = np.where(lag > 0, 0.5 ** ((lag - 0.5) / half), 0.0)                       # a day's touches, mid-day
    decay = 0.5 ** (np.arange(horizon_days) / half)
    hazard = (state.decayed @ weights)[:, None] * decay[None, :] + daily @ spread
    return _expected_purchases(_base_logits(world, state, True)[:, None] + hazard)


def _episode_days(world, state: CutoffState, horizon_days: int) -> np.ndarray:
    """1 where the row's customer is in an interest episode on that day of the horizon."""
    episodes = world.episodes
    ids = pd.Index(world.events["customer_id"].cat.categories)
    e_code = ids.get_indexer(episodes["customer_id"].astype(str))
    e_start, e_end = _seconds(episodes["start"]), _seconds(episodes["end"])
    on = np.zeros((len(state.code), horizon_days))
    for cut in np.unique(state.cutoff):
        here = np.flatnonzero(state.cutoff == cut)
        span = (e_start < cut + horizon_days * 86_400) & (e_end > cut)
        lo = np.clip(np.floor((e_start[span] - cut) / 86_400), 0, horizon_days).astype(np.int64)
        hi = np.clip(np.ceil((e_end[span] - cut) / 86_400), 0, horizon_days).astype(np.int64)
        steps = np.zeros((len(ids), horizon_days + 1))
        np.add.at(steps, (e_code[span], lo), 1.0)
        np.add.at(steps, (e_code[span], hi), -1.0)
        on[here] = (np.cumsum(steps, axis=1)[:, :horizon_days] > 0)[state.code[here]]
    return on


def reference_scores(world, rows: pd.DataFrame, *, horizon_days: int) -> dict[str, np.ndarray]:
    """The five references of the module docstring, by name."""
    state = cutoff_state(world, rows)
    return {
        "oracle": true_purchase_scores(world, rows, horizon_days=horizon_days, state=state),
        "oracle_old_weights": true_purchase_scores(world, rows, horizon_days=horizon_days, regime="before", state=state),
        "oracle_without_u": true_purchase_scores(world, rows, horizon_days=horizon_days, hidden_effect=False,
                                                 state=state),
        "informed": informed_purchase_scores(world, rows, horizon_days=horizon_days, state=state),
        "informed_old_world": informed_purchase_scores(world, rows, horizon_days=horizon_days, regime="before",
                                                       state=state),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--from", dest="start", default=None, help="first cutoff (default: the shift date)")
    parser.add_argument("--to", dest="end", default=None,
                        help="last cutoff (default: the last one whose label horizon ends by simulate.end)")
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
    if not (args.start or world.truth["shift_date"]):
        parser.error("this world has no behaviour shift (simulate.shift_date is null): set one, or pass --from")
    start = args.start or world.truth["shift_date"]
    horizon = settings.labels.purchase.horizon_days
    end = args.end or (pd.Timestamp(settings.simulate.end) - pd.Timedelta(days=horizon)).date()
    grid = cutoff_grid(start, end, frequency="monthly", timezone=settings.timezone)
    ids = world.events["customer_id"].cat.categories
    rows = pd.DataFrame({"customer_id": pd.Categorical(np.repeat(ids, len(grid)), categories=ids),
                         "cutoff": np.tile(grid, len(ids))})
    labelled = label_cutoffs(world.events, rows, "purchase", labels=settings.labels, catalog=settings.catalog)
    labelled = labelled[labelled["eligible"]].reset_index(drop=True)
    scores = reference_scores(world, labelled, horizon_days=horizon)
    y = labelled["label"].to_numpy()
    months = []
    for cut in grid:
        here = (labelled["cutoff"] == cut).to_numpy()
        aucs = {name: round(roc_auc(y[here], s[here]), 4) for name, s in scores.items()}
        months.append({"cutoff": f"{cut.tz_convert(settings.timezone):%Y-%m-%d}", "rows": int(here.sum()),
                       "positives": int(y[here].sum()), **aucs,
                       "value_of_knowing_the_shift": round(aucs["oracle"] - aucs["oracle_old_weights"], 4),
                       "value_of_knowing_the_shift_informed": round(aucs["informed"] - aucs["informed_old_world"], 4)})
    def spread(key: str) -> dict[str, float]:
        values = [m[key] for m in months]
        return {"mean": round(float(np.mean(values)), 4), "median": round(float(np.median(values)), 4),
                "min": min(values), "max": max(values)}

    result = {"benchmark": "shift_oracle", "customers": args.customers, "events": len(world.events),
              "shift_date": world.truth["shift_date"], "horizon_days": horizon, "months": months,
              "value_of_knowing_the_shift": spread("value_of_knowing_the_shift"),
              "value_of_knowing_the_shift_informed": spread("value_of_knowing_the_shift_informed"),
              "pooled": {name: round(roc_auc(y, s), 4) for name, s in scores.items()}}
    line = json.dumps(result)
    if args.json:
        Path(args.json).write_text(line + "\n", encoding="utf-8")
    print(line)


if __name__ == "__main__":
    main()
