"""Seed 003's contact-frequency segments: whom to nurture, follow up, or stop spending effort on.

The article (優良顧客を発見するための仕組みづくり) gives three rules on how often a customer and
the company exchange contacts:

- frequency is high: a good-customer candidate -> ``nurture``;
- frequency is falling: the relationship is thinning, follow up -> ``follow_up``;
- frequency never rose after the first contact: stop spending effort -> ``stop_spending``;

plus ``new`` (too little history to judge) and ``steady`` (none of the above). A **contact** is
any touch except ``views.ignore_touchpoints`` (a newsletter sent to everyone is not an exchange).
At a cutoff ``T``, with ``W = views.segments.window_days``:

- ``contacts_recent``: contacts in ``[T - W, T)``; ``contacts_before``: in ``[T - 2W, T - W)``;
- ``peak_contacts``: the most contacts in any ``W`` days since the first one (windows ending at a
  contact before ``T``), so ``peak_contacts >= contacts_recent``;
- ``tenure_days``: days since the customer was first seen.

The rules apply in this order (the first that matches wins):

1. ``new``: ``tenure_days < new_days``;
2. ``nurture``: ``contacts_recent >= nurture_min_contacts``;
3. ``stop_spending``: ``peak_contacts <= stop_max_peak_contacts`` (it never got busier than that);
4. ``follow_up``: ``(contacts_recent + 1) / (contacts_before + 1) <= follow_up_max_ratio``;
5. ``steady``.

:func:`choose_segment_thresholds` picks the three thresholds on training cutoffs; the shipped
defaults are its choice on the demo world. :func:`segment_evidence` checks the segments against
what customers did next on later, out-of-time cutoffs.

>>> import pandas as pd
>>> from signals.settings import load_settings
>>> s = load_settings(overrides=["views.segments.new_days=30", "views.segments.nurture_min_contacts=3",
...                              "views.segments.stop_max_peak_contacts=1"])
>>> day = pd.Timestamp("2025-01-01", tz="UTC")
>>> events = pd.DataFrame({
...     "customer_id": ["busy"] * 4 + ["quiet"] * 2 + ["fresh"],
...     "ts": [day + pd.Timedelta(days=d) for d in (10, 100, 105, 110)] + [day, day + pd.Timedelta(days=100)]
...           + [day + pd.Timedelta(days=119)],
...     "touchpoint": ["webinar", "call", "doc_request", "sales_visit", "web_visit", "web_visit", "seminar"],
... })
>>> table = segments(events, "2025-05-01", s)     # 120 days after 2025-01-01
>>> table.set_index("customer_id")["segment"].to_dict()
{'busy': 'nurture', 'fresh': 'new', 'quiet': 'stop_spending'}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from signals.features.window import days_to_ns
from signals.schemas import CUSTOMER_ID, CUTOFF, NS_PER_SECOND
from signals.settings import SegmentSettings, Settings
from signals.views._history import History, Rows
from signals.views._rates import outcome_table

__all__ = [
    "SEGMENTS",
    "choose_segment_thresholds",
    "contact_frequency",
    "segment_evidence",
    "segment_rows",
    "segments",
]

SEGMENTS: tuple[str, ...] = ("nurture", "follow_up", "stop_spending", "new", "steady")
_CODE = {name: i for i, name in enumerate(SEGMENTS)}


def _peak_running(history: History, window_days: int) -> np.ndarray:
    """Per event of the history's index: the most contacts of its customer in any ``W``-day window
    ending at a contact up to this position (0 before the first contact)."""
    cache = history.__dict__.setdefault("_peaks", {})
    if window_days not in cache:
        idx = history.index
        contacts = history.prefix(history.contact_types)
        width_s = days_to_ns(window_days) // NS_PER_SECOND
        lo = np.searchsorted(idx.key, idx.key - width_s, side="right")   # first event in (t - W, t]
        np.maximum(lo, idx.block[idx.cust], out=lo)
        in_window = contacts[1:] - contacts[lo]                          # contacts in (t - W, t]
        in_window[~history.is_type(history.contact_types)] = 0           # windows end at a contact
        offset = idx.cust * (int(in_window.max(initial=0)) + 1)           # customers ascend: the max restarts
        cache[window_days] = np.maximum.accumulate(in_window + offset) - offset
    return cache[window_days]


def contact_frequency(history: History, rows: Rows, window_days: int) -> dict[str, np.ndarray]:
    """``contacts_recent``, ``contacts_before``, ``peak_contacts`` and ``tenure_days`` of each row."""
    contacts = history.contact_types
    now = history.positions(rows)
    running = _peak_running(history, window_days)
    has = now > history.index.block[rows.cust]
    peak = np.where(has, running[np.maximum(now - 1, 0)] if len(running) else 0, 0)
    return {"contacts_recent": history.count(contacts, rows, window_days),
            "contacts_before": history.count(contacts, rows, 2 * window_days, end_days=window_days),
            "peak_contacts": peak, "tenure_days": history.tenure_days(rows)}


def _assign(freq: dict[str, np.ndarray], rule: SegmentSettings) -> np.ndarray:
    recent, before = freq["contacts_recent"], freq["contacts_before"]
    code = np.full(len(recent), _CODE["steady"], dtype=np.int8)
    ratio = (recent + 1.0) / (before + 1.0)
    # the last assignment wins, so apply the rules from the lowest precedence to the highest
    code[ratio <= rule.follow_up_max_ratio] = _CODE["follow_up"]
    code[freq["peak_contacts"] <= rule.stop_max_peak_contacts] = _CODE["stop_spending"]
    code[recent >= rule.nurture_min_contacts] = _CODE["nurture"]
    code[freq["tenure_days"] < rule.new_days] = _CODE["new"]
    return code


def segment_rows(history: History, rows: Rows, rule: SegmentSettings | None = None) -> pd.DataFrame:
    """The segment of every ``(customer, cutoff)`` row, with the counts behind it.

    Returns ``customer_id, cutoff, contacts_recent, contacts_before, peak_contacts, tenure_days,
    segment`` (a categorical of :data:`SEGMENTS`), in the rows' order.
    """
    rule = rule or history.settings.views.segments
    freq = contact_frequency(history, rows, rule.window_days)
    frame = history.frame(rows)
    for name, values in freq.items():
        frame[name] = values
    frame["segment"] = pd.Categorical.from_codes(_assign(freq, rule), categories=list(SEGMENTS))
    return frame


def segments(events: pd.DataFrame, as_of, settings: Settings, *, customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each customer's seed-003 segment at ``as_of``: one row per customer seen before it.

    This is the column the CRM row (``customer_signals``) carries. Columns: ``customer_id``,
    ``as_of``, ``segment`` and the counts behind it (see :func:`segment_rows`).
    """
    history = History(events, as_of, settings, customers=customers)
    table = segment_rows(history, history.rows_at())
    return table.rename(columns={CUTOFF: "as_of"}).sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)


