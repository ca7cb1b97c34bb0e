"""The what-if knows the value families: one more valued touch changes the sum, mean and last value
per window exactly as a full rebuild does (a touch in the same second included)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals.features.matrix import feature_columns
from signals.modeling.points import INJECT_BEFORE_NS, what_if
from tests.features.conftest import random_events
from tests.features.test_value import valued_spec
from tests.modeling.test_what_if import _rebuild_with


def test_one_more_valued_touch_changes_the_value_features_as_a_full_rebuild_does():
    spec = valued_spec(families=("frequency", "value"), windows_days=(7, 90))
    rng = np.random.default_rng(2)
    events = random_events(11, n_customers=25, n_events=1500)
    events["value"] = np.round(rng.gamma(2.0, 300.0, len(events)), 2)
    cut = pd.Timestamp("2024-09-01", tz="UTC")
    ids = sorted(events["customer_id"].unique())
    reference = pd.DataFrame({"customer_id": ids, "cutoff": cut})
    # c000 had a sales visit in the very second of the injected one, worth more; c001 one worth less
    tie = pd.DataFrame({"customer_id": [ids[0], ids[1]], "ts": [cut - pd.Timedelta(INJECT_BEFORE_NS // 2, unit="ns")] * 2,
                        "touchpoint": ["sales_visit"] * 2, "value": [1e6, 0.5]})
    events = pd.concat([events, tie], ignore_index=True).assign(source="crm")
    customers = pd.DataFrame({"customer_id": ids})
    design = what_if(events, reference, spec)
    for name in ("sales_visit", "inquiry", "purchase", "webinar"):
        full = _rebuild_with(events, customers, reference, spec, name, design.values.get(name, 0.0))
        mine = design.variant(name, ("own", "shared"))
        for column in feature_columns(full):
            np.testing.assert_allclose(mine[column].to_numpy(dtype=float), full[column].to_numpy(dtype=float),
                                       rtol=1e-9, atol=1e-9, err_msg=f"{name}: {column}")
    last = design.variant("sales_visit", ("own",))["value_last__sales_visit__7d"]
    assert last.iloc[0] == 1e6 and last.iloc[1] == design.values["sales_visit"]
