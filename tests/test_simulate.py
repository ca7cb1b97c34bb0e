"""The simulator: determinism, the events contract, the truth it reports, and the messy exports.

The strongest checks re-derive the daily hazards from the *events* (not from the simulator's
internals) with the formula and parameters written in ``truth``, and compare them with what
happened: if the truth file lied about the weights, the base logits or the half-life, the
expected and observed counts would part.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

from signals.cli import app
from signals.io.tables import read_events, read_table
from signals.io.world import read_truth, sql_table_of, write_raw_sources, write_world
from signals.jobs.simulate import run_simulate
from signals.messy import REJECT_REASONS, messy_sources
from signals.schemas import check_events
from signals.settings import Settings, load_settings
from signals.simulate import (
    DEFAULT_PARAMETERS,
    ENGAGEMENT_TYPES,
    SOURCE_OF,
    STATUSES,
    SimulatedWorld,
    WorldParameters,
    simulate_crm,
)

DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
# The demo's source paths are relative to configs/; these put them under the working directory
# (tests run in a temporary one) with --set reaching the list items by source name.
HERE = ["ingest.sources.sfa.path=data/raw/sfa.csv", "ingest.sources.marketing.path=data/raw/marketing.parquet",
        "ingest.sources.support.url=sqlite:///data/raw/support.db"]
SMALL = ["simulate.n_customers=1500", "simulate.start=2023-01-01", "simulate.end=2025-01-01",
         "simulate.shift_date=2024-01-01", "simulate.seed=11"]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(overrides=SMALL)


@pytest.fixture(scope="module")
def world(settings: Settings) -> SimulatedWorld:
    return simulate_crm(settings)


@pytest.fixture(scope="module")
def demo_settings() -> Settings:
    return load_settings(DEMO, overrides=["simulate.n_customers=600", *HERE])


@pytest.fixture(scope="module")
def demo_world(demo_settings: Settings) -> SimulatedWorld:
    return simulate_crm(demo_settings)


# --------------------------------------------------------------------------------------------
# helpers: replay the world from its events


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, dtypes (categories included) and values; much faster than assert_frame_equal
    on categoricals with thousands of categories."""
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.equals(b.dtypes), (a.dtypes, b.dtypes)
    assert a.index.equals(b.index)
    assert a.equals(b)


