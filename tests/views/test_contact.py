"""Seed 000's contact rate and dose-response on hand-made histories (local calendar months)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals.settings import load_settings
from signals.views import History, company_contacts, contact_rate, dose_response
from signals.views._contact import dose_bins
from tests.views.conftest import DAY, history_table


def test_contact_rate_by_hand_in_local_months():
    settings = load_settings(overrides=["timezone=Asia/Tokyo"])
    events = history_table([
        ("a", "2025-01-10T03:00Z", "call"),
        ("a", "2025-01-31T16:00Z", "webinar"),      # 2025-02-01 01:00 in Tokyo: a February touch
        ("b", "2025-01-20T03:00Z", "newsletter"),
        ("b", "2025-02-27T03:00Z", "sales_visit"),
        ("c", "2025-02-15T03:00Z", "webinar"),      # first seen in February: not in February's base
        ("c", "2025-03-05T03:00Z", "email_open"),
    ])
    table = contact_rate(events, "2025-04-01", settings)   # Tokyo midnight: January .. March are complete
    overall = table[table["by"] == "all"].set_index("month")
    assert overall.index.tolist() == ["2025-01", "2025-02", "2025-03"]
    assert overall["customers"].tolist() == [0, 2, 3]
    assert overall["touched"].tolist() == [0, 2, 1]
    assert np.isnan(overall.loc["2025-01", "share"]) and overall.loc["2025-02", "share"] == 1.0
    assert overall.loc["2025-03", "share"] == 1 / 3
    feb = table[table["month"] == "2025-02"].set_index(["by", "group"])["touched"]
    assert feb[("channel", "online_event")] == 1 and feb[("channel", "field_sales")] == 1
    assert feb[("channel", "phone")] == 0 and feb[("channel", "email")] == 0
    assert feb[("initiator", "customer")] == 1 and feb[("initiator", "company")] == 1
    assert table.loc[(table["month"] == "2025-03") & (table["group"] == "email"), "touched"].item() == 1
    assert (table["month_start"] == pd.Timestamp("2025-01-31T15:00Z")).sum() == len(table) / 3


def test_dose_bins_are_named_by_their_edges():
    assert dose_bins((0, 1, 2, 3, 5, 8)) == ["0", "1", "2", "3-4", "5-7", "8+"]
    assert dose_bins((0, 2)) == ["0-1", "2+"]


def test_dose_response_counts_company_contacts_in_the_window(settings):
    T = pd.Timestamp("2025-07-01", tz="UTC")
    rows = [("x", T - k * 20 * DAY, "newsletter") for k in range(1, 4)]          # mailings: no dose
    rows += [("y", T - 5 * DAY, "call"), ("y", T - 3 * DAY, "webinar")]          # the webinar is the customer's
    rows += [("z", T - 80 * DAY, "sales_visit"), ("z", T - 50 * DAY, "sales_visit"), ("z", T - DAY, "call")]
    rows += [("w", T - k * DAY, "call") for k in range(1, 10)]
    rows += [("v", T - 91 * DAY, "call"), ("v", T - 10 * DAY, "web_visit")]      # 91 days ago: outside
    history = History(history_table(rows), T, settings)
    at = history.rows_at()
    ids = list(history.customer_ids[at.cust])
    counts = dict(zip(ids, company_contacts(history, at), strict=True))
    assert counts == {"v": 0, "w": 9, "x": 0, "y": 1, "z": 3}
    bought = {"v": 1.0, "w": 0.0, "x": 0.0, "y": 1.0, "z": np.nan}
    outcomes = {"purchase": np.array([bought[c] for c in ids]), "churn": np.zeros(len(ids))}
    table = dose_response(history, at, outcomes).set_index("contacts")
    assert table["rows"].tolist() == [2, 1, 0, 1, 0, 1]
    assert table.loc["0", "purchase_rate"] == 0.5 and table.loc["1", "purchase_rate"] == 1.0
    assert table.loc["3-4", "purchase_rows"] == 0 and np.isnan(table.loc["3-4", "purchase_rate"])
    assert table.loc["8+", ["purchase_rate", "mean_contacts"]].tolist() == [0.0, 9.0]
