"""The seeds' business views: pure functions of the events known at an as-of instant.

Each view answers a question of the source articles (``shared/seeds/``) and is checked against
what customers did next on out-of-time cutoffs, not just computed:

==========================  ===========================================================  ======
view                        question                                                     seed
==========================  ===========================================================  ======
:func:`segments`            nurture / follow up / stop spending, by contact frequency     003
:func:`contact_rate`        share of customers touched per month, by channel, initiator   000
:func:`dose_response`       do more company contacts go with more purchases, less churn?  000
:func:`cohort_table`        how many of each cohort are still customers k months later    004
:func:`timeline`            temperature over time, touches, kizashi / cooling alarms      002
:func:`journey_stages`      awareness .. purchase, retention, at-risk, and conversion     001
==========================  ===========================================================  ======

The CRM row: :func:`crm_columns` gives ``customer_id, segment, journey_stage`` at an as-of date,
for the scoring job to add to ``customer_signals``. For many views on one history, build a
:class:`History` once and call the ``*_rows`` / ``*_table`` functions with it (what
``signals report`` does).

>>> import pandas as pd
>>> from signals.settings import load_settings
>>> events = pd.DataFrame({
...     "customer_id": ["a", "a", "b"],
...     "ts": pd.to_datetime(["2024-01-10", "2025-02-03", "2025-01-20"], utc=True),
...     "touchpoint": ["purchase", "webinar", "doc_request"],
... })
>>> crm_columns(events, "2025-03-01", load_settings()).to_dict("records")
[{'customer_id': 'a', 'segment': 'stop_spending', 'journey_stage': 'retention'}, {'customer_id': 'b', 'segment': 'new', 'journey_stage': 'consideration'}]
"""

from __future__ import annotations

import pandas as pd

from signals.schemas import CUSTOMER_ID
from signals.settings import Settings
from signals.views._contact import company_contacts, contact_rate, contact_rate_table, dose_response
from signals.views._history import History, Rows, evidence_split
from signals.views._journey import (
    STAGES,
    journey_map,
    journey_stages,
    stage_conversion,
    stage_rows,
    stage_transitions,
)
from signals.views._rates import outcome_table, rates_by_group, wilson_interval
from signals.views._retention import (
    cohort_retention,
    cohort_table,
    retention_by_month,
    retention_months,
)
from signals.views._segments import (
    SEGMENTS,
    choose_segment_thresholds,
    segment_evidence,
    segment_rows,
    segments,
)
from signals.views._timeline import (
    AlarmLines,
    Curve,
    Timeline,
    alarm_lines,
    current_alarms,
    default_curves,
    population,
    temperature,
    timeline,
)

__all__ = [
    "SEGMENTS",
    "STAGES",
    "AlarmLines",
    "Curve",
    "History",
    "Rows",
    "Timeline",
    "alarm_lines",
    "choose_segment_thresholds",
    "cohort_retention",
    "cohort_table",
    "company_contacts",
    "contact_rate",
    "contact_rate_table",
    "crm_columns",
    "current_alarms",
    "default_curves",
    "dose_response",
    "evidence_split",
    "journey_map",
    "journey_stages",
    "outcome_table",
    "population",
    "rates_by_group",
    "retention_by_month",
    "retention_months",
    "segment_evidence",
    "segment_rows",
    "segments",
    "stage_conversion",
    "stage_rows",
    "stage_transitions",
    "temperature",
    "timeline",
    "wilson_interval",
]


def crm_columns(
    events: pd.DataFrame | History,
    as_of=None,
    settings: Settings | None = None,
    *,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The views' columns of the CRM row at ``as_of``: ``customer_id, segment, journey_stage``.

    One row per customer seen before ``as_of``, sorted by id; ``segment`` is one of
    :data:`SEGMENTS`, ``journey_stage`` one of :data:`STAGES` (both plain text). Pass a
    :class:`History` instead of events to reuse one already built (then ``as_of`` and
    ``settings`` come from it).
    """
    if isinstance(events, History):
        history = events
    else:
        if as_of is None or settings is None:
            raise TypeError("crm_columns needs as_of and settings with an events table")
        history = History(events, as_of, settings, customers=customers)
    rows = history.rows_at()
    table = segment_rows(history, rows)[[CUSTOMER_ID, "segment"]]
    table["journey_stage"] = stage_rows(history, rows)["stage"].to_numpy()
    table["segment"] = table["segment"].astype(str)
    table["journey_stage"] = table["journey_stage"].astype(str)
    return table.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