def _day_index(world: SimulatedWorld, ts: pd.Series) -> np.ndarray:
    """Day of each timestamp since the start (UTC worlds: days are 86 400 s)."""
    start = pd.Timestamp(world.truth["start_utc"])
    return ((ts - start).dt.total_seconds().to_numpy() // 86_400).astype(np.int64)


def _n_days(world: SimulatedWorld) -> int:
    return (dt.date.fromisoformat(world.truth["end"]) - dt.date.fromisoformat(world.truth["start"])).days


def _decayed_sums(world: SimulatedWorld, weights: dict[str, float]) -> np.ndarray:
    """sum_k w_k D_k(t) at the start of every day, from the events alone (customers x days)."""
    ev = world.events
    n, n_days = len(world.customers), _n_days(world)
    half_life = world.truth["true_half_life_days"]
    eng = ev["touchpoint"].isin(ENGAGEMENT_TYPES).to_numpy()
    sub = ev[eng]
    start = pd.Timestamp(world.truth["start_utc"])
    seconds = (sub["ts"] - start).dt.total_seconds().to_numpy()
    day = (seconds // 86_400).astype(np.int64)
    w = sub["touchpoint"].astype(str).map(weights).to_numpy(dtype=float)
    contrib = w * 0.5 ** (((day + 1) * 86_400 - seconds) / 86_400 / half_life)  # at the next day start
    added = np.zeros((n, n_days))
    np.add.at(added, (sub["customer_id"].cat.codes.to_numpy(), day), contrib)
    out = np.zeros((n, n_days))
    decay = 0.5 ** (1 / half_life)
    for d in range(1, n_days):
        out[:, d] = out[:, d - 1] * decay + added[:, d - 1]
    return out


def _replay_status(world: SimulatedWorld) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status at the start of each day (0 prospect, 1 active, 2 churned), purchase and churn days."""
    ev = world.events
    n, n_days = len(world.customers), _n_days(world)
    status = np.zeros((n, n_days), dtype=np.int8)
    bought = np.zeros((n, n_days), dtype=bool)
    churned = np.zeros((n, n_days), dtype=bool)
    contract = ev[ev["touchpoint"].isin(["purchase", "cancellation"])]
    codes = contract["customer_id"].cat.codes.to_numpy()
    days = _day_index(world, contract["ts"])
    kinds = contract["touchpoint"].astype(str).to_numpy()
    for i, d, kind in zip(codes, days, kinds, strict=True):
        if kind == "purchase":
            bought[i, d] = True
            status[i, d + 1:] = 1
        else:
            churned[i, d] = True
            status[i, d + 1:] = 2
    return status, bought, churned


def _eligible(world: SimulatedWorld) -> np.ndarray:
    """Hazards run from the day of first_seen when it is a day start, else from the next day."""
    n_days = _n_days(world)
    start = pd.Timestamp(world.truth["start_utc"])
    seconds = (world.customers["first_seen"] - start).dt.total_seconds().to_numpy()
    first = np.where(seconds % 86_400 == 0, seconds // 86_400, seconds // 86_400 + 1).astype(np.int64)
    return np.arange(n_days)[None, :] >= first[:, None]


def _hazards(world: SimulatedWorld, purchase_weights=None, churn_weights=None):
    """Daily purchase and churn probabilities per (customer, day) from truth and latent effects."""
    truth = world.truth
    n_days = _n_days(world)
    shift_day = (dt.date.fromisoformat(truth["shift_date"]) - dt.date.fromisoformat(truth["start"])).days \
        if truth["shift_date"] else n_days
    after = np.arange(n_days)[None, :] >= shift_day
    wp = purchase_weights or truth["weights"]["purchase"]
    wc = churn_weights or truth["weights"]["churn"]
    sp = np.where(after, _decayed_sums(world, wp["after"]), _decayed_sums(world, wp["before"]))
    sc = np.where(after, _decayed_sums(world, wc["after"]), _decayed_sums(world, wc["before"]))
    seg = world.customers["segment"].astype(str).to_numpy()
    status, bought, churned = _replay_status(world)
    base_p = np.array([[truth["base_logits"]["purchase"][s][g] for s in STATUSES] for g in seg])
    base_c = np.array([truth["base_logits"]["churn"][g] for g in seg])
    u = world.latent["purchase_effect"].to_numpy()[:, None]
    v = world.latent["churn_effect"].to_numpy()[:, None]
    p_buy = expit(base_p[np.arange(len(seg))[:, None], status] + sp + u)
    p_churn = expit(base_c[:, None] + sc + v)
    eligible = _eligible(world)
    return p_buy, p_churn, status, bought, churned, eligible


# --------------------------------------------------------------------------------------------
# determinism and the events contract


def test_same_settings_give_identical_worlds(settings: Settings, world: SimulatedWorld) -> None:
    again = simulate_crm(settings)
    _assert_same(again.events, world.events)
    _assert_same(again.customers, world.customers)
    _assert_same(again.latent, world.latent)
    assert again.truth == world.truth


def test_another_seed_gives_another_world(settings: Settings, world: SimulatedWorld) -> None:
    other = simulate_crm(settings.model_copy(update={"simulate": settings.simulate.model_copy(update={"seed": 12})}))
    assert not other.events.equals(world.events)
    assert not other.customers.equals(world.customers)


def test_events_follow_the_contract(settings: Settings, world: SimulatedWorld) -> None:
    ev = world.events
    _assert_same(check_events(ev, settings.catalog), ev)
    assert list(ev.columns) == ["customer_id", "ts", "touchpoint", "value", "source"]
    assert str(ev["ts"].dtype) == "datetime64[ns, UTC]"
    assert list(ev["touchpoint"].cat.categories) == list(settings.catalog)
    assert (ev["ts"].array.asi8 % 1_000_000_000 == 0).all()
    codes = ev["customer_id"].cat.codes.to_numpy()
    ns = ev["ts"].array.asi8
    assert (np.diff(codes) >= 0).all()
    assert (np.diff(ns)[np.diff(codes) == 0] >= 0).all()
    assert not ev.duplicated(["customer_id", "ts", "touchpoint"]).any()
    assert ev["ts"].min() >= pd.Timestamp("2023-01-01", tz="UTC")
    assert ev["ts"].max() < pd.Timestamp("2025-01-01", tz="UTC")
    assert set(ev["touchpoint"].astype(str)) == set(SOURCE_OF)


def test_values_are_positive_exactly_for_purchases_and_renewals(world: SimulatedWorld) -> None:
    ev = world.events
    paid = ev["touchpoint"].isin(["purchase", "renewal"]).to_numpy()
    assert (ev["value"] >= 0).all()
    assert (ev["value"].to_numpy()[paid] > 0).all()
    assert (ev["value"].to_numpy()[~paid] == 0).all()


def test_sources_follow_the_type(world: SimulatedWorld) -> None:
    ev = world.events
    expected = ev["touchpoint"].astype(str).map(SOURCE_OF)
    assert (ev["source"].astype(str) == expected).all()


def test_customers_table_and_first_seen(world: SimulatedWorld) -> None:
    customers = world.customers
    assert list(customers.columns) == ["customer_id", "first_seen", "industry", "size_band", "employees",
                                       "segment", "region"]
    assert customers["customer_id"].astype(str).tolist()[:3] == ["C000001", "C000002", "C000003"]
    assert customers["customer_id"].dtype == world.events["customer_id"].dtype
    assert customers["industry"].nunique() == 8
    assert set(customers["segment"].astype(str)) == {"SMB", "Mid", "Enterprise"}
    seg = np.where(customers["employees"] < 100, "SMB", np.where(customers["employees"] < 1000, "Mid", "Enterprise"))
    assert (customers["segment"].astype(str).to_numpy() == seg).all()
    at_start = (customers["first_seen"] == pd.Timestamp("2023-01-01", tz="UTC")).mean()
    assert 0.66 < at_start < 0.74
    assert (customers["first_seen"].array.asi8 % 1_000_000_000 == 0).all()
    first = world.events.merge(customers[["customer_id", "first_seen"]], on="customer_id")
    assert len(first) == len(world.events)
    assert (first["ts"] >= first["first_seen"]).all()
    # late arrivals do have events: the rule is not trivially met
    late = customers.loc[customers["first_seen"] > pd.Timestamp("2023-01-01", tz="UTC"), "customer_id"]
    assert world.events["customer_id"].isin(late).sum() > 1000


def test_local_days_and_business_hours(demo_world: SimulatedWorld) -> None:
    ev = demo_world.events
    tokyo = ev["ts"].dt.tz_convert("Asia/Tokyo")
    assert tokyo.min() >= pd.Timestamp("2023-01-01", tz="Asia/Tokyo")
    assert tokyo.max() < pd.Timestamp("2026-01-01", tz="Asia/Tokyo")
    assert demo_world.truth["start_utc"] == "2022-12-31T15:00:00+00:00"
    hours = tokyo.dt.hour
    visits = ev["touchpoint"].isin(["sales_visit", "call"]).to_numpy()
    assert ((hours[visits] >= 7) & (hours[visits] < 20)).mean() > 0.95
    weekend = tokyo.dt.day_of_week.to_numpy() >= 5
    assert weekend[visits].mean() < 0.05           # office contacts rarely at weekends ...
    assert weekend[ev["touchpoint"].eq("web_visit").to_numpy()].mean() > 0.2  # ... web visits do happen


def test_catalog_without_a_simulated_type_is_an_error() -> None:
    catalog = {k: v for k, v in Settings().catalog.items() if k != "webinar"}
    with pytest.raises(ValueError, match="webinar"):
        simulate_crm(Settings(catalog=catalog))
    wrong_role = dict(Settings().catalog)
    wrong_role["renewal"] = wrong_role["renewal"].model_copy(update={"role": "purchase"})
    with pytest.raises(ValueError, match="renewal"):
        simulate_crm(Settings(catalog=wrong_role))


def test_world_parameters_are_validated() -> None:
    weights = dict(DEFAULT_PARAMETERS.purchase_weights)
    del weights["call"]
    with pytest.raises(ValueError, match="call"):
        WorldParameters(purchase_weights=weights)


# --------------------------------------------------------------------------------------------
# the truth


def test_truth_records_the_generating_parameters(settings: Settings, world: SimulatedWorld) -> None:
    truth = json.loads(json.dumps(world.truth))  # JSON-serialisable, unchanged by the round trip
    assert truth == world.truth
    p = DEFAULT_PARAMETERS
    assert truth["weights"]["purchase"]["before"] == dict(p.purchase_weights)
    assert truth["weights"]["purchase"]["after"] == dict(p.purchase_weights_after_shift)
    assert truth["weights"]["churn"]["before"] == dict(p.churn_weights)
    assert truth["weights"]["churn"]["after"] == dict(p.churn_weights_after_shift)
    assert truth["shift_date"] == "2024-01-01" and truth["seed"] == 11
    assert truth["n_customers"] == 1500 and truth["true_half_life_days"] == 30.0
    assert truth["base_logits"]["churn"]["SMB"] == pytest.approx(p.churn_base_logit + p.segment_churn_offset["SMB"])
    seminar = truth["touch_rates_per_year"]
    assert seminar["after"]["seminar"]["prospect"] == pytest.approx(0.2 * seminar["before"]["seminar"]["prospect"])
    # every engagement type has a distinct weight within each task and period
    for task in ("purchase", "churn"):
        for period in ("before", "after"):
            w = truth["weights"][task][period]
            assert set(w) == set(ENGAGEMENT_TYPES) and len(set(w.values())) == len(w)
    assert truth["weights"]["churn"]["before"]["inquiry"] > 0 > truth["weights"]["churn"]["before"]["sales_visit"]
    assert truth["weights"]["purchase"]["before"]["newsletter"] == 0


def test_truth_counts_match_the_events(world: SimulatedWorld) -> None:
    realised = world.truth["realised"]
    ev = world.events
    counts = ev["touchpoint"].value_counts()
    assert realised["events"] == len(ev)
    assert realised["events_per_type"] == {str(k): int(counts[k]) for k in ev["touchpoint"].cat.categories}
    assert realised["purchases"] == counts["purchase"] == (
        realised["new_purchases"] + realised["upsells"] + realised["winbacks"])
    assert realised["churns"] == counts["cancellation"]
    assert realised["renewals"] == counts["renewal"]
    assert realised["customers"] == len(world.customers)
    status, bought, churned = _replay_status(world)
    eligible = _eligible(world)
    years = {s: float((eligible & (status == i)).sum()) / 365.25 for i, s in enumerate(STATUSES)}
    for s in STATUSES:
        assert realised["customer_years"][s] == pytest.approx(years[s])
    assert realised["new_purchases"] == int((bought & (status == 0)).sum())
    assert realised["upsells"] == int((bought & (status == 1)).sum())


def test_hazards_in_truth_explain_the_purchases_and_churns(world: SimulatedWorld) -> None:
    """Expected counts under the truth's formula match the observed ones; wrong weights fit worse."""
    p_buy, p_churn, status, bought, churned, eligible = _hazards(world)
    active = eligible & (status == 1)
    after = np.arange(bought.shape[1])[None, :] >= (dt.date(2024, 1, 1) - dt.date(2023, 1, 1)).days
    checks = ((p_buy, bought, eligible), (p_churn, churned, active),
              (p_buy, bought, eligible & ~after), (p_buy, bought, eligible & after))  # per period: the shift
    for p, observed, cells in checks:
        expected = p[cells].sum()
        assert observed[~eligible].sum() == 0
        assert abs(observed[cells].sum() - expected) < 4 * np.sqrt(expected), (observed[cells].sum(), expected)
    assert churned[eligible & (status != 1)].sum() == 0

    def loglik(p, observed, cells):
        return float(np.sum(np.where(observed[cells], np.log(p[cells]), np.log1p(-p[cells]))))

    reversed_weights = {
        task: {period: dict(zip(w, list(w.values())[::-1], strict=True)) for period, w in periods.items()}
        for task, periods in world.truth["weights"].items()
    }
    p_buy_wrong, p_churn_wrong, *_ = _hazards(world, reversed_weights["purchase"], reversed_weights["churn"])
    assert loglik(p_buy, bought, eligible) > loglik(p_buy_wrong, bought, eligible) + 20
    assert loglik(p_churn, churned, active) > loglik(p_churn_wrong, churned, active) + 5


def test_recent_sales_visits_raise_purchases(world: SimulatedWorld) -> None:
    visits = _decayed_sums(world, {t: float(t == "sales_visit") for t in ENGAGEMENT_TYPES})
    status, bought, _ = _replay_status(world)
    prospects = _eligible(world) & (status == 0)
    recent = prospects & (visits > 0.5)
    none = prospects & (visits < 0.01)
    assert recent.sum() > 1000
    assert bought[recent].mean() > 2 * bought[none].mean()


def test_a_stronger_weight_gives_more_purchases(settings: Settings, world: SimulatedWorld) -> None:
    stronger = {**DEFAULT_PARAMETERS.purchase_weights, "web_visit": 0.6}
    params = dataclasses.replace(DEFAULT_PARAMETERS, purchase_weights=stronger,
                                 purchase_weights_after_shift={**DEFAULT_PARAMETERS.purchase_weights_after_shift,
                                                               "web_visit": 0.6})
    boosted = simulate_crm(settings, params=params)
    assert boosted.truth["weights"]["purchase"]["before"]["web_visit"] == 0.6
    assert boosted.truth["realised"]["new_purchases"] > 1.3 * world.truth["realised"]["new_purchases"]


def test_the_shift_changes_the_channel_mix(world: SimulatedWorld) -> None:
    ev = world.events
    eng = ev[ev["touchpoint"].isin(ENGAGEMENT_TYPES)]
    after = eng["ts"] >= pd.Timestamp("2024-01-01", tz="UTC")
    before_share = eng.loc[~after, "touchpoint"].value_counts(normalize=True)
    after_share = eng.loc[after, "touchpoint"].value_counts(normalize=True)
    assert after_share["seminar"] < 0.4 * before_share["seminar"]
    assert after_share["webinar"] > 1.8 * before_share["webinar"]
    assert after_share["doc_request"] > 1.2 * before_share["doc_request"]


def test_without_a_shift_nothing_changes(settings: Settings) -> None:
    flat = simulate_crm(load_settings(overrides=[*SMALL, "simulate.shift_date=null", "simulate.n_customers=300"]))
    truth = flat.truth
    assert truth["shift_date"] is None
    assert truth["weights"]["purchase"]["after"] == truth["weights"]["purchase"]["before"]
    assert truth["touch_rates_per_year"]["after"] == truth["touch_rates_per_year"]["before"]
    assert truth["realised"]["per_period"]["after"]["customer_years"] == dict.fromkeys(STATUSES, 0.0)


def test_churned_and_prospects_touch_less_than_subscribers(world: SimulatedWorld) -> None:
    status, _, _ = _replay_status(world)
    eligible = _eligible(world)
    ev = world.events
    touches = ev[ev["touchpoint"].isin(ENGAGEMENT_TYPES)]
    codes = touches["customer_id"].cat.codes.to_numpy()
    days = _day_index(world, touches["ts"])
    touch_status = status[codes, days]
    visits = touches["touchpoint"].eq("sales_visit").to_numpy()
    rate = {s: ((touch_status == i) & eligible[codes, days]).sum() / (eligible & (status == i)).sum()
            for i, s in enumerate(STATUSES)}
    visit_rate = {s: ((touch_status == i) & visits).sum() / (eligible & (status == i)).sum()
                  for i, s in enumerate(STATUSES)}
    assert rate["churned"] < 0.5 * rate["prospect"] < rate["active"]
    assert visit_rate["active"] > 3 * visit_rate["prospect"] > 3 * visit_rate["churned"]


def test_contract_lifecycle_and_renewals_on_anniversaries(world: SimulatedWorld) -> None:
    """Replay every customer's contract events: cancellations and renewals only for subscribers,
    a renewal on every anniversary of the contract start while active (and only then), valued at
    the contract value at the start of that day."""
    ev = world.events
    contract = ev[ev["touchpoint"].isin(["purchase", "renewal", "cancellation"])]
    end = dt.date.fromisoformat(world.truth["end"])
    checked = 0
    for _, rows in contract.groupby("customer_id", observed=True, sort=False):
        active, start, value, pending = False, None, 0.0, 0.0
        expected_renewals: list[dt.date] = []
        seen_renewals: list[dt.date] = []
        for day, day_rows in rows.groupby(rows["ts"].dt.date, sort=True):
            kinds = day_rows["touchpoint"].astype(str).tolist()
            value += pending
            pending = 0.0
            if "renewal" in kinds:
                assert active, "renewal without an active contract"
                assert day_rows.loc[day_rows["touchpoint"] == "renewal", "value"].item() == value
                seen_renewals.append(day)
                checked += 1
            if "cancellation" in kinds:
                assert active and "purchase" not in kinds
                expected_renewals += _anniversaries(start, day, inclusive=False)
                active, start, value = False, None, 0.0
            if "purchase" in kinds:
                amount = day_rows.loc[day_rows["touchpoint"] == "purchase", "value"].item()
                if active:
                    pending = amount             # an upsell counts from the next day on
                else:
                    active, start, value = True, day, amount
        if active:
            expected_renewals += _anniversaries(start, end, inclusive=False)
        assert seen_renewals == sorted(expected_renewals)
    assert checked > 100


def _anniversaries(start: dt.date, until: dt.date, *, inclusive: bool) -> list[dt.date]:
    out, year = [], 1
    while True:
        try:
            day = start.replace(year=start.year + year)
        except ValueError:
            day = start.replace(year=start.year + year, day=28)
        if day > until or (day == until and not inclusive):
            return out
        out.append(day)
        year += 1


def test_label_relevant_rates_are_plausible(world: SimulatedWorld) -> None:
    rates = world.truth["realised"]["yearly_rates"]
    assert 0.08 < rates["new_purchases_per_prospect_year"] < 0.3
    assert 0.08 < rates["churns_per_subscriber_year"] < 0.3
    assert 0.08 < rates["upsells_per_subscriber_year"] < 0.4


def test_engaged_customers_touch_more(world: SimulatedWorld) -> None:
    ev = world.events
    own = ev[ev["touchpoint"].isin(["web_visit", "email_open", "doc_request"])]
    per_customer = own.groupby("customer_id", observed=False).size().to_numpy()
    presence = (pd.Timestamp("2025-01-01", tz="UTC") - world.customers["first_seen"]).dt.days.to_numpy()
    rate = per_customer / np.maximum(presence, 1)
    engagement = world.latent["engagement"].to_numpy()
    assert np.corrcoef(engagement, rate)[0, 1] > 0.5
    episodes = world.latent["episode_days"].to_numpy() / np.maximum(presence, 1)
    assert np.corrcoef(episodes, rate / engagement)[0, 1] > 0.2


# --------------------------------------------------------------------------------------------
# the confounded world and what the points should be


@pytest.fixture(scope="module")
def confounded(settings: Settings) -> SimulatedWorld:
    return simulate_crm(settings.model_copy(update={"simulate": settings.simulate.model_copy(update={"confounding": True})}))


def _per_customer_rate(world: SimulatedWorld, touchpoint: str) -> np.ndarray:
    ev = world.events[world.events["touchpoint"] == touchpoint]
    count = ev.groupby("customer_id", observed=False).size().to_numpy()
    presence = (pd.Timestamp("2025-01-01", tz="UTC") - world.customers["first_seen"]).dt.days.to_numpy()
    return count / np.maximum(presence, 1)


def test_the_default_world_is_unconfounded_and_its_points_truth_is_exact(world: SimulatedWorld) -> None:
    assert world.truth["confounding"] == {"enabled": False}
    truth = world.truth["points_truth"]["purchase"]
    assert truth["horizon_days"] == 60
    causal = truth["before"]["causal_logodds"]
    assert causal["newsletter"] == 0.0 and causal["sales_visit"] > causal["seminar"] > causal["email_open"] > 0
    # one touch now, weight w, half-life H: log of the mean over the horizon of exp(w 0.5^(day / H))
    w = world.truth["weights"]["purchase"]["before"]["sales_visit"]
    days = np.arange(60)
    assert causal["sales_visit"] == pytest.approx(np.log(np.mean(np.exp(w * 0.5 ** (days / 30.0)))))
    assert truth["before"]["predictive_logodds"] is None
    sales = _per_customer_rate(world, "sales_visit")
    assert abs(np.corrcoef(world.latent["purchase_effect"], sales)[0, 1]) < 0.1


def test_the_confounded_world_targets_warm_accounts(confounded: SimulatedWorld) -> None:
    truth = confounded.truth
    assert truth["confounding"]["enabled"] and truth["confounding"]["latent_correlation"] == -0.6
    u, v = confounded.latent["purchase_effect"].to_numpy(), confounded.latent["churn_effect"].to_numpy()
    assert np.corrcoef(u, v)[0, 1] < -0.45  # interested accounts churn less
    for touchpoint in ("sales_visit", "call", "newsletter"):  # sales and marketing follow the latent interest
        assert np.corrcoef(u, _per_customer_rate(confounded, touchpoint))[0, 1] > 0.2, touchpoint
    assert abs(np.corrcoef(u, _per_customer_rate(confounded, "webinar"))[0, 1]) < 0.15
    rates = truth["touch_rates_per_year"]["before"]["newsletter"]
    assert rates["active"] == pytest.approx(3 * rates["prospect"])  # newsletters go to active accounts
    for task in ("purchase", "churn"):
        entry = truth["points_truth"][task]["before"]
        assert entry["causal_logodds"]["newsletter"] == 0.0 and entry["rows"] > 300
        assert set(entry["predictive_logodds"]) == set(ENGAGEMENT_TYPES) == set(entry["adjusted_logodds"])


def test_saturating_effects_make_the_fifth_touch_worth_less_than_the_first() -> None:
    from signals.simulate import _horizon_logodds

    first, fifth = _horizon_logodds(np.array([1.0]), np.array([[0.0], [4.0]]), 60, 30.0, 2.0)
    assert 0 < fifth[0] < first[0] < _horizon_logodds(np.array([1.0]), None, 60, 30.0, None)[0] + 1e-12


# --------------------------------------------------------------------------------------------
# messy raw exports


def _parse_raw(frames: dict[str, pd.DataFrame], settings: Settings) -> tuple[pd.DataFrame, dict[str, int]]:
    """A small independent reader of the demo's raw formats: clean rows -> events, bad rows by reason."""
    as_of = pd.Timestamp(settings.ingest.as_of).tz_convert("UTC")
    parts, bad = [], dict.fromkeys(REJECT_REASONS, 0)
    for rank, src in enumerate(settings.ingest.sources):
        raw = frames[src.name].reset_index(drop=True)
        cols = src.columns
        cid = raw[cols["customer_id"]]
        ts_raw = raw[cols["ts"]]
        if isinstance(ts_raw.dtype, pd.DatetimeTZDtype):
            ts = ts_raw.dt.tz_convert("UTC")
        else:
            fmt = src.ts_format or "%Y-%m-%d %H:%M:%S"
            ts = pd.to_datetime(ts_raw, format=fmt, errors="coerce").dt.tz_localize(src.timezone).dt.tz_convert("UTC")
        tp = raw[cols["touchpoint"]].map(src.touchpoints)
        if "value" in cols:
            text = raw[cols["value"]].fillna("").astype(str)
            value = pd.to_numeric(text.replace("", "0"), errors="coerce")
        else:
            value = pd.Series(0.0, index=raw.index)
        reason = pd.Series("", index=raw.index)
        checks = [("missing_customer_id", cid.isna()), ("unparseable_ts", ts.isna()),
                  ("unknown_touchpoint", tp.isna()), ("unparseable_value", value.isna()),
                  ("negative_value", value < 0), ("future_ts", ts > as_of)]
        for name, mask in checks:
            reason[(reason == "") & mask.fillna(False).astype(bool)] = name
        for name in REJECT_REASONS:
            bad[name] += int((reason == name).sum())
        ok = reason == ""
        parts.append(pd.DataFrame({"customer_id": cid[ok].astype(str), "ts": ts[ok], "touchpoint": tp[ok].astype(str),
                                   "value": value[ok].astype(float), "source": src.name, "rank": rank}))
    events = pd.concat(parts, ignore_index=True).sort_values(["customer_id", "ts", "touchpoint", "rank"], kind="stable")
    return events, bad


def test_messy_sources_reproduce_the_events(demo_settings: Settings, demo_world: SimulatedWorld) -> None:
    frames, manifest = messy_sources(demo_world, demo_settings, seed=5)
    assert list(frames) == ["sfa", "marketing", "support"]
    assert list(frames["sfa"].columns) == ["AccountId", "ActivityDate", "ActivityType", "Amount"]
    assert list(frames["marketing"].columns) == ["contact_account", "event_time", "event_name"]
    assert list(frames["support"].columns) == ["customer", "opened_at", "category"]
    assert isinstance(frames["marketing"]["event_time"].dtype, pd.DatetimeTZDtype)
    parsed, bad = _parse_raw(frames, demo_settings)
    assert bad == manifest["bad_rows"]
    assert all(bad[r] > 0 for r in REJECT_REASONS)
    deduped = parsed.drop_duplicates(["customer_id", "ts", "touchpoint"], keep="first")
    assert len(parsed) - len(deduped) == manifest["cross_source_duplicates"] > 0
    original = demo_world.events.assign(customer_id=demo_world.events["customer_id"].astype(str),
                                        touchpoint=demo_world.events["touchpoint"].astype(str),
                                        source=demo_world.events["source"].astype(str))
    got = deduped.reset_index(drop=True)
    cols = ["customer_id", "ts", "touchpoint", "value"]
    pd.testing.assert_frame_equal(got[cols], original[cols].sort_values(cols[:3]).reset_index(drop=True),
                                  check_dtype=False)
    changed = (got["source"].to_numpy() != original.sort_values(cols[:3])["source"].to_numpy()).sum()
    assert changed == manifest["source_changes"] == manifest["cross_source_duplicates"]
    # the duplicates are seminars also logged in SFA, at the same instant
    sfa = frames["sfa"]
    assert (sfa["ActivityType"] == "Seminar attended").sum() == manifest["sources"]["sfa"]["duplicate_rows"]


def test_messy_manifest_counts_match_the_frames(demo_settings: Settings, demo_world: SimulatedWorld) -> None:
    frames, manifest = messy_sources(demo_world, demo_settings, seed=5)
    assert manifest["events"] == len(demo_world.events)
    total_clean = 0
    for name, frame in frames.items():
        info = manifest["sources"][name]
        assert info["rows"] == len(frame) == info["clean_rows"] + info["duplicate_rows"] + info["bad_rows"]
        assert info["bad_rows"] == sum(info["bad_rows_by_reason"].values())
        assert info["clean_rows"] == int((demo_world.events["source"] == name).sum())
        total_clean += info["clean_rows"]
        id_col = demo_settings.ingest.sources[list(frames).index(name)].columns["customer_id"]
        assert frame[id_col].isna().sum() == info["bad_rows_by_reason"]["missing_customer_id"]
    assert total_clean == len(demo_world.events)
    assert manifest["expected"] == {"events": len(demo_world.events), "rejects": sum(manifest["bad_rows"].values()),
                                    "duplicates_dropped": manifest["cross_source_duplicates"]}
    assert list(manifest["bad_rows"]) == list(REJECT_REASONS)
    json.dumps(manifest)
    # raw names of both languages are used, and the SFA amounts are exact integers or empty
    sfa = frames["sfa"]
    assert {"訪問", "Sales visit", "電話", "Phone call"} <= set(sfa["ActivityType"])
    amounts = sfa["Amount"].dropna()
    clean = amounts[amounts.str.fullmatch(r"\d*")]
    assert (clean == "").sum() > 0 and (clean != "").sum() > 0
    again, manifest_again = messy_sources(demo_world, demo_settings, seed=5)
    for name in frames:
        pd.testing.assert_frame_equal(frames[name], again[name])
    assert manifest_again == manifest


def test_messy_sources_need_sources_and_as_of(settings: Settings, world: SimulatedWorld,
                                              demo_settings: Settings) -> None:
    with pytest.raises(ValueError, match="ingest.sources"):
        messy_sources(world, settings, seed=1)
    no_as_of = demo_settings.model_copy(update={"ingest": demo_settings.ingest.model_copy(update={"as_of": None})})
    with pytest.raises(ValueError, match="as_of"):
        messy_sources(world, no_as_of, seed=1)
    early = demo_settings.model_copy(update={"ingest": demo_settings.ingest.model_copy(
        update={"as_of": dt.datetime(2024, 6, 1, tzinfo=dt.UTC)})})
    with pytest.raises(ValueError, match="after ingest.as_of"):
        messy_sources(world, early, seed=1)


def test_ingestion_reproduces_the_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        demo_settings: Settings, demo_world: SimulatedWorld) -> None:
    """The package's own ingestion on the written raw sources gives back the events exactly."""
    ingest_module = pytest.importorskip("signals.ingest")
    monkeypatch.chdir(tmp_path)
    frames, manifest = messy_sources(demo_world, demo_settings, seed=2)
    write_raw_sources(frames, demo_settings)
    result = ingest_module.ingest(demo_settings.ingest.sources, touchpoints=list(demo_settings.catalog),
                                  as_of=demo_settings.ingest.as_of)
    got, want = result.events, demo_world.events
    for col in ("customer_id", "touchpoint"):
        assert got[col].astype(str).tolist() == want[col].astype(str).tolist()
    assert got["ts"].equals(want["ts"]) and got["value"].equals(want["value"])
    assert int((got["source"].astype(str).to_numpy() != want["source"].astype(str).to_numpy()).sum()) == \
        manifest["source_changes"]
    assert result.rejected_by_reason() == {r: n for r, n in manifest["bad_rows"].items() if n}
    assert int(result.report.loc["total", "duplicates"]) == manifest["cross_source_duplicates"]


# --------------------------------------------------------------------------------------------
# files, job, CLI


def test_write_world_and_read_truth(tmp_path: Path, settings: Settings, world: SimulatedWorld) -> None:
    paths = settings.paths.model_copy(update={"events": tmp_path / "e.parquet", "customers": tmp_path / "c.parquet",
                                              "truth": tmp_path / "t" / "truth.json"})
    written = write_world(world, paths)
    assert set(written) == {"events", "customers", "truth"}
    _assert_same(read_events(paths.events, settings.catalog), world.events)
    _assert_same(read_table(paths.customers), world.customers)
    assert read_truth(paths.truth) == world.truth
    (tmp_path / "other.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a simulator truth"):
        read_truth(tmp_path / "other.json")


def _demo_config_in(folder: Path) -> Path:
    """configs/demo.yaml copied to folder/configs: its source paths (relative to the file) land in folder/data/raw."""
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    shutil.copy(DEMO, folder / "configs" / "demo.yaml")
    return Path("configs/demo.yaml")


def test_write_raw_sources_where_ingestion_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 demo_settings: Settings, demo_world: SimulatedWorld) -> None:
    monkeypatch.chdir(tmp_path)
    frames, _ = messy_sources(demo_world, demo_settings, seed=3)
    written = write_raw_sources(frames, demo_settings)
    assert written["sfa"] == "data/raw/sfa.csv"
    sfa = pd.read_csv("data/raw/sfa.csv", dtype=str, keep_default_na=False)
    expected = frames["sfa"].fillna("")
    assert (sfa.to_numpy() == expected.to_numpy()).all()
    marketing = pd.read_parquet("data/raw/marketing.parquet")
    blank = {"contact_account": ""}
    pd.testing.assert_frame_equal(marketing.fillna(blank), frames["marketing"].fillna(blank), check_dtype=False)
    source = demo_settings.ingest.sources[2]
    assert sql_table_of(source.query) == "tickets"
    with sqlite3.connect("data/raw/support.db") as con:
        support = pd.read_sql(source.query, con)
    assert support.fillna("").to_numpy().tolist() == frames["support"].fillna("").to_numpy().tolist()
    with pytest.raises(ValueError, match="nowhere"):
        write_raw_sources({"nowhere": frames["sfa"]}, demo_settings)


