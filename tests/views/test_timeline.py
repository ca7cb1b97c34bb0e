"""Seed 002's temperature timeline: the article's formula by hand, and alarms where the lines are crossed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.errors import DataError
from signals.views import (
    AlarmLines,
    Curve,
    History,
    alarm_lines,
    default_curves,
    population,
    temperature,
    timeline,
)
from signals.views._history import Rows
from tests.views.conftest import DAY, history_table

T = pd.Timestamp("2025-07-01", tz="UTC")
EVENTS = history_table([
    ("c1", T - 100 * DAY, "purchase"), ("c1", T - 60 * DAY, "sales_visit"), ("c1", T - 30 * DAY, "seminar"),
    ("c2", T - 20 * DAY, "webinar"),
    ("c3", T - 3 * DAY, "doc_request"), ("c3", T - 2 * DAY, "doc_request"),
])


def by_hand(customer: str, at: pd.Timestamp, points: dict[str, float], half_life: float) -> float:
    own = EVENTS[(EVENTS["customer_id"] == customer) & (EVENTS["ts"] < at)]
    age = (at - own["ts"]).dt.total_seconds() / 86_400
    return float(sum(points.get(t, 0.0) * 0.5 ** (a / half_life) for t, a in zip(own["touchpoint"], age, strict=True)))


def test_temperature_is_the_articles_formula(settings):
    history = History(EVENTS, T, settings)
    prior, = default_curves(history)
    assert prior.name == "prior points" and prior.half_life_days == settings.features.trend_half_life_days
    learned = Curve("learned (purchase)", {"seminar": 4.0, "sales_visit": 2.0}, 15.0, "purchase")
    rows = history.rows_at()
    temps = temperature(history, rows, [prior, learned])
    c1 = list(history.customer_ids[rows.cust]).index("c1")
    # seminar 30 days old (10 points, half-life 30): 5; sales visit 60 days old (13): 3.25; purchase 100 days (20)
    assert temps["prior points"][c1] == pytest.approx(5 + 3.25 + 20 * 0.5 ** (100 / 30))
    assert temps["learned (purchase)"][c1] == pytest.approx(4 * 0.25 + 2 * 0.0625)


def test_population_rise_and_lines(settings):
    history = History(EVENTS, T, settings)
    curves = default_curves(history)
    table = population(history, curves).set_index("customer_id")
    priors = {t: tp.prior_points for t, tp in settings.catalog.items()}
    for cid in ("c1", "c2", "c3"):
        expected = by_hand(cid, T, priors, 30) - by_hand(cid, T - 14 * DAY, priors, 30)
        assert table.loc[cid, "rise"] == pytest.approx(expected)
    assert table["active"].to_dict() == {"c1": True, "c2": False, "c3": False}
    lines = alarm_lines(history, curves, table.reset_index())
    assert lines.surge == pytest.approx(np.quantile(table["rise"], settings.views.timeline.surge_quantile))
    assert lines.cold == pytest.approx(table.loc["c1", "prior points"])     # the only active customer


def test_alarms_fire_where_the_lines_are_crossed(settings):
    history = History(EVENTS, T, settings)
    curves = default_curves(history)
    lines = AlarmLines("prior points", "prior points", surge=5.0, cold=8.5, surge_days=14)
    drawn = timeline(history, ["c1"], curves, lines)
    days = drawn.temperatures["at"]
    priors = {t: tp.prior_points for t, tp in settings.catalog.items()}
    temp = np.array([by_hand("c1", d, priors, 30) for d in days])
    rise = temp - np.array([by_hand("c1", d - 14 * DAY, priors, 30) for d in days])
    np.testing.assert_allclose(drawn.temperatures["prior points"], temp, rtol=1e-9, atol=1e-9)
    up = rise >= 5.0
    expected_kizashi = days[up & ~np.concatenate([[False], up[:-1]])].tolist()
    cold = temp < 8.5                         # c1 is an active subscriber from its purchase on
    active = (days > T - 100 * DAY).to_numpy()
    crossing = cold & active & np.concatenate([[False], ~cold[:-1] & active[:-1]])
    expected_cooling = days[crossing].tolist()
    alarms = drawn.alarms
    assert alarms.loc[alarms["alarm"] == "kizashi", "at"].tolist() == expected_kizashi
    assert alarms.loc[alarms["alarm"] == "cooling", "at"].tolist() == expected_cooling
    assert len(expected_kizashi) == 3 and len(expected_cooling) == 1    # purchase, visit, seminar; cold before the visit
    assert drawn.touches["touchpoint"].tolist() == ["purchase", "sales_visit", "seminar"]
    assert days.iloc[0] > T - 101 * DAY and days.iloc[-1] == T


def test_unknown_customer_is_a_clear_error(settings):
    history = History(EVENTS, T, settings)
    with pytest.raises(DataError, match=r"\['nobody'\] have no touch before"):
        timeline(history, ["c1", "nobody"])
    late = History(pd.concat([EVENTS, history_table([("c9", T + DAY, "webinar")])]), T, settings)
    with pytest.raises(DataError, match="c9"):
        timeline(late, ["c9"])


def test_rows_helper_shifts_whole_days():
    rows = Rows(np.array([0]), np.array([T.value]))
    assert rows.shifted(-14).cutoff[0] == (T - 14 * DAY).value
