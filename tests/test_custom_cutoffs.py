"""Custom cutoffs: a user's (customer, cutoff) table, or dates anchored on contract anniversaries.

Both give exactly the calendar grid's features where they coincide, and only the past decides an
anniversary cutoff.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.cutoffs import anniversary_cutoffs, cutoff_grid, cutoffs_from_table, training_cutoffs
from signals.features.matrix import build_features, feature_columns
from signals.features.spec import FeatureSpec
from signals.settings import load_settings


def local(frame: pd.DataFrame, tz: str = "UTC") -> list[tuple[str, str]]:
    return [(c, t.tz_convert(tz).strftime("%Y-%m-%d %H:%M")) for c, t in zip(frame["customer_id"], frame["cutoff"],
                                                                            strict=True)]


def purchases(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [r[0] for r in rows], "ts": pd.to_datetime([r[1] for r in rows], utc=True),
                         "touchpoint": ["purchase"] * len(rows)})


def test_monthly_anniversaries_at_local_midnight_clip_to_the_month_and_follow_a_new_contract():
    tz = "Asia/Tokyo"
    events = purchases(("a", "2025-01-30T15:00Z"), ("a", "2025-05-10T03:00Z"))  # Jan 31 and May 10, Tokyo
    rows = anniversary_cutoffs(events, anchor_types=["purchase"], every_months=1, days_before=5, timezone=tz,
                               end="2025-08-01")
    assert local(rows, tz) == [("a", "2025-02-23 00:00"), ("a", "2025-03-26 00:00"), ("a", "2025-04-25 00:00"),
                               ("a", "2025-06-05 00:00"), ("a", "2025-07-05 00:00")]
    # the May 26 date of the first contract is gone: on May 10 a new contract became the anchor
    assert rows["anchor"].dt.tz_convert(tz).dt.strftime("%m-%d").tolist() == ["01-31"] * 3 + ["05-10"] * 2


def test_yearly_anniversaries_days_before_zero_and_bounds():
    events = purchases(("b", "2022-03-01"), ("c", "2024-02-29"))
    rows = anniversary_cutoffs(events, anchor_types=["purchase"], every_months=12, days_before=0,
                               start="2023-06-01", end="2026-03-01")
    assert local(rows) == [("b", "2024-03-01 00:00"), ("c", "2025-02-28 00:00"), ("b", "2025-03-01 00:00"),
                           ("c", "2026-02-28 00:00"), ("b", "2026-03-01 00:00")]


def test_a_cutoff_never_precedes_its_anchor_and_only_anchor_types_count():
    events = pd.concat([purchases(("a", "2025-01-20")),
                        pd.DataFrame({"customer_id": ["a"], "ts": pd.to_datetime(["2025-01-01"], utc=True),
                                      "touchpoint": ["renewal"]})])
    rows = anniversary_cutoffs(events, anchor_types=["purchase"], every_months=1, days_before=40, end="2025-06-01")
    assert local(rows)[0] == ("a", "2025-02-08 00:00")  # Mar 20 - 40 days; the Feb 20 one would be before Jan 20
    assert (rows["cutoff"] > rows["anchor"]).all()
    with pytest.raises(ValueError, match="every_months"):
        anniversary_cutoffs(events, anchor_types=["purchase"], every_months=0)


day = st.integers(0, 700)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), day), min_size=1, max_size=8), day,
       st.sampled_from([1, 3, 12]), st.integers(0, 20))
def test_only_the_past_decides_an_anniversary_cutoff(anchors, cut_day, every, before):
    origin = pd.Timestamp("2024-01-01", tz="UTC")
    events = purchases(*[(c, str(origin + pd.Timedelta(days=d, hours=7))) for c, d in anchors])
    horizon = origin + pd.Timedelta(days=cut_day)
    kw = {"anchor_types": ["purchase"], "every_months": every, "days_before": before, "timezone": "Europe/Berlin",
          "end": "2026-06-01"}
    everything = anniversary_cutoffs(events, **kw)
    past_only = anniversary_cutoffs(events[events["ts"] < horizon], **kw)
    known = everything[everything["cutoff"] <= horizon].reset_index(drop=True)
    pd.testing.assert_frame_equal(known, past_only[past_only["cutoff"] <= horizon].reset_index(drop=True))


def test_a_cutoffs_table_keeps_ids_as_text_and_reads_dates_in_the_business_time_zone():
    table = pd.DataFrame({"顧客": ["00042", "00042", "7"], "観測日": ["2025-03-01", "2025-02-01T09:30:00", "2025-03-01T00:00:00Z"]})
    rows = cutoffs_from_table(table, timezone="Asia/Tokyo", columns={"customer_id": "顧客", "cutoff": "観測日"})
    assert local(rows, "Asia/Tokyo") == [("00042", "2025-02-01 09:30"), ("00042", "2025-03-01 00:00"),
                                         ("7", "2025-03-01 09:00")]


@pytest.mark.parametrize(("cells", "problem"), [
    ({"customer_id": ["a", " "], "cutoff": ["2025-01-01", "2025-01-01"]}, "no customer id"),
    ({"customer_id": ["a", "b"], "cutoff": ["2025-01-01", "2025-02-30"]}, "no readable cutoff"),
    ({"customer_id": ["a", "a"], "cutoff": ["2025-01-01", "2025-01-01T00:00:00"]}, "repeated"),
    ({"customer_id": ["a", "b"], "cutoff": ["2025-01-01", "2025-01-01T00:00:00.5"]}, "whole second"),
])
def test_a_broken_cutoffs_table_is_refused_with_the_rows(cells, problem):
    with pytest.raises(ValueError, match=f"1 row\\(s\\) with .*{problem}.*rows 1, 0-based"):
        cutoffs_from_table(pd.DataFrame(cells))
    with pytest.raises(ValueError, match="not found"):
        cutoffs_from_table(pd.DataFrame(cells), columns={"cutoff": "date"})


def small_world() -> pd.DataFrame:
    """Contract starts on the 6th of a month (so 5 days before each anniversary is the 1st) and touches."""
    rng = np.random.default_rng(4)
    ids = [f"{i:05d}" for i in range(30)]
    starts = pd.to_datetime([f"2024-{m:02d}-06" for m in rng.integers(1, 7, len(ids))], utc=True)
    contract = pd.DataFrame({"customer_id": ids, "ts": starts, "touchpoint": "purchase", "value": 100.0})
    n = 1500
    touches = pd.DataFrame({
        "customer_id": rng.choice(ids, n),
        "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 540 * 86_400, n), unit="s"),
        "touchpoint": rng.choice(["webinar", "call", "inquiry", "renewal", "cancellation"], n),
        "value": np.round(rng.gamma(2.0, 50.0, n), 2),
    })
    return pd.concat([contract, touches], ignore_index=True)


def test_custom_cutoffs_give_the_calendar_grids_features_where_they_coincide():
    events = small_world()
    spec = FeatureSpec.from_settings(load_settings())
    anniversary = anniversary_cutoffs(events, anchor_types=["purchase"], every_months=1, days_before=5,
                                      end="2025-05-01")
    grid = training_cutoffs(events, horizon_days=30, n_cutoffs=12, data_end="2025-06-01")
    assert set(anniversary["cutoff"]) <= set(cutoff_grid("2024-02-01", "2025-05-01"))
    shared = anniversary[["customer_id", "cutoff"]].merge(grid, on=["customer_id", "cutoff"])
    assert len(shared) > 200
    by_rule = build_features(events, anniversary[["customer_id", "cutoff"]], spec)
    by_grid = build_features(events, grid, spec)
    key = ["customer_id", "cutoff"]
    left = shared.merge(by_rule.astype({"customer_id": str}), on=key)
    right = shared.merge(by_grid.astype({"customer_id": str}), on=key)
    columns = feature_columns(by_grid)
    # equal up to the last bits of the decayed sums (carried forward between a customer's own cutoffs)
    pd.testing.assert_frame_equal(left[key + columns], right[key + columns], check_exact=False, rtol=1e-12, atol=1e-12)
    # and a table holding the grid's own rows is the grid
    table = cutoffs_from_table(grid.assign(cutoff=grid["cutoff"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")))
    from_table = build_features(events, table, spec)
    pd.testing.assert_frame_equal(from_table.astype({"customer_id": str})[key + columns],
                                  by_grid.astype({"customer_id": str}).sort_values(["cutoff", "customer_id"])
                                  .reset_index(drop=True)[key + columns], check_exact=False, rtol=1e-12, atol=1e-12)