def test_run_simulate_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(_demo_config_in(tmp_path), overrides=["simulate.n_customers=150"])
    summary = run_simulate(s, messy=True, progress=False)
    json.dumps(summary)
    assert summary["customers"] == 150
    assert summary["events"] == len(read_table(s.paths.events)) == sum(summary["events_per_type"].values())
    assert Path("data/raw/sfa.csv").is_file() and Path("data/raw/support.db").is_file()
    assert read_truth(s.paths.truth)["realised"]["churns"] == summary["churns"]
    assert json.loads(Path("data/raw/manifest.json").read_text(encoding="utf-8")) == summary["manifest"]
    with pytest.raises(ValueError, match="ingest.sources"):
        run_simulate(load_settings(overrides=["simulate.n_customers=10"]), messy=True)


def test_cli_simulate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--set", "simulate.n_customers=120", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "customers 120" in result.output and "sales_visit" in result.output
    assert Path("data/events.parquet").is_file() and not Path("data/raw").exists()
    config = _demo_config_in(tmp_path)
    result = runner.invoke(app, ["simulate", "--config", str(config), "--set", "simulate.n_customers=120"])
    assert result.exit_code == 0, result.output
    assert Path("data/raw/marketing.parquet").is_file()
    result = runner.invoke(app, ["simulate", "--set", "simulate.n_customers=10", "--messy"])
    assert result.exit_code == 2 and "ingest.sources" in result.output
    result = runner.invoke(app, ["simulate", "--set", "simulate.n_customers=0"])
    assert result.exit_code == 2
    help_text = runner.invoke(app, ["simulate", "--help"]).output
    for option in ("--config", "--set", "--messy", "--no-messy", "--progress", "--no-progress"):
        assert option in help_text
