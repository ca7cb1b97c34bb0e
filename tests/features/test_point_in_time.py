"""Nothing at or after a cutoff may change that cutoff's features; the past always can."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.settings import load_settings

SPEC = FeatureSpec.from_settings(load_settings())
TYPES = list(SPEC.catalog)
CUSTOMERS = ["a", "b", "c"]
ORIGIN = pd.Timestamp("2024-01-01", tz="UTC")
CUTOFF = ORIGIN + pd.Timedelta(days=400)
CUTOFF_NS = CUTOFF.value
SPAN_NS = 800 * 86_400 * 10**9

event = st.tuples(
    st.sampled_from(CUSTOMERS),
    st.integers(0, SPAN_NS),                       # ns after ORIGIN: before and after the cutoff
    st.sampled_from(TYPES),
    st.floats(0, 5_000, allow_nan=False),
)
future_event = st.tuples(
    st.sampled_from(CUSTOMERS),
    st.integers(CUTOFF_NS - ORIGIN.value, SPAN_NS),  # at or after the cutoff
    st.sampled_from(TYPES),
    st.floats(0, 5_000, allow_nan=False),
)


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": [r[0] for r in rows],
        "ts": pd.to_datetime([ORIGIN.value + r[1] for r in rows], utc=True),
        "touchpoint": [r[2] for r in rows],
        "value": [r[3] if r[2] in ("purchase", "renewal") else 0.0 for r in rows],
    }, columns=["customer_id", "ts", "touchpoint", "value"])


def features(rows) -> pd.DataFrame:
    cutoffs = pd.DataFrame({"customer_id": CUSTOMERS, "cutoff": [CUTOFF] * len(CUSTOMERS)})
    out = build_features(frame(rows), cutoffs, SPEC)
    return out[feature_columns(out)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.lists(event, min_size=1, max_size=40),
    added=st.lists(future_event, max_size=10),
    data=st.data(),
)
def test_events_at_or_after_the_cutoff_never_change_its_features(base, added, data):
    future = [i for i, r in enumerate(base) if ORIGIN.value + r[1] >= CUTOFF_NS]
    removed = set(data.draw(st.lists(st.sampled_from(future), unique=True), label="removed")) if future else set()
    moved = {
        i: data.draw(st.integers(CUTOFF_NS - ORIGIN.value, SPAN_NS), label=f"move {i}")
        for i in future if i not in removed and data.draw(st.booleans(), label=f"move? {i}")
    }
    edited = [(r[0], moved.get(i, r[1]), r[2], r[3]) for i, r in enumerate(base) if i not in removed] + added
    pd.testing.assert_frame_equal(features(base), features(edited), check_exact=True)


@settings(max_examples=40, deadline=None)
@given(base=st.lists(event, max_size=30), customer=st.sampled_from(CUSTOMERS), touchpoint=st.sampled_from(TYPES),
       before_ns=st.integers(1, 10**9))
def test_an_event_just_before_the_cutoff_changes_its_features(base, customer, touchpoint, before_ns):
    extra = (customer, CUTOFF_NS - ORIGIN.value - before_ns, touchpoint, 100.0)
    old, new = features(base), features(base + [extra])
    row = CUSTOMERS.index(customer)
    assert new.loc[row, f"freq__{touchpoint}__7d"] == old.loc[row, f"freq__{touchpoint}__7d"] + 1
    assert new.loc[row, f"recency__{touchpoint}__days"] <= 1 / 86_400
    assert new.loc[row, f"temp__{touchpoint}__hl7d"] > old.loc[row, f"temp__{touchpoint}__hl7d"]
    others = [r for r in range(len(CUSTOMERS)) if r != row]
    pd.testing.assert_frame_equal(old.loc[others], new.loc[others], check_exact=True)


def test_the_cutoff_instant_itself_is_the_future():
    at = ("a", CUTOFF_NS - ORIGIN.value, "webinar", 0.0)
    just_before = ("a", CUTOFF_NS - ORIGIN.value - 1, "webinar", 0.0)
    assert features([at]).loc[0, "freq__webinar__7d"] == 0
    assert features([just_before]).loc[0, "freq__webinar__7d"] == 1
    assert np.isnan(features([at]).loc[0, "recency__webinar__days"])