def _z(member: np.ndarray, outcome: np.ndarray) -> tuple[float, float, float]:
    """Two-proportion z of the outcome rate of members vs the rest (eligible rows only)."""
    ok = ~np.isnan(outcome)
    a, b = outcome[ok & member], outcome[ok & ~member]
    if len(a) == 0 or len(b) == 0:
        return np.nan, np.nan, np.nan
    p1, p2 = a.mean(), b.mean()
    pooled = (a.sum() + b.sum()) / (len(a) + len(b))
    se = np.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
    return float(p1), float(p2), float((p1 - p2) / se) if se > 0 else 0.0


def choose_segment_thresholds(
    history: History,
    rows: Rows,
    outcomes: dict[str, np.ndarray] | None = None,
) -> tuple[SegmentSettings, pd.DataFrame]:
    """Pick the three thresholds on training rows, where they separate outcomes most clearly.

    Among customers old enough to judge (not ``new``), each rule's candidate thresholds keep its
    segment between ``min_share`` and ``max_share`` of those rows; the candidate with the largest
    two-proportion z-statistic in the seed's direction wins:

    - ``nurture_min_contacts``: later purchase rate of the segment *above* the rest's;
    - ``stop_max_peak_contacts``: later purchase rate *below* the rest's (smaller than the
      nurture threshold);
    - ``follow_up_max_ratio`` (among rows that are neither nurture nor stop_spending): later
      churn rate *above* the rest's.

    A rule with no admissible candidate keeps its configured value. Check the result on later
    cutoffs with :func:`segment_evidence` (the selection itself is in-sample).

    Returns
    -------
    (SegmentSettings, pd.DataFrame)
        The configured settings with the chosen thresholds, and every candidate
        (``rule, threshold, share, rate_segment, rate_rest, z, chosen``).
    """
    base = history.settings.views.segments
    freq = contact_frequency(history, rows, base.window_days)
    outcomes = outcomes if outcomes is not None else history.outcomes(rows)
    judged = freq["tenure_days"] >= base.new_days
    recent, peak = freq["contacts_recent"][judged], freq["peak_contacts"][judged]
    ratio = ((freq["contacts_recent"] + 1.0) / (freq["contacts_before"] + 1.0))[judged]
    buy, churn = outcomes["purchase"][judged], outcomes["churn"][judged]
    records: list[dict] = []

    def search(rule: str, values, member_of, outcome, sign: float, among=None) -> float | None:
        best, best_z = None, -np.inf
        pool = np.ones(len(outcome), dtype=bool) if among is None else among
        for value in values:
            member = member_of(value) & pool
            share = member.sum() / max(len(member), 1)
            if not base.min_share <= share <= base.max_share:
                continue
            inside, rest, z = _z(member[pool], outcome[pool])
            records.append({"rule": rule, "threshold": value, "share": share, "rate_segment": inside,
                            "rate_rest": rest, "z": z})
            if np.isfinite(z) and sign * z > best_z:
                best, best_z = value, sign * z
        for record in records:
            if record["rule"] == rule:
                record["chosen"] = record["threshold"] == best
        return best

    chosen = {}
    if judged.any():
        top = int(np.quantile(recent, 0.995)) if len(recent) else 0
        nurture = search("nurture_min_contacts", range(1, top + 2), lambda v: recent >= v, buy, +1.0)
        if nurture is not None:
            chosen["nurture_min_contacts"] = int(nurture)
        ceiling = chosen.get("nurture_min_contacts", base.nurture_min_contacts)
        stop = search("stop_max_peak_contacts", range(0, ceiling), lambda v: peak <= v, buy, -1.0)
        if stop is not None:
            chosen["stop_max_peak_contacts"] = int(stop)
        floor = chosen.get("stop_max_peak_contacts", base.stop_max_peak_contacts)
        middle = (recent < ceiling) & (peak > floor)
        ratios = [round(float(r), 2) for r in np.arange(0.1, 0.951, 0.05)]
        follow = search("follow_up_max_ratio", ratios, lambda v: ratio <= v, churn, +1.0, among=middle)
        if follow is not None:
            chosen["follow_up_max_ratio"] = float(follow)
    candidates = pd.DataFrame(records, columns=["rule", "threshold", "share", "rate_segment", "rate_rest", "z",
                                                "chosen"])
    candidates["chosen"] = candidates["chosen"].fillna(False).astype(bool)
    return base.model_copy(update=chosen), candidates


def segment_evidence(
    history: History,
    rows: Rows,
    rule: SegmentSettings | None = None,
    outcomes: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """What the customers of each segment did next: later purchase and churn rates with intervals.

    ``rows`` should be out-of-time cutoffs (:func:`signals.views.evidence_split`). Purchase: a
    purchase within ``labels.purchase.horizon_days`` among customers eligible for the purchase
    label (no purchase in the quiet period); churn: by ``labels.churn`` among the active. Intervals
    are 95% Wilson intervals at the customer-clustered effective sample size
    (:mod:`signals.views._rates`).

    Returns one row per segment (in :data:`SEGMENTS` order): ``segment, rows, customers, share``
    and ``purchase_rows, purchase_rate, purchase_low, purchase_high`` and the same for churn.
    """
    rule = rule or history.settings.views.segments
    code = _assign(contact_frequency(history, rows, rule.window_days), rule)
    outcomes = outcomes if outcomes is not None else history.outcomes(rows)
    out = outcome_table(code, SEGMENTS, rows.cust, outcomes)
    return out.rename(columns={"group": "segment"})
