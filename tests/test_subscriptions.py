"""Subscriptions -> contract events: gaps, upgrades, mid-term cancellations, open ends, rejects.

Hand-typed tables pin each rule; a property test compares the vectorised function with a plain
loop over each customer's rows on random tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.subscriptions import REASONS, contracts_from_subscriptions

AS_OF = "2026-01-01"


def subs(*rows: tuple, columns=("customer_id", "start", "end", "value")) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(columns), dtype="str")


def events(result, customer: str | None = None) -> list[tuple[str, str, float]]:
    """(date, touchpoint, value) of the events, optionally of one customer."""
    ev = result.events
    if customer is not None:
        ev = ev[ev["customer_id"] == customer]
    return [(t.strftime("%Y-%m-%d"), str(k), float(v)) for t, k, v in zip(ev["ts"], ev["touchpoint"], ev["value"],
                                                                          strict=True)]


def test_consecutive_terms_are_renewals_and_the_churn_date_is_the_end_of_the_last_period():
    out = contracts_from_subscriptions(subs(("a", "2024-01-01", "2025-01-01", "100"),
                                            ("a", "2025-01-01", "2025-07-01", "120")), as_of=AS_OF)
    assert events(out) == [("2024-01-01", "purchase", 100.0), ("2025-01-01", "renewal", 120.0),
                           ("2025-07-01", "cancellation", 120.0)]


def test_the_gap_decides_between_a_short_lapse_and_a_churn_then_win_back():
    table = subs(("a", "2025-01-01", "2025-03-01", "50"), ("a", "2025-03-11", "", "50"))
    merged = contracts_from_subscriptions(table, gap_days=10, as_of=AS_OF)
    assert events(merged) == [("2025-01-01", "purchase", 50.0), ("2025-03-11", "renewal", 50.0)]
    assert len(merged.periods) == 1 and not merged.periods["cancelled"].any()
    split = contracts_from_subscriptions(table, gap_days=9, as_of=AS_OF)
    assert events(split) == [("2025-01-01", "purchase", 50.0), ("2025-03-01", "cancellation", 50.0),
                             ("2025-03-11", "purchase", 50.0)]
    assert list(split.periods["cancelled"]) == [True, False]


def test_upgrades_and_product_switches_continue_the_spell_whatever_the_overlap():
    table = subs(("a", "2025-01-01", "2025-06-01", "100", "Basic"),
                 ("a", "2025-03-01", "2025-09-01", "300", "Pro"),      # upgrade, overlapping
                 ("a", "2025-09-01", "2025-12-01", "80", "Lite"),      # switch, touching
                 ("a", "2025-04-01", "2025-05-01", "20", "Add-on"),    # inside the spell
                 columns=("customer_id", "start", "end", "value", "product"))
    out = contracts_from_subscriptions(table, as_of=AS_OF)
    assert events(out) == [("2025-01-01", "purchase", 100.0), ("2025-03-01", "renewal", 300.0),
                           ("2025-04-01", "renewal", 20.0), ("2025-09-01", "renewal", 80.0),
                           ("2025-12-01", "cancellation", 80.0)]
    assert out.periods.loc[0, "products"] == "Basic, Pro, Add-on, Lite"
    assert out.periods.loc[0, "rows"] == 4


def test_values_of_rows_starting_or_ending_together_add_up():
    out = contracts_from_subscriptions(subs(("a", "2025-01-01", "2025-05-01", "100"),
                                            ("a", "2025-01-01", "2025-05-01", "40"),
                                            ("a", "2025-01-01", "2025-03-01", "7")), as_of=AS_OF)
    assert events(out) == [("2025-01-01", "purchase", 147.0), ("2025-05-01", "cancellation", 140.0)]


def test_mid_term_cancellation_ends_the_period_early_and_a_late_one_changes_nothing():
    columns = ("customer_id", "start", "end", "value", "cancelled_at")
    out = contracts_from_subscriptions(subs(("mid", "2025-01-01", "2026-01-01", "500", "2025-08-15"),
                                            ("late", "2025-01-01", "2025-06-01", "10", "2025-07-01"),
                                            ("noend", "2025-01-01", "", "10", "2025-04-01"),
                                            ("future", "2025-01-01", "2027-01-01", "10", "2026-03-01"),
                                            columns=columns), as_of=AS_OF)
    assert events(out, "mid") == [("2025-01-01", "purchase", 500.0), ("2025-08-15", "cancellation", 500.0)]
    assert events(out, "late") == [("2025-01-01", "purchase", 10.0), ("2025-06-01", "cancellation", 10.0)]
    assert events(out, "noend") == [("2025-01-01", "purchase", 10.0), ("2025-04-01", "cancellation", 10.0)]
    assert events(out, "future") == [("2025-01-01", "purchase", 10.0)]  # cancels after as_of: still active


def test_open_ended_and_not_yet_ended_spells_have_no_cancellation():
    out = contracts_from_subscriptions(subs(("blank", "2025-01-01", "", "1"), ("far", "2025-01-01", "9999-12-31", "1"),
                                            ("later", "2025-01-01", "2026-06-01", "1")), as_of=AS_OF)
    assert out.rejected == 0
    assert set(out.events["touchpoint"].astype(str)) == {"purchase"}
    assert out.periods["end"].isna().all()


def test_an_end_exactly_at_as_of_is_a_cancellation():
    out = contracts_from_subscriptions(subs(("a", "2025-01-01", "2026-01-01", "1")), as_of=AS_OF)
    assert events(out)[-1] == ("2026-01-01", "cancellation", 1.0)


def test_inclusive_end_dates_run_to_the_end_of_the_day_and_touch_the_next_term():
    table = subs(("a", "2025-01-01", "2025-03-31", "1"), ("a", "2025-04-01", "2025-06-30", "2"))
    out = contracts_from_subscriptions(table, end_inclusive=True, as_of=AS_OF)
    assert events(out) == [("2025-01-01", "purchase", 1.0), ("2025-04-01", "renewal", 2.0),
                           ("2025-07-01", "cancellation", 2.0)]
    exclusive = contracts_from_subscriptions(table, as_of=AS_OF)  # a one-day lapse: churn and win-back
    assert [k for _, k, _ in events(exclusive)] == ["purchase", "cancellation", "purchase", "cancellation"]


def test_term_anniversaries_renew_open_ended_rows_in_local_time_until_they_stop():
    table = subs(("a", "2025-01-31", "", "10"), ("b", "2024-06-15", "2026-06-15", "900"), ("c", "2024-06-15", "", "5"))
    out = contracts_from_subscriptions(table, term_months=1, timezone="Asia/Tokyo", as_of="2025-06-01")
    local = out.events.assign(ts=out.events["ts"].dt.tz_convert("Asia/Tokyo"))
    a = local[local["customer_id"] == "a"]
    assert [t.strftime("%m-%d %H:%M") for t in a["ts"]] == ["01-31 00:00", "02-28 00:00", "03-31 00:00",
                                                             "04-30 00:00", "05-31 00:00"]
    assert list(a["touchpoint"].astype(str)) == ["purchase"] + ["renewal"] * 4
    yearly = contracts_from_subscriptions(table, term_months=12, as_of=AS_OF)
    assert events(yearly, "c") == [("2024-06-15", "purchase", 5.0), ("2025-06-15", "renewal", 5.0)]
    assert events(yearly, "b") == [("2024-06-15", "purchase", 900.0)]  # an end date: one fixed term
    assert events(yearly, "a") == [("2025-01-31", "purchase", 10.0)]  # less than a term old at as_of
    cancelled = contracts_from_subscriptions(
        subs(("a", "2025-01-31", "", "10", "2025-04-15"), columns=("customer_id", "start", "end", "value", "cancelled_at")),
        term_months=1, as_of=AS_OF)
    assert events(cancelled) == [("2025-01-31", "purchase", 10.0), ("2025-02-28", "renewal", 10.0),
                                 ("2025-03-31", "renewal", 10.0), ("2025-04-15", "cancellation", 10.0)]


def test_an_anniversary_and_a_row_start_at_one_instant_are_one_renewal():
    table = subs(("a", "2025-01-01", "", "10"), ("a", "2025-03-01", "", "5"))
    out = contracts_from_subscriptions(table, term_months=1, as_of="2025-03-15")
    assert events(out) == [("2025-01-01", "purchase", 10.0), ("2025-02-01", "renewal", 10.0),
                           ("2025-03-01", "renewal", 15.0)]


def test_no_event_after_as_of_and_future_starts_are_rejects():
    out = contracts_from_subscriptions(subs(("a", "2025-01-01", "2025-12-01", "1"), ("a", "2026-02-01", "", "1")),
                                       term_months=1, as_of="2025-10-15")
    assert out.events["ts"].max() <= pd.Timestamp("2025-10-15", tz="UTC")
    assert out.rejects["reason"].tolist() == ["future_start"]
    assert "after as_of 2025-10-15" in out.rejects.loc[0, "detail"]


def test_every_reason_is_named_and_rows_read_equal_accepted_plus_rejected():
    columns = ("customer_id", "start", "end", "value", "status", "cancelled_at")
    table = subs(
        ("", "2025-01-01", "", "1", "active", ""),                         # missing_customer_id
        ("#N/A", "2025-01-01", "", "1", "active", ""),                     # placeholder_customer_id
        ("a", "", "", "1", "active", ""),                                 # unparseable_start (blank)
        ("a", "2025-02-30", "", "1", "active", ""),                       # unparseable_start
        ("a", "1900-01-01", "", "1", "active", ""),                       # placeholder_start
        ("a", "2025-01-01", "someday", "1", "active", ""),                # unparseable_end
        ("a", "2025-01-01", "", "1", "cancelled", "yesterday"),           # unparseable_cancelled_at
        ("a", "2025-03-09T02:30:00", "", "1", "active", ""),              # nonexistent_local_time (New York)
        ("a", "2025-01-01", "2025-11-02T01:30:00", "1", "active", ""),    # ambiguous_local_time
        ("a", "2025-01-01", "", "1,000", "active", ""),                   # unparseable_value
        ("a", "2025-01-01", "", "1e300", "active", ""),                   # value_out_of_range
        ("a", "2025-01-01", "", "-5", "active", ""),                      # negative_value
        ("a", "2025-01-01", "", "1", "on hold", ""),                      # unknown_status
        ("a", "2025-01-01", "", "1", "churned", ""),                      # ended_without_date
        ("a", "2025-05-01", "2025-05-01", "1", "active", ""),             # end_not_after_start
        ("a", "2025-05-01", "", "1", "cancelled", "2025-04-01"),          # cancelled_not_after_start
        ("a", "2026-05-01", "", "1", "active", ""),                       # future_start
        ("b", "2025-01-01", "", "", "", ""),                              # fine: no value, no status
        ("c", "2025-01-01", "1900-01-01", "", "active", "1970-01-01"),     # fine: placeholders = no date
        columns=columns)
    out = contracts_from_subscriptions(table, timezone="America/New_York", as_of=AS_OF)
    expected = [*REASONS[:3], *REASONS[2:]]  # two unparseable starts: blank and impossible
    assert out.rejects["reason"].tolist() == expected
    assert out.rejects["row"].tolist() == list(range(len(expected)))
    assert out.rejects.loc[2, "detail"] == "start is missing or blank"
    assert (out.rejects["detail"] != "").all()
    assert out.read == len(table) == out.accepted + out.rejected
    assert out.accepted_rows.tolist() == [len(expected), len(expected) + 1]
    assert out.periods["end"].isna().all()
    assert out.rejected_by_reason() == dict.fromkeys(REASONS, 1) | {"unparseable_start": 2}


def test_custom_statuses_columns_and_event_types():
    table = pd.DataFrame({"顧客ID": ["007"], "開始日": ["2025/01/01"], "終了日": ["2025/02/01"], "状態": ["解約済"],
                          "月額": ["30000"]})
    out = contracts_from_subscriptions(
        table, columns={"customer_id": "顧客ID", "start": "開始日", "end": "終了日", "status": "状態", "value": "月額"},
        ts_format="%Y/%m/%d", statuses={"解約済": "ended", "契約中": "active"},
        touchpoints={"purchase": "new_contract", "cancellation": "churn"}, source="billing", as_of=AS_OF)
    assert events(out) == [("2025-01-01", "new_contract", 30000.0), ("2025-02-01", "churn", 30000.0)]
    assert out.events["customer_id"].tolist() == ["007", "007"]
    assert set(out.events["source"]) == {"billing"}


def test_typed_columns_from_parquet_or_sql_and_integer_ids():
    table = pd.DataFrame({"customer_id": [42, 42],
                          "start": pd.to_datetime(["2025-01-01", "2025-03-01"]),                 # naive: local
                          "end": pd.to_datetime(["2025-03-01T00:00:00Z", None], utc=True),        # aware
                          "value": [1.5, 2.0]})
    out = contracts_from_subscriptions(table, timezone="Asia/Tokyo", as_of=AS_OF)
    assert out.events["customer_id"].tolist() == ["42", "42"]
    assert out.events["ts"].tolist() == [pd.Timestamp("2024-12-31T15:00Z"), pd.Timestamp("2025-02-28T15:00Z")]
    # the first row ends at 09:00 Tokyo on March 1, after the second starts at midnight: overlapping, one spell
    assert list(out.events["touchpoint"].astype(str)) == ["purchase", "renewal"]


def test_configuration_mistakes_raise():
    with pytest.raises(ValueError, match=r"need the column\(s\) \['start'\]"):
        contracts_from_subscriptions(pd.DataFrame({"customer_id": ["a"]}))
    with pytest.raises(ValueError, match="not found"):
        contracts_from_subscriptions(pd.DataFrame({"id": ["a"], "s": ["2025-01-01"]}),
                                     columns={"customer_id": "id", "start": "begin"})
    with pytest.raises(ValueError, match="gap_days"):
        contracts_from_subscriptions(subs(("a", "2025-01-01", "", "1")), gap_days=-1)
    with pytest.raises(ValueError, match="term_months"):
        contracts_from_subscriptions(subs(("a", "2025-01-01", "", "1")), term_months=0)
    with pytest.raises(ValueError, match="'active' or 'ended'"):
        contracts_from_subscriptions(subs(("a", "2025-01-01", "", "1", "x"), columns=("customer_id", "start", "end",
                                                                                      "value", "status")),
                                     statuses={"x": "paused"})


# ---------------------------------------------------------------------------------------------
# the vectorised function against a plain loop

DAY = pd.Timedelta(days=1)
ORIGIN = pd.Timestamp("2025-01-01", tz="UTC")


def loop_reference(rows: list[tuple[str, int, int | None, float]], gap: int, as_of: int) -> list[tuple]:
    """(customer, day, kind, value) events from (customer, start day, stop day or None, value) rows."""
    out = []
    for customer in sorted({r[0] for r in rows}):
        mine = sorted((r for r in rows if r[0] == customer), key=lambda r: (r[1], np.inf if r[2] is None else r[2]))
        spells: list[list] = []
        for _, start, stop, value in mine:
            stop = np.inf if stop is None else stop
            if spells and start <= spells[-1][1] + gap:
                spells[-1][1] = max(spells[-1][1], stop)
                spells[-1][2].append((start, stop, value))
            else:
                spells.append([start, stop, [(start, stop, value)]])
        for s_start, s_stop, members in spells:
            starts: dict[int, float] = {}
            for start, _, value in members:
                starts[start] = starts.get(start, 0.0) + value
            for day, value in sorted(starts.items()):
                out.append((customer, day, "purchase" if day == s_start else "renewal", value))
            if s_stop != np.inf and s_stop <= as_of:
                out.append((customer, int(s_stop), "cancellation",
                            sum(v for _, stop, v in members if stop == s_stop)))
    return sorted(out, key=lambda e: (e[0], e[1], ["purchase", "renewal", "cancellation"].index(e[2])))


row_strategy = st.tuples(st.sampled_from(["001", "002", "010"]), st.integers(0, 60), st.one_of(st.none(), st.integers(1, 40)),
                         st.sampled_from([0.0, 1.0, 2.5, 10.0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row_strategy, min_size=1, max_size=12), st.integers(0, 10), st.integers(20, 110))
def test_matches_a_plain_loop_over_each_customers_rows(raw_rows, gap, as_of_day):
    rows = [(c, s, None if length is None else s + length, v) for c, s, length, v in raw_rows]
    table = pd.DataFrame({
        "customer_id": [r[0] for r in rows],
        "start": [(ORIGIN + r[1] * DAY).strftime("%Y-%m-%d") for r in rows],
        "end": ["" if r[2] is None else (ORIGIN + r[2] * DAY).strftime("%Y-%m-%d") for r in rows],
        "value": [str(r[3]) for r in rows],
    })
    out = contracts_from_subscriptions(table, gap_days=gap, as_of=ORIGIN + as_of_day * DAY)
    accepted = [r for r in rows if r[1] <= as_of_day]
    assert out.accepted == len(accepted) and out.read == out.accepted + out.rejected
    assert set(out.rejects["reason"]) <= {"future_start"}
    got = [(str(c), int((t - ORIGIN) / DAY), str(k), float(v))
           for c, t, k, v in zip(out.events["customer_id"], out.events["ts"], out.events["touchpoint"],
                                 out.events["value"], strict=True)]
    assert got == loop_reference(accepted, gap, as_of_day)
    # contract events alternate: a purchase opens a spell, renewals continue it, a cancellation closes it
    for _, group in out.events.groupby("customer_id", observed=True):
        kinds = group["touchpoint"].astype(str).tolist()
        for before, after in zip(kinds, kinds[1:], strict=False):
            assert (before == "cancellation") == (after == "purchase")
