"""The benchmark's NumPy and pandas peers compute the same features as signals (to 1e-9)."""

from __future__ import annotations

import numpy as np
from benchmarks.feature_peers import numpy_peer, pandas_peer, subset_columns, subset_spec

from signals.features.matrix import build_features, feature_columns
from signals.schemas import check_cutoffs, check_events
from tests.features.conftest import month_cutoffs, random_events


def test_peers_build_the_subset_like_signals(spec):
    events = check_events(random_events(13, n_customers=40, n_events=2_000), spec.touchpoints)
    cutoffs = check_cutoffs(month_cutoffs(events, 13))
    fast = build_features(events, cutoffs, subset_spec(spec, threads=2))
    assert set(subset_columns(spec)) <= set(feature_columns(fast))
    for peer in (numpy_peer(events, cutoffs, spec, threads=2), pandas_peer(events, cutoffs, spec)):
        assert feature_columns(peer) == subset_columns(spec)
        assert (peer["customer_id"].astype(str).to_numpy() == cutoffs["customer_id"].astype(str).to_numpy()).all()
        for column in subset_columns(spec):
            np.testing.assert_allclose(peer[column].to_numpy(float), fast[column].to_numpy(float),
                                       rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=column)
