"""Seed 004's cohort retention on hand-made histories: cohort counts, censoring, both variants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.labels import churn_within
from signals.settings import load_settings
from signals.views import History, Rows, cohort_table, retention_by_month
from tests.features.conftest import random_events
from tests.views.conftest import history_table

EVENTS = history_table([
    ("a", "2025-01-05", "purchase"), ("a", "2025-02-10", "cancellation"),
    ("b", "2025-01-20", "purchase"), ("b", "2025-03-03", "cancellation"), ("b", "2025-04-10", "purchase"),  # win-back
    ("c", "2025-02-01", "purchase"),
    ("d", "2024-12-20", "webinar"), ("d", "2025-02-15", "purchase"),     # first seen in December, buys in February
    ("e", "2025-03-01", "webinar"),                                      # never buys: in no purchase cohort
])


def wide(table: pd.DataFrame) -> dict:
    return table.pivot(index="cohort", columns="months_since", values="retained").fillna(-1).astype(int).to_dict("index")


def test_contractual_cohorts_by_hand(settings):
    table = cohort_table(EVENTS, "2025-05-01", settings, mode="contractual")
    # status at the end of January .. April: a (Jan cohort) active, lapsed, lapsed, lapsed;
    # b (Jan) active, active, lapsed (cancelled 03-03), active again (won back 04-10)
    assert wide(table) == {"2025-01": {0: 2, 1: 1, 2: 0, 3: 1, 4: -1}, "2025-02": {0: 2, 1: 2, 2: 2, 3: -1, 4: -1}}
    sizes = table.drop_duplicates("cohort").set_index("cohort")["cohort_size"].to_dict()
    assert sizes == {"2025-01": 2, "2025-02": 2}
    assert table.loc[(table["cohort"] == "2025-02") & (table["months_since"] == 3), "rate"].isna().all()  # May not over


def test_non_contractual_counts_activity_in_the_lookback(settings):
    short = load_settings(overrides=["views.retention.lookback_days=40"])
    table = cohort_table(EVENTS, "2025-05-01", short, mode="non_contractual")
    # active = a purchase or renewal in the 40 days before the month's end
    # a: 01-05 -> end Jan yes (27 d), end Feb no (55 d). b: 01-20 yes, end Feb yes (39 d), end Mar no, 04-10 end Apr yes
    # c: 02-01 -> end Feb yes (28 d), end Mar no (59 d); d: 02-15 -> end Feb yes (14 d), end Mar no (45 d)
    assert wide(table) == {"2025-01": {0: 2, 1: 1, 2: 0, 3: 1, 4: -1}, "2025-02": {0: 2, 1: 0, 2: 0, 3: -1, 4: -1}}


def test_first_seen_cohorts_include_prospects(settings):
    by_touch = load_settings(overrides=["views.retention.cohort=first_seen"])
    table = cohort_table(EVENTS, "2025-05-01", by_touch, mode="contractual")
    sizes = table.drop_duplicates("cohort").set_index("cohort")["cohort_size"].to_dict()
    assert sizes == {"2024-12": 1, "2025-01": 2, "2025-02": 1, "2025-03": 1}
    # d is first seen in December and becomes a subscriber in February (month 2 of its cohort)
    assert wide(table)["2024-12"] == {0: 0, 1: 0, 2: 1, 3: 1, 4: 1}


def test_retention_rate_per_month_by_hand(settings):
    table = retention_by_month(EVENTS, "2025-05-01", settings, mode="contractual").set_index("month")
    # active at the start of February: a, b; at its end: b, c, d (a cancelled)
    assert table.loc["2025-02", ["active_at_start", "still_active", "active_at_end"]].tolist() == [2, 1, 3]
    assert table.loc["2025-02", "rate"] == 0.5
    assert table.loc["2025-03", ["active_at_start", "still_active"]].tolist() == [3, 2]   # b cancelled 03-03
    assert np.isnan(table.loc["2024-12", "rate"])                                        # nobody active yet


@pytest.mark.parametrize("mode", ["contractual", "non_contractual"])
def test_active_is_the_churn_labels_population(mode, settings):
    events = random_events(5)
    history = History(events, "2025-04-01", settings)
    instants = pd.date_range("2023-03-01", "2025-03-01", freq="MS", tz="UTC").as_unit("ns").asi8
    cust = np.repeat(history.known, len(instants))
    rows = Rows(cust, np.tile(instants, len(history.known)))
    cutoffs = history.frame(rows)
    labelled = churn_within(events, cutoffs, horizon_days=1, catalog=settings.catalog, mode=mode,
                            lookback_days=settings.labels.churn.lookback_days)
    assert np.array_equal(history.active(rows, mode=mode), labelled["eligible"].to_numpy())
