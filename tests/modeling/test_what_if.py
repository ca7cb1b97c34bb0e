"""The what-if of the learned points: one extra touch changes exactly what a full rebuild changes,
and its memory does not grow with the histories (issue 14, 6)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.modeling.points import INJECT_BEFORE_NS, what_if
from signals.settings import load_settings
from signals.simulate import simulate_crm

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def world():
    settings = load_settings(DEMO, ["simulate.n_customers=250", "simulate.seed=3"])
    return settings, simulate_crm(settings)


def _rebuild_with(events: pd.DataFrame, customers: pd.DataFrame, reference: pd.DataFrame, spec: FeatureSpec,
                  name: str, value: float) -> pd.DataFrame:
    """The reference rows rebuilt from scratch with one more ``name`` touch (each row its own copy)."""
    events = events.assign(customer_id=events["customer_id"].astype(str), touchpoint=events["touchpoint"].astype(str),
                           source=events["source"].astype(str))
    by_customer = dict(tuple(events.groupby("customer_id", sort=False)))
    copies, cutoffs = [], []
    for i, row in enumerate(reference.itertuples()):
        copy = f"row{i}"
        history = by_customer.get(row.customer_id, events.iloc[:0])
        extra = pd.DataFrame({"customer_id": [copy], "ts": [row.cutoff - pd.Timedelta(INJECT_BEFORE_NS, unit="ns")],
                              "touchpoint": [name], "value": [value], "source": ["what-if"]})
        copies += [history.assign(customer_id=copy), extra]
        cutoffs.append((copy, row.cutoff))
    rebuilt = pd.concat(copies, ignore_index=True)
    rebuilt["touchpoint"] = pd.Categorical(rebuilt["touchpoint"], categories=list(spec.touchpoints))
    table = customers.assign(customer_id=customers["customer_id"].astype(str)).set_index("customer_id")
    static = table.reindex(reference["customer_id"].astype(str)).reset_index(drop=True)
    static["customer_id"] = [c for c, _ in cutoffs]
    cut = pd.DataFrame(cutoffs, columns=["customer_id", "cutoff"])
    return build_features(rebuilt, cut, spec, customers=static)


def test_one_more_touch_changes_every_feature_as_a_full_rebuild_does(world):
    settings, sim = world
    spec = FeatureSpec.from_settings(settings)
    rng = np.random.default_rng(1)
    grid = pd.date_range("2023-02-01", "2025-12-01", freq="MS", tz="Asia/Tokyo").tz_convert("UTC")
    ids = sim.customers["customer_id"].astype(str).to_numpy()
    reference = pd.DataFrame({"customer_id": rng.choice(ids, 40), "cutoff": rng.choice(grid, 40)})
    # edge cases: the very first cutoff (little or no history) and a customer's first events
    first = sim.events.groupby("customer_id", observed=True)["ts"].min()
    early = first.index[0]
    reference.loc[len(reference)] = [str(early), first.iloc[0].ceil("D") + pd.Timedelta(days=1)]
    reference.loc[len(reference)] = [str(early), grid[0]]
    reference["cutoff"] = pd.to_datetime(reference["cutoff"], utc=True)
    design = what_if(sim.events, reference, spec, customers=sim.customers)
    for name in spec.touchpoints:
        full = _rebuild_with(sim.events, sim.customers, reference, spec, name, design.values.get(name, 0.0))
        mine = design.variant(name, ("own", "shared"))
        for column in feature_columns(full):
            if isinstance(full[column].dtype, pd.CategoricalDtype):
                assert (full[column].astype(str).to_numpy() == mine[column].astype(str).to_numpy()).all(), column
                continue
            np.testing.assert_allclose(mine[column].to_numpy(dtype=float), full[column].to_numpy(dtype=float),
                                       rtol=1e-9, atol=1e-9, err_msg=f"{name}: {column}")
        # the split: own changes only the type's own (and prior-weighted) features, shared only the others
        own = design.changes[name]["own"]
        assert all(name in c or c.startswith("temp_prior") for c in own)
        assert all("__all__" in c or "__customer__" in c or "__company__" in c for c in design.changes[name]["shared"])


def test_the_what_if_memory_does_not_grow_with_the_histories():
    """60 customers with 20,000 events each: the old what-if copied each history once per type
    (13 x 1.2M rows); this one holds only the reference rows' features and a few counts."""
    spec = FeatureSpec.from_settings(load_settings())
    rng = np.random.default_rng(0)
    n_customers, per_customer = 60, 20_000
    types = [t for t, tp in spec.catalog.items() if tp.role == "engagement"]
    start = pd.Timestamp("2020-01-01", tz="UTC").value
    span = 5 * 365 * 86_400 * 10**9
    events = pd.DataFrame({
        "customer_id": np.repeat([f"c{i:03d}" for i in range(n_customers)], per_customer),
        "ts": pd.to_datetime(np.sort(rng.integers(start, start + span, n_customers * per_customer)) // 10**9 * 10**9,
                             utc=True),
        "touchpoint": pd.Categorical(rng.choice(types, n_customers * per_customer), categories=list(spec.touchpoints)),
        "value": 0.0,
    })
    reference = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(n_customers)],
                              "cutoff": pd.Timestamp("2024-06-01", tz="UTC")})
    from signals.features.window import index_events

    index = index_events(events, spec.touchpoints)
    X = build_features(None, reference, spec, index=index)
    tracemalloc.start()
    design = what_if(None, reference, spec, index=index, X=X)
    frame, _ = design.stacked()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    history_bytes = len(events) * (8 + 8 + 2 + 8)  # one copy of ts, customer, type, value
    assert peak < history_bytes, (peak, history_bytes)  # less than one copy; the old what-if made 13
    assert len(frame) % len(reference) == 0 and len(frame) <= len(reference) * (1 + 3 * len(spec.touchpoints))
