"""Rates with customer-clustered Wilson intervals: known values, and repeated customers add no information."""

from __future__ import annotations

import numpy as np
import pytest

from signals.views import outcome_table, rates_by_group, wilson_interval


def test_wilson_known_values():
    assert wilson_interval(5, 10) == (0.5, 0.2366, 0.7634)
    rate, low, high = wilson_interval(0, 10)
    assert (rate, low) == (0.0, 0.0) and high == pytest.approx(0.2775, abs=1e-4)  # never a point at zero


def test_one_row_per_customer_is_the_plain_wilson_interval():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    table = rates_by_group(np.zeros(10), ["all"], np.arange(10), y)
    row = table.iloc[0]
    assert row["deff"] == 1.0 and (row["rows"], row["customers"], row["positives"]) == (10, 10, 3)
    assert (round(row["rate"], 4), round(row["low"], 4), round(row["high"], 4)) == wilson_interval(3, 10)


def test_a_customer_counted_k_times_carries_no_more_information():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(float)
    once = rates_by_group(np.zeros(200), ["g"], np.arange(200), y).iloc[0]
    k = 4
    thrice = rates_by_group(np.zeros(200 * k), ["g"], np.repeat(np.arange(200), k), np.repeat(y, k)).iloc[0]
    assert thrice["rows"] == k * once["rows"] and thrice["deff"] == pytest.approx(k)
    assert thrice["low"] == pytest.approx(once["low"]) and thrice["high"] == pytest.approx(once["high"])


def test_ineligible_rows_and_ungrouped_rows_are_left_out():
    group = np.array([0, 0, 1, -1, 1])
    y = np.array([1.0, np.nan, 0.0, 1.0, 1.0])
    table = outcome_table(group, ["a", "b"], np.arange(5), {"purchase": y})
    assert table["rows"].tolist() == [2, 2]                  # every grouped row
    assert table["purchase_rows"].tolist() == [1, 2]         # eligible rows only
    assert table["purchase_rate"].tolist() == [1.0, 0.5]
    assert table["share"].tolist() == [0.5, 0.5]
