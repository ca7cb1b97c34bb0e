"""Labels read only [cutoff, cutoff + horizon) and the eligibility rules are as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.dataset import build_training_set
from signals.features.spec import FeatureSpec
from signals.labels import churn_within, horizon_days, label_cutoffs, purchase_within
from signals.settings import load_settings

SETTINGS = load_settings()
CATALOG = SETTINGS.catalog
T = pd.Timestamp("2025-06-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def events_of(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint"]).assign(value=1.0)


def cutoffs_for(*ids) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(ids), "cutoff": [T] * len(ids)})


def by_customer(frame: pd.DataFrame) -> dict:
    return {r.customer_id: (bool(r.eligible), None if np.isnan(r.label) else int(r.label)) for r in frame.itertuples()}


def test_contractual_churn_population_and_horizon_edges():
    events = events_of(
        ("active_stays", T - 100 * DAY, "purchase"),
        ("active_churns", T - 100 * DAY, "purchase"), ("active_churns", T + 89 * DAY, "cancellation"),
        ("churns_too_late", T - 100 * DAY, "renewal"), ("churns_too_late", T + 90 * DAY, "cancellation"),
        ("churns_at_cutoff", T - 100 * DAY, "purchase"), ("churns_at_cutoff", T, "cancellation"),
        ("already_gone", T - 100 * DAY, "purchase"), ("already_gone", T - DAY, "cancellation"),
        ("won_back", T - 100 * DAY, "cancellation"), ("won_back", T - 10 * DAY, "purchase"),
        ("prospect", T - 5 * DAY, "webinar"),
    )
    ids = ["active_stays", "active_churns", "churns_too_late", "churns_at_cutoff", "already_gone", "won_back", "prospect"]
    labels = by_customer(churn_within(events, cutoffs_for(*ids), horizon_days=90, catalog=CATALOG))
    assert labels == {
        "active_stays": (True, 0),
        "active_churns": (True, 1),
        "churns_too_late": (True, 0),        # T + 90 days is outside [T, T + 90)
        "churns_at_cutoff": (True, 1),       # the cutoff instant belongs to the future
        "already_gone": (False, None),
        "won_back": (True, 0),
        "prospect": (False, None),
    }


def test_non_contractual_churn_is_silence_after_activity():
    events = events_of(
        ("quiet_after", T - 30 * DAY, "purchase"),
        ("buys_again", T - 30 * DAY, "purchase"), ("buys_again", T + 10 * DAY, "purchase"),
        ("lapsed", T - 400 * DAY, "purchase"),
    )
    labels = by_customer(churn_within(events, cutoffs_for("quiet_after", "buys_again", "lapsed"), horizon_days=90,
                                      catalog=CATALOG, mode="non_contractual", lookback_days=365))
    assert labels == {"quiet_after": (True, 1), "buys_again": (True, 0), "lapsed": (False, None)}


def test_purchase_signal_excludes_customers_in_the_middle_of_buying():
    events = events_of(
        ("buys", T - 5 * DAY, "webinar"), ("buys", T + 59 * DAY, "purchase"),
        ("buys_late", T + 60 * DAY, "purchase"),
        ("just_bought", T - 10 * DAY, "purchase"), ("just_bought", T + 5 * DAY, "purchase"),
        ("bought_long_ago", T - 91 * DAY, "purchase"),
    )
    labels = by_customer(purchase_within(events, cutoffs_for("buys", "buys_late", "just_bought", "bought_long_ago", "new"),
                                         horizon_days=60, catalog=CATALOG, quiet_days=90))
    assert labels == {
        "buys": (True, 1), "buys_late": (True, 0), "just_bought": (False, None),
        "bought_long_ago": (True, 0), "new": (True, 0),
    }


def test_labels_ignore_events_outside_the_label_window():
    base = events_of(("a", T - 100 * DAY, "purchase"))
    later = pd.concat([base, events_of(("a", T + 200 * DAY, "cancellation"), ("a", T + 300 * DAY, "purchase"))])
    for events in (base, later):
        assert by_customer(churn_within(events, cutoffs_for("a"), horizon_days=90, catalog=CATALOG)) == {"a": (True, 0)}


def test_label_settings_dispatch_and_errors():
    events = events_of(("a", T - 100 * DAY, "purchase"))
    out = label_cutoffs(events, cutoffs_for("a"), "purchase", labels=SETTINGS.labels, catalog=CATALOG)
    assert list(out.columns) == ["customer_id", "cutoff", "eligible", "label"]
    assert horizon_days("churn", SETTINGS.labels) == 90 and horizon_days("purchase", SETTINGS.labels) == 60
    with pytest.raises(ValueError, match="task must be one of"):
        label_cutoffs(events, cutoffs_for("a"), "upsell", labels=SETTINGS.labels, catalog=CATALOG)
    no_cancel = {k: v for k, v in CATALOG.items() if v.role != "cancellation"}
    with pytest.raises(ValueError, match="cancellation"):
        churn_within(events, cutoffs_for("a"), horizon_days=90, catalog=no_cancel)


def test_training_set_keeps_eligible_rows_with_features_from_the_past_only():
    events = events_of(
        ("a", T - 100 * DAY, "purchase"), ("a", T - 3 * DAY, "sales_visit"), ("a", T + 5 * DAY, "cancellation"),
        ("b", T - 100 * DAY, "purchase"),
        ("c", T - 3 * DAY, "webinar"),
    )
    spec = FeatureSpec.from_settings(SETTINGS)
    train = build_training_set(events, cutoffs_for("a", "b", "c"), spec, task="churn", labels=SETTINGS.labels)
    assert train["customer_id"].tolist() == ["a", "b"]
    assert train["label"].tolist() == [1, 0]
    assert train.loc[0, "freq__cancellation__365d"] == 0      # the future cancellation is only in the label
    assert train.loc[0, "freq__sales_visit__7d"] == 1
