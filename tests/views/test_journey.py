"""Seed 001's journey stages, journey map and stage transitions on hand-made histories."""

from __future__ import annotations

import pandas as pd

from signals.views import (
    STAGES,
    History,
    journey_map,
    journey_stages,
    stage_conversion,
    stage_transitions,
)
from tests.views.conftest import DAY, SECOND, history_table

T = pd.Timestamp("2025-07-01", tz="UTC")

STAGE_EVENTS = history_table([
    ("aw", T - 10 * DAY, "web_visit"),
    ("quiet_prospect", T - 100 * DAY, "webinar"),                               # outside the 90 recent days
    ("int", T - 20 * DAY, "email_open"), ("int", T - 20 * DAY, "webinar"),
    ("con", T - 20 * DAY, "webinar"), ("con", T - 90 * DAY, "doc_request"),     # the window's first second counts
    ("pur", T - 89 * DAY, "purchase"),                                          # bought 89 days ago (and quiet since)
    ("ret", T - 200 * DAY, "purchase"), ("ret", T - 30 * DAY, "call"),
    ("risk", T - 200 * DAY, "purchase"), ("risk", T - 61 * DAY, "call"), ("risk", T - 5 * DAY, "newsletter"),
    ("lost", T - 300 * DAY, "purchase"), ("lost", T - 100 * DAY, "cancellation"), ("lost", T - 10 * DAY, "doc_request"),
    ("edge", T - 90 * DAY - SECOND, "doc_request"), ("edge", T - 20 * DAY, "email_click"),
])


def test_each_stage_by_hand(settings):
    stages = journey_stages(STAGE_EVENTS, T, settings).set_index("customer_id")["stage"].astype(str)
    assert stages.to_dict() == {
        "aw": "awareness", "quiet_prospect": "awareness", "int": "interest", "con": "consideration",
        "pur": "purchase", "ret": "retention",
        "risk": "at_risk",          # last contact 61 days ago; the newsletter is no contact
        "lost": "consideration",    # cancelled: a prospect again, with a recent document request
        "edge": "interest",         # the document request is one second too old
    }


def test_journey_map_shares_per_stage(settings):
    history = History(STAGE_EVENTS, T, settings)
    table = journey_map(history, history.rows_at(), {"purchase": {"webinar": 12.5}}).set_index("touchpoint")
    assert table.attrs["rows_per_stage"] == {"awareness": 2, "interest": 2, "consideration": 2, "purchase": 1,
                                             "retention": 1, "at_risk": 1}
    assert table.loc["webinar", "share__interest"] == 0.5          # int yes, edge no
    assert table.loc["webinar", "share__consideration"] == 0.5     # con yes, lost no
    assert table.loc["doc_request", "share__consideration"] == 1.0
    assert table.loc["newsletter", "share__at_risk"] == 1.0
    assert table.loc["call", "share__at_risk"] == 1.0    # 61 days ago: in the 90 recent days, not the 60 quiet ones
    assert table.loc["webinar", "learned_purchase"] == 12.5 and pd.isna(table.loc["call", "learned_purchase"])
    assert table.loc["webinar", "journey_stage"] == "interest" and table.loc["renewal", "journey_stage"] == "renewal"


def test_transitions_and_conversion_within_90_days(settings):
    t0 = T - 90 * DAY
    events = history_table([
        ("mover", t0 - 10 * DAY, "webinar"), ("mover", t0 + 30 * DAY, "purchase"),   # interest -> purchase
        ("stayer", t0 - 5 * DAY, "web_visit"), ("stayer", t0 + 50 * DAY, "web_visit"),  # awareness -> awareness
        ("warm", t0 - 5 * DAY, "seminar"), ("warm", t0 + 10 * DAY, "inquiry"),        # interest -> consideration
        ("late", t0 + 10 * DAY, "webinar"),                                            # first seen after t0: no row
    ])
    history = History(events, T, settings)
    rows = history.rows_at(t0.value)
    transitions = stage_transitions(history, rows).set_index(["from", "to"])
    assert transitions.loc[("interest", "purchase"), "rows"] == 1
    assert transitions.loc[("interest", "consideration"), "rows"] == 1
    assert transitions.loc[("awareness", "awareness"), "rows"] == 1
    assert transitions["rows"].sum() == 3 and transitions.loc["interest", "share"].sum() == 1.0
    conversion = stage_conversion(history, rows).set_index("stage")
    assert conversion.loc["interest", ["rows", "converted", "rate"]].tolist() == [2, 2, 1.0]
    assert conversion.loc["awareness", ["rows", "converted", "rate"]].tolist() == [1, 0, 0.0]
    assert list(conversion.index) == list(STAGES)
