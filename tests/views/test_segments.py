"""Seed 003's segments on hand-made histories: every boundary worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.settings import load_settings
from signals.views import SEGMENTS, History, choose_segment_thresholds, segment_evidence, segments
from tests.views.conftest import DAY, SECOND, history_table

T = pd.Timestamp("2025-07-01", tz="UTC")
RULES = ["views.segments.window_days=90", "views.segments.new_days=180", "views.segments.nurture_min_contacts=3",
         "views.segments.stop_max_peak_contacts=1", "views.segments.follow_up_max_ratio=0.5"]


@pytest.fixture(scope="module")
def rules():
    return load_settings(overrides=RULES)


def hand_made() -> pd.DataFrame:
    old = T - 400 * DAY
    rows = [
        ("new_edge", T - 180 * DAY + SECOND, "webinar"),                 # tenure just under 180 days: new
        ("old_edge", T - 180 * DAY, "webinar"),                          # exactly 180 days: judged; peak 1
        *[("nurture", t, "call") for t in (old, T - 90 * DAY, T - 30 * DAY, T - SECOND, T)],  # T itself is the future
        *[("two_recent", t, "web_visit") for t in (old, T - 90 * DAY - SECOND, T - 30 * DAY, T - SECOND)],
        *[("newsletters", old + k * 30 * DAY, "newsletter") for k in range(13)],  # mass mailings are no contact
        *[("fading", t, "email_open") for t in (old, T - 170 * DAY, T - 150 * DAY, T - 100 * DAY, T - 10 * DAY)],
        *[("fading_less", t, "email_open") for t in (old, T - 170 * DAY, T - 150 * DAY, T - 100 * DAY,
                                                     T - 10 * DAY, T - 5 * DAY)],
    ]
    return history_table(rows)


def test_segment_boundaries_by_hand(rules):
    table = segments(hand_made(), T, rules).set_index("customer_id")
    assert table["segment"].astype(str).to_dict() == {
        "fading": "follow_up",          # (1 + 1) / (3 + 1) = 0.5 <= 0.5
        "fading_less": "steady",        # (2 + 1) / (3 + 1) = 0.75
        "new_edge": "new",
        "newsletters": "stop_spending",  # 0 contacts: newsletters are ignored
        "nurture": "nurture",           # 3 contacts in [T - 90 d, T): the one at T - 90 d counts, the one at T not
        "old_edge": "stop_spending",    # never more than 1 contact in any 90 days
        "two_recent": "steady",         # 2 contacts now, 1 before: rising; peak 2 > 1
    }
    assert table.loc["nurture", "contacts_recent"] == 3
    assert table.loc["two_recent", ["contacts_recent", "contacts_before", "peak_contacts"]].tolist() == [2, 1, 2]
    assert table.loc["fading", ["contacts_recent", "contacts_before", "peak_contacts"]].tolist() == [1, 3, 3]
    assert table.loc["old_edge", "tenure_days"] == 180 and table.loc["new_edge", "tenure_days"] < 180
    assert (table["as_of"] == T).all() and list(table["segment"].cat.categories) == list(SEGMENTS)


def test_the_future_never_changes_a_segment(rules):
    events = hand_made()
    later = history_table([("nurture", T, "sales_visit"), ("fading", T + DAY, "webinar"),
                           ("newsletters", T + 2 * DAY, "seminar"), ("someone_new", T + DAY, "webinar")])
    before = segments(events, T, rules)
    after = segments(pd.concat([events, later], ignore_index=True), T, rules)
    pd.testing.assert_frame_equal(before, after)


def test_threshold_search_finds_the_split_that_separates_outcomes():
    """80 customers with 0..7 recent contacts; exactly those with 4 or more buy afterwards."""
    settings = load_settings(overrides=["views.segments.min_share=0.05", "views.segments.max_share=0.6"])
    rows = []
    for r in range(8):
        for i in range(10):
            cid = f"r{r}_{i}"
            rows.append((cid, T - 400 * DAY, "webinar"))
            rows += [(cid, T - DAY - k * pd.Timedelta(hours=1), "call") for k in range(r)]
    history = History(history_table(rows), T, settings)
    at = history.rows_at()
    recent = np.array([int(cid.split("_")[0][1:]) for cid in history.customer_ids[at.cust]])
    outcomes = {"purchase": (recent >= 4).astype(float), "churn": np.zeros(len(at))}
    chosen, candidates = choose_segment_thresholds(history, at, outcomes)
    assert chosen.nurture_min_contacts == 4            # perfect separation: the largest z
    assert chosen.stop_max_peak_contacts == 3          # peak <= 3 is exactly the non-buyers
    assert chosen.follow_up_max_ratio == settings.views.segments.follow_up_max_ratio  # no admissible candidate
    nurture = candidates[candidates["rule"] == "nurture_min_contacts"].set_index("threshold")
    assert nurture.index.tolist() == [4, 5, 6, 7]      # 1..3 give a segment above max_share, 8 an empty one
    assert nurture.loc[4, "share"] == 0.5 and nurture.loc[4, "chosen"] and nurture["chosen"].sum() == 1
    assert nurture.loc[4, "rate_segment"] == 1.0 and nurture.loc[4, "rate_rest"] == 0.0


def test_evidence_counts_rates_per_segment(rules):
    history = History(hand_made(), T, rules)
    at = history.rows_at()
    codes = history.customer_ids[at.cust]
    bought = {"nurture": 1.0, "fading": 0.0, "old_edge": 0.0, "newsletters": 1.0, "two_recent": np.nan}
    outcomes = {"purchase": np.array([bought.get(c, 0.0) for c in codes]), "churn": np.full(len(at), np.nan)}
    table = segment_evidence(history, at, outcomes=outcomes).set_index("segment")
    assert table.loc["stop_spending", ["rows", "customers", "purchase_rows"]].tolist() == [2, 2, 2]
    assert table.loc["stop_spending", "purchase_rate"] == 0.5
    assert table.loc["steady", ["rows", "purchase_rows", "purchase_rate"]].tolist() == [2, 1, 0.0]
    assert table.loc["nurture", "purchase_rate"] == 1.0 and table.loc["nurture", "purchase_low"] < 1.0
    assert table["churn_rows"].sum() == 0 and table["churn_rate"].isna().all()
