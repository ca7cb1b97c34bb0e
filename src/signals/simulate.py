"""A synthetic B2B CRM with known ground truth and a behaviour shift.

:func:`simulate_crm` builds a world of subscription customers (accounts) whose touchpoint
histories follow a fully known generative model, so every later stage (features, learned
points, churn and purchase models, re-training after a shift) can be checked against the truth.
:func:`signals.messy.messy_sources` turns such a world into the raw exports of three CRM systems
(the sources of ``configs/demo.yaml``) with the defects ingestion has to handle.

The world
---------
* **Customers** ``C000001``, ... have an industry, a head count (``employees``), its size band,
  a segment (SMB < 100 employees <= Mid < 1000 <= Enterprise) and a region. About 70 % exist at
  ``simulate.start``; the others arrive at uniformly random instants (``first_seen``). A customer
  has no event before ``first_seen``.
* **Unobserved heterogeneity**: a gamma-distributed engagement multiplier (mean 1) scales every
  customer-initiated touch rate, a gamma sales-coverage multiplier (mean 1) the sales visits and
  calls an account gets; normal random effects ``u`` and ``v`` enter the purchase and churn
  logits. They are returned in :attr:`SimulatedWorld.latent`, never in ``customers``.
* **Touches**: the ten engagement types of the default catalog are Poisson processes per customer
  and type. Their yearly rates depend on the type, the customer's status (prospect, active
  subscriber, churned), its segment (sales visits go to large accounts), the period (before or
  after the shift) and the weekday (office-type contacts are rare at weekends, with the weekly
  mean kept). Customers have Poisson-many *interest episodes* (exponential duration, mean 30
  days, at most 90) during which each customer-initiated rate gains three times its base rate
  (x4 for an average customer): these are the temperature surges (きざし) a model should catch.
* **Status and contracts**: everyone starts as a prospect. A purchase makes a prospect or a
  churned customer an active subscriber with an annual contract (a win-back for the churned); an
  active subscriber may purchase again (upsell, added to the contract value) or cancel (churn). A
  still-active subscriber renews on every calendar anniversary of its contract start (29
  February: 28 February), valued at the contract value at the start of that day (first purchase
  plus the upsells before it). Purchases and renewals have positive values (lognormal, growing
  with the head count, whole thousands), every other event has value 0.
* **Ground truth**: with ``D_k(t) = sum_j 0.5 ** ((t - t_j) / H)`` over the touches ``j`` of
  engagement type ``k`` before ``t`` (``H = simulate.true_half_life_days``), the daily hazards at
  the start ``t`` of each local day are::

      logit h_purchase(t) = a_purchase[status, segment] + sum_k w_purchase_k(t) * D_k(t) + u_i
      logit h_churn(t)    = a_churn[segment]            + sum_k w_churn_k(t)    * D_k(t) + v_i

  (churn for active subscribers only). ``w(t)`` are the true point weights before
  ``simulate.shift_date`` and the after-shift weights from then on; the shift also changes the
  channel mix (seminars drop to 20 %, webinars x2.5, document requests x1.6).

Days are calendar days of ``settings.timezone`` (a day is the span between two local midnights),
so the simulation covers ``[start, end)`` in local time and event times fall in business hours
of that zone. Everything is drawn from one ``numpy`` generator seeded with ``simulate.seed``:
the same settings give identical output.

>>> from signals.settings import load_settings
>>> s = load_settings(overrides=["simulate.n_customers=50", "simulate.end=2023-07-01",
...                              "simulate.shift_date=2023-04-01"])
>>> world = simulate_crm(s)
>>> world.truth["weights"]["purchase"]["before"]["sales_visit"]
1.8
>>> world.truth["shift_date"]
'2023-04-01'
>>> check_events(world.events, s.catalog).equals(world.events)
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from signals._progress import track
from signals.schemas import CUSTOMER_ID, SOURCE, TOUCHPOINT, TS, VALUE, check_events  # noqa: F401 (doctest)
from signals.settings import Settings

__all__ = [
    "CONTRACT_TYPES",
    "DEFAULT_PARAMETERS",
    "ENGAGEMENT_TYPES",
    "SEGMENTS",
    "SIMULATED_TYPES",
    "SOURCE_OF",
    "STATUSES",
    "SimulatedWorld",
    "WorldParameters",
    "simulate_crm",
]

ENGAGEMENT_TYPES: tuple[str, ...] = (
    "seminar", "webinar", "doc_request", "web_visit", "email_open",
    "email_click", "newsletter", "inquiry", "call", "sales_visit",
)
CONTRACT_TYPES: tuple[str, ...] = ("purchase", "renewal", "cancellation")
SIMULATED_TYPES: tuple[str, ...] = ENGAGEMENT_TYPES + CONTRACT_TYPES
STATUSES: tuple[str, ...] = ("prospect", "active", "churned")
SEGMENTS: tuple[str, ...] = ("SMB", "Mid", "Enterprise")
CUSTOMER_INITIATED = frozenset(
    {"seminar", "webinar", "doc_request", "web_visit", "email_open", "email_click", "inquiry"}
)
SOURCE_OF: dict[str, str] = {
    "sales_visit": "sfa", "call": "sfa", "purchase": "sfa", "renewal": "sfa", "cancellation": "sfa",
    "seminar": "marketing", "webinar": "marketing", "doc_request": "marketing",
    "web_visit": "marketing", "email_open": "marketing", "email_click": "marketing",
    "newsletter": "marketing", "inquiry": "support",
}
_REQUIRED_ROLES = {"purchase": "purchase", "renewal": "renewal", "cancellation": "cancellation"}

_INDUSTRIES = {
    "manufacturing": 0.22, "it_services": 0.17, "retail": 0.13, "finance": 0.10,
    "healthcare": 0.09, "construction": 0.11, "logistics": 0.10, "public_sector": 0.08,
}
_REGIONS = {
    "Kanto": 0.42, "Kansai": 0.18, "Chubu": 0.14, "Kyushu": 0.09,
    "Tohoku": 0.06, "Chugoku": 0.05, "Hokkaido": 0.04, "Shikoku": 0.02,
}
_SIZE_EDGES = (1, 10, 50, 100, 250, 1000, 5000)
_SIZE_BANDS = ("1-9", "10-49", "50-99", "100-249", "250-999", "1000-4999", "5000+")

# Local hour-of-day profiles (relative weights of the 24 hours).
_HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "office": (0.01,) * 7 + (0.1, 0.4, 1, 1, 1, 0.6, 1, 1, 1, 1, 0.8, 0.3, 0.1, 0.03, 0.01, 0.01, 0.01),
    "online": (0.15, 0.1, 0.08, 0.06, 0.06, 0.1, 0.3, 0.6, 0.9, 1, 1, 1,
               1.1, 1, 1, 1, 1, 1, 0.9, 0.9, 0.9, 0.8, 0.6, 0.3),
    "mailing": (0,) * 10 + (1,) + (0,) * 13,
}
_HOUR_PROFILE_OF: dict[str, str] = {
    "seminar": "office", "webinar": "office", "doc_request": "online", "web_visit": "online",
    "email_open": "online", "email_click": "online", "newsletter": "mailing", "inquiry": "office",
    "call": "office", "sales_visit": "office", "purchase": "office", "renewal": "office",
    "cancellation": "office",
}
_SECONDS_PER_DAY = 86_400
_DAYS_PER_YEAR = 365.25
_CANDIDATE_CHUNK = 65_536  # windows per chunk when drawing candidate touches (bounds memory)
_SNAPSHOT_CUSTOMERS = 20_000  # confounded world: customers whose monthly states feed points_truth


def _default_purchase_weights() -> dict[str, float]:
    return {"sales_visit": 1.8, "seminar": 1.4, "doc_request": 1.1, "webinar": 0.8, "inquiry": 0.55,
            "email_click": 0.3, "call": 0.2, "web_visit": 0.1, "email_open": 0.03, "newsletter": 0.0}


def _default_purchase_weights_after() -> dict[str, float]:
    return {"doc_request": 1.9, "sales_visit": 1.6, "webinar": 1.0, "seminar": 0.85, "inquiry": 0.45,
            "email_click": 0.28, "call": 0.17, "web_visit": 0.08, "email_open": 0.025, "newsletter": 0.0}


def _default_churn_weights() -> dict[str, float]:
    return {"sales_visit": -2.2, "seminar": -1.7, "webinar": -1.4, "call": -1.0, "doc_request": -0.7,
            "email_click": -0.5, "web_visit": -0.35, "email_open": -0.12, "newsletter": 0.0,
            "inquiry": 0.8}


def _default_churn_weights_after() -> dict[str, float]:
    return {"sales_visit": -2.2, "webinar": -1.9, "seminar": -1.4, "call": -1.0, "doc_request": -0.7,
            "email_click": -0.5, "web_visit": -0.35, "email_open": -0.12, "newsletter": 0.0,
            "inquiry": 0.8}


def _default_touch_rates() -> dict[str, tuple[float, float, float]]:
    # touches per year for (prospect, active subscriber, churned), engagement multiplier 1,
    # segment multiplier 1, outside interest episodes, before the shift
    return {
        "seminar": (0.6, 0.8, 0.15), "webinar": (0.8, 1.0, 0.2), "doc_request": (0.8, 0.5, 0.15),
        "web_visit": (8.0, 10.0, 2.0), "email_open": (12.0, 14.0, 3.0), "email_click": (2.5, 3.0, 0.5),
        "newsletter": (12.0, 12.0, 6.0), "inquiry": (0.4, 2.5, 0.3), "call": (2.0, 3.0, 0.6),
        "sales_visit": (0.3, 2.0, 0.15),
    }


@dataclass(frozen=True)
class WorldParameters:
    """The generative parameters of the simulated world (the ground truth besides the settings).

    The defaults are the documented world; tests pass modified copies
    (``dataclasses.replace(DEFAULT_PARAMETERS, ...)``) to check that the data respond to them.
    Every value used is copied into the world's ``truth``.

    Attributes
    ----------
    purchase_weights, purchase_weights_after_shift, churn_weights, churn_weights_after_shift
        True point weights per engagement type, per unit of the decayed count ``D_k`` (one touch
        just now = 1), before and from the shift date on.
    purchase_base_logit, churn_base_logit, segment_purchase_offset, segment_churn_offset
        ``a_purchase[status, segment] = purchase_base_logit[status] + segment_purchase_offset[segment]``;
        ``a_churn[segment] = churn_base_logit + segment_churn_offset[segment]``.
    touch_rates_per_year, rate_scale
        Touches per year for (prospect, active, churned) at engagement 1; all are multiplied by
        ``rate_scale`` (and ``simulate.activity_scale``), which sets ~100 events per customer
        over three years.
    shift_rate_multipliers, segment_rate_multipliers, weekend_factors
        Rate multipliers after the shift, by segment, and at weekends (the weekday rates are
        raised so the weekly mean stays).
    engagement_shape, coverage_shape, coverage_types, purchase_effect_sd, churn_effect_sd
        Heterogeneity: a gamma(shape, 1/shape) engagement multiplier of the customer-initiated
        rates, a gamma sales-coverage multiplier of the ``coverage_types`` rates (some accounts
        get the attention of their sales rep, others are neglected), both capped at
        ``multiplier_cap``; normal ``u`` and ``v``.
    episodes_per_year, episode_mean_days, episode_max_days, episode_multiplier
        Interest episodes: Poisson many per customer, exponential length (capped), overlapping
        ones merge. During an episode a customer-initiated type's rate gains
        ``(episode_multiplier - 1)`` times its base rate, whatever the engagement multiplier:
        x4 for an average customer, a sharper surge for a quiet one.
    share_at_start, employees_median, employees_sigma
        Customers: share existing at the start; lognormal head count.
    interest_targeting, confounded_touch_rates, latent_correlation, saturation_touches, segment_weight_multipliers
        Used only by the confounded world (``simulate.confounding: true``), built to fool learned
        points: the rates of the ``interest_targeting`` types (sales visits, calls, the
        zero-weight newsletter) are multiplied by ``exp(g z - g^2 / 2)``, ``z = u / purchase_effect_sd``
        the account's standardised latent purchase interest (sales and marketing target warm
        accounts); ``confounded_touch_rates`` replace rates (newsletters go to active accounts
        three times as often); the latent churn effect ``v`` correlates with ``u`` at
        ``latent_correlation`` (interested accounts churn less); each type enters the hazards as
        ``c * log(1 + D_k / c)`` with ``c = saturation_touches`` (the fifth touch adds less than the
        first; one touch on a quiet history still adds about its weight); and the weights of some
        types are multiplied by segment (``segment_weight_multipliers``).
    contract_value_scale, contract_value_exponent, contract_value_sigma, upsell_share, upsell_sigma, value_unit
        Values: lognormal with median ``scale * employees ** exponent`` (upsells ``upsell_share``
        of it), rounded to whole ``value_unit``.
    """

    purchase_weights: Mapping[str, float] = field(default_factory=_default_purchase_weights)
    purchase_weights_after_shift: Mapping[str, float] = field(default_factory=_default_purchase_weights_after)
    churn_weights: Mapping[str, float] = field(default_factory=_default_churn_weights)
    churn_weights_after_shift: Mapping[str, float] = field(default_factory=_default_churn_weights_after)
    purchase_base_logit: Mapping[str, float] = field(
        default_factory=lambda: {"prospect": -8.8, "active": -10.05, "churned": -9.8})
    churn_base_logit: float = -6.73
    segment_purchase_offset: Mapping[str, float] = field(
        default_factory=lambda: {"SMB": 0.15, "Mid": 0.0, "Enterprise": -0.25})
    segment_churn_offset: Mapping[str, float] = field(
        default_factory=lambda: {"SMB": 0.3, "Mid": 0.0, "Enterprise": -0.45})
    touch_rates_per_year: Mapping[str, tuple[float, float, float]] = field(default_factory=_default_touch_rates)
    shift_rate_multipliers: Mapping[str, float] = field(
        default_factory=lambda: {"seminar": 0.2, "webinar": 2.5, "doc_request": 1.6})
    segment_rate_multipliers: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: {
        "sales_visit": {"SMB": 0.6, "Mid": 1.0, "Enterprise": 1.8},
        "call": {"SMB": 0.9, "Mid": 1.0, "Enterprise": 1.2},
        "inquiry": {"SMB": 0.8, "Mid": 1.0, "Enterprise": 1.4},
    })
    weekend_factors: Mapping[str, float] = field(default_factory=lambda: {
        "seminar": 0.1, "webinar": 0.15, "inquiry": 0.3, "call": 0.05, "sales_visit": 0.05,
        "newsletter": 0.0,
    })
    rate_scale: float = 0.86
    engagement_shape: float = 2.0
    coverage_shape: float = 2.0
    coverage_types: tuple[str, ...] = ("sales_visit", "call")
    multiplier_cap: float = 3.0
    purchase_effect_sd: float = 0.5
    churn_effect_sd: float = 0.5
    episodes_per_year: float = 0.8
    episode_mean_days: float = 30.0
    episode_max_days: int = 90
    episode_multiplier: float = 4.0
    share_at_start: float = 0.7
    employees_median: float = 90.0
    employees_sigma: float = 1.8
    contract_value_scale: float = 60_000.0
    contract_value_exponent: float = 0.6
    contract_value_sigma: float = 0.5
    upsell_share: float = 0.25
    upsell_sigma: float = 0.6
    value_unit: float = 1_000.0
    interest_targeting: Mapping[str, float] = field(
        default_factory=lambda: {"sales_visit": 0.9, "call": 0.7, "newsletter": 0.8})
    confounded_touch_rates: Mapping[str, tuple[float, float, float]] = field(
        default_factory=lambda: {"newsletter": (6.0, 18.0, 3.0)})
    latent_correlation: float = -0.6
    saturation_touches: float = 2.0
    segment_weight_multipliers: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: {
        "sales_visit": {"SMB": 0.6, "Mid": 1.0, "Enterprise": 1.5},
        "webinar": {"SMB": 1.4, "Mid": 1.0, "Enterprise": 0.7},
        "doc_request": {"SMB": 1.3, "Mid": 1.0, "Enterprise": 0.8},
        "seminar": {"SMB": 0.8, "Mid": 1.0, "Enterprise": 1.2},
    })

    def __post_init__(self) -> None:
        for name in ("purchase_weights", "purchase_weights_after_shift", "churn_weights",
                     "churn_weights_after_shift", "touch_rates_per_year"):
            keys = set(getattr(self, name))
            if keys != set(ENGAGEMENT_TYPES):
                raise ValueError(f"WorldParameters.{name} must have exactly the engagement types "
                                 f"{list(ENGAGEMENT_TYPES)}; missing {sorted(set(ENGAGEMENT_TYPES) - keys)}, "
                                 f"unknown {sorted(keys - set(ENGAGEMENT_TYPES))}")
        for name, rates in self.touch_rates_per_year.items():
            if len(rates) != 3 or min(rates) < 0:
                raise ValueError(f"touch_rates_per_year[{name!r}] must be 3 rates >= 0 (prospect, active, churned)")
        if set(self.purchase_base_logit) != set(STATUSES):
            raise ValueError(f"purchase_base_logit needs the statuses {list(STATUSES)}")
        for name in ("segment_purchase_offset", "segment_churn_offset"):
            if set(getattr(self, name)) != set(SEGMENTS):
                raise ValueError(f"WorldParameters.{name} needs the segments {list(SEGMENTS)}")
        for name, table in (("shift_rate_multipliers", self.shift_rate_multipliers),
                            ("segment_rate_multipliers", self.segment_rate_multipliers),
                            ("weekend_factors", self.weekend_factors)):
            unknown = sorted(set(table) - set(ENGAGEMENT_TYPES))
            if unknown:
                raise ValueError(f"WorldParameters.{name} has unknown types {unknown}")
        if any(not 0 <= f <= 1 for f in self.weekend_factors.values()):
            raise ValueError("weekend_factors must lie in [0, 1]")
        if any(m < 0 for m in self.shift_rate_multipliers.values()):
            raise ValueError("shift_rate_multipliers must be >= 0")
        if not 0 <= self.share_at_start <= 1:
            raise ValueError("share_at_start must lie in [0, 1]")
        if self.episode_multiplier < 1:
            raise ValueError("episode_multiplier must be >= 1")
        unknown = sorted(set(self.coverage_types) - set(ENGAGEMENT_TYPES))
        if unknown:
            raise ValueError(f"WorldParameters.coverage_types has unknown types {unknown}")
        for name, table in (("interest_targeting", self.interest_targeting),
                            ("confounded_touch_rates", self.confounded_touch_rates),
                            ("segment_weight_multipliers", self.segment_weight_multipliers)):
            unknown = sorted(set(table) - set(ENGAGEMENT_TYPES))
            if unknown:
                raise ValueError(f"WorldParameters.{name} has unknown types {unknown}")
        if any(set(m) != set(SEGMENTS) for m in self.segment_weight_multipliers.values()):
            raise ValueError(f"segment_weight_multipliers need the segments {list(SEGMENTS)}")
        if not -1 < self.latent_correlation < 1:
            raise ValueError("latent_correlation must lie in (-1, 1)")
        positive = ("rate_scale", "engagement_shape", "coverage_shape", "multiplier_cap", "episode_mean_days",
                    "episode_max_days", "employees_median",
                    "contract_value_scale", "value_unit", "upsell_share", "saturation_touches")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"WorldParameters.{name} must be > 0")


DEFAULT_PARAMETERS = WorldParameters()


@dataclass(frozen=True)
class SimulatedWorld:
    """A simulated CRM: what a CRM would hold, plus the truth behind it.

    Attributes
    ----------
    events : pandas.DataFrame
        Canonical touchpoint events (``check_events(events, settings.catalog)`` returns it
        unchanged), sorted by ``(customer_id, ts)``; timestamps are whole seconds in
        ``[start, end)`` and never before the customer's ``first_seen``.
    customers : pandas.DataFrame
        One row per customer: ``customer_id, first_seen, industry, size_band, employees, segment,
        region`` (``customer_id`` has the same categorical dtype as in ``events``).
    truth : dict
        JSON-serialisable ground truth: the generating parameters and realised counts.
    latent : pandas.DataFrame
        The unobserved per-customer draws (``engagement``, ``coverage``, ``purchase_effect``, ``churn_effect``,
        ``n_episodes`` drawn and ``episode_days`` covered by their union): for tests and
        diagnostics, never for models.
    episodes : pandas.DataFrame
        The interest episodes (merged where they overlap): ``customer_id, start, end`` (UTC
        instants of local midnights, ``[start, end)``): when each surge (きざし) really began and
        ended, to check alarms against. Never for models.
    """

    events: pd.DataFrame
    customers: pd.DataFrame
    truth: dict[str, Any]
    latent: pd.DataFrame
    episodes: pd.DataFrame | None = None


# --------------------------------------------------------------------------------------------
# simulation


@dataclass
class _Calendar:
    tz: str
    start: dt.date
    end: dt.date
    n_days: int
    origin: int                # UTC epoch seconds of the first local midnight
    bounds: np.ndarray         # (n_days + 1,) local midnights, seconds after origin
    weekend: np.ndarray        # (n_days,) bool
    next_year: np.ndarray      # (n_days,) day index of the same date one year later (n_days = never)
    shift_day: int             # first day of the after-shift period (n_days = no shift)
    month_starts: np.ndarray   # day indices of the local 1st of each month


def _calendar(settings: Settings) -> _Calendar:
    sim = settings.simulate
    n_days = (sim.end - sim.start).days
    dates = [sim.start + dt.timedelta(days=d) for d in range(n_days + 1)]
    local = pd.DatetimeIndex(pd.to_datetime(dates)).tz_localize(
        settings.timezone, ambiguous=np.ones(n_days + 1, dtype=bool), nonexistent="shift_forward")
    seconds = local.as_unit("s").asi8.astype(np.int64)
    next_year = np.empty(n_days, dtype=np.int64)
    for d, day in enumerate(dates[:-1]):
        try:
            later = day.replace(year=day.year + 1)
        except ValueError:  # 29 February: the anniversary is 28 February
            later = day.replace(year=day.year + 1, day=28)
        next_year[d] = min((later - sim.start).days, n_days)
    shift_day = (sim.shift_date - sim.start).days if sim.shift_date is not None else n_days
    return _Calendar(
        tz=settings.timezone, start=sim.start, end=sim.end, n_days=n_days, origin=int(seconds[0]),
        bounds=seconds - seconds[0], weekend=np.array([d.weekday() >= 5 for d in dates[:-1]]),
        next_year=next_year, shift_day=shift_day,
        month_starts=np.array([d for d, day in enumerate(dates[:-1]) if day.day == 1], dtype=np.int64),
    )


def _check_catalog(settings: Settings) -> list[str]:
    catalog = settings.catalog
    missing = [name for name in SIMULATED_TYPES if name not in catalog]
    if missing:
        raise ValueError(
            f"the simulator needs the touchpoint type(s) {missing} in the catalog (it simulates "
            f"{list(SIMULATED_TYPES)}); add them to `catalog` or use the default catalog")
    wrong = [f"{name} (role {catalog[name].role!r}, needs {role!r})" for name, role in _REQUIRED_ROLES.items()
             if catalog[name].role != role]
    wrong += [f"{name} (role {catalog[name].role!r}, needs 'engagement')" for name in ENGAGEMENT_TYPES
              if catalog[name].role != "engagement"]
    if wrong:
        raise ValueError(f"catalog roles do not fit the simulator: {', '.join(wrong)}")
    return list(catalog)


def _choice(rng: np.random.Generator, table: Mapping[str, float], n: int) -> pd.Categorical:
    names = list(table)
    p = np.array([table[k] for k in names], dtype=float)
    codes = rng.choice(len(names), size=n, p=p / p.sum())
    return pd.Categorical.from_codes(codes, categories=names)


def _hour_seconds(rng: np.random.Generator, profile_codes: np.ndarray) -> np.ndarray:
    """Second of the local day for each row, drawn from the hour profile given by code."""
    u = rng.random(len(profile_codes))
    minute_second = rng.integers(0, 3600, len(profile_codes))
    hours = np.empty(len(profile_codes), dtype=np.int64)
    for code, name in enumerate(_HOUR_PROFILES):
        rows = profile_codes == code
        if rows.any():
            cum = np.cumsum(_HOUR_PROFILES[name])
            hours[rows] = np.searchsorted(cum / cum[-1], u[rows], side="right")
    return np.minimum(hours, 23) * 3600 + minute_second


def _merge_intervals(owner: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of the day intervals ``[lo, hi)`` per owner: overlapping episodes do not stack."""
    if len(owner) == 0:
        return owner, lo, hi
    order = np.lexsort((lo, owner))
    owner, lo, hi = owner[order], lo[order], hi[order]
    shift = owner.astype(np.int64) * (horizon + 1)      # makes one running maximum per owner
    reach = np.maximum.accumulate(hi + shift) - shift  # furthest end so far within the owner
    starts = np.ones(len(owner), dtype=bool)
    starts[1:] = (owner[1:] != owner[:-1]) | (lo[1:] > reach[:-1])
    group = np.cumsum(starts) - 1
    ends = np.zeros(int(group[-1]) + 1, dtype=np.int64)
    np.maximum.at(ends, group, hi)
    return owner[starts], lo[starts], ends


def _draw_customers(rng: np.random.Generator, n: int, cal: _Calendar, params: WorldParameters) -> dict[str, Any]:
    width = max(6, len(str(n)))
    ids = [f"C{i:0{width}d}" for i in range(1, n + 1)]
    industry = _choice(rng, _INDUSTRIES, n)
    region = _choice(rng, _REGIONS, n)
    employees = np.clip(np.round(np.exp(rng.normal(math.log(params.employees_median), params.employees_sigma, n))),
                        1, 300_000).astype(np.int64)
    segment = np.where(employees < 100, 0, np.where(employees < 1000, 1, 2)).astype(np.int64)
    size_code = np.searchsorted(np.array(_SIZE_EDGES), employees, side="right") - 1
    span = int(cal.bounds[-1])
    at_start = rng.random(n) < params.share_at_start
    arrival = rng.integers(0, span, n)
    first_seen = np.where(at_start, 0, arrival).astype(np.int64)
    day0 = np.searchsorted(cal.bounds, first_seen, side="right") - 1
    eligible = np.where(first_seen == cal.bounds[day0], day0, day0 + 1)
    engagement = np.minimum(rng.gamma(params.engagement_shape, 1.0 / params.engagement_shape, n),
                            params.multiplier_cap)
    coverage = np.minimum(rng.gamma(params.coverage_shape, 1.0 / params.coverage_shape, n), params.multiplier_cap)
    purchase_effect = rng.normal(0.0, params.purchase_effect_sd, n)
    churn_effect = rng.normal(0.0, params.churn_effect_sd, n)
    n_episodes = rng.poisson(params.episodes_per_year * (cal.n_days - day0) / _DAYS_PER_YEAR)
    ep_cust = np.repeat(np.arange(n), n_episodes)
    ep_start = rng.integers(day0[ep_cust], cal.n_days)
    ep_len = np.clip(np.ceil(rng.exponential(params.episode_mean_days, len(ep_cust))),
                     1, params.episode_max_days).astype(np.int64)
    ep_end = np.minimum(ep_start + ep_len, cal.n_days)
    ep_cust, ep_start, ep_end = _merge_intervals(ep_cust, ep_start, ep_end, cal.n_days)
    return dict(
        ids=ids, industry=industry, region=region, employees=employees, segment=segment,
        size_code=size_code, first_seen=first_seen, day0=day0, eligible=eligible, engagement=engagement,
        coverage=coverage,
        purchase_effect=purchase_effect, churn_effect=churn_effect, n_episodes=n_episodes,
        ep_cust=ep_cust, ep_start=ep_start, ep_end=ep_end,
    )


@dataclass
class _Rates:
    rates: np.ndarray       # (2 periods, K, 3 statuses) touches per day, activity scale applied
    max_rate: np.ndarray    # (2, K)
    accept: np.ndarray      # (2 periods, 2 weekend, K, 3 statuses)
    weekday_norm: np.ndarray  # (K,)
    segment_mult: np.ndarray  # (3 segments, K)
    customer_initiated: np.ndarray  # (K,) bool


def _rates(params: WorldParameters, activity_scale: float) -> _Rates:
    k = len(ENGAGEMENT_TYPES)
    base = np.array([params.touch_rates_per_year[t] for t in ENGAGEMENT_TYPES], dtype=float)
    base = base * params.rate_scale * activity_scale / _DAYS_PER_YEAR
    shift = np.array([params.shift_rate_multipliers.get(t, 1.0) for t in ENGAGEMENT_TYPES])
    rates = np.stack([base, base * shift[:, None]])
    max_rate = rates.max(axis=2)
    ratio = np.divide(rates, max_rate[:, :, None], out=np.zeros_like(rates), where=max_rate[:, :, None] > 0)
    weekend = np.array([params.weekend_factors.get(t, 1.0) for t in ENGAGEMENT_TYPES])
    accept = np.stack([ratio, ratio * weekend[None, :, None]], axis=1)
    segment_mult = np.ones((len(SEGMENTS), k))
    for j, t in enumerate(ENGAGEMENT_TYPES):
        for s, seg in enumerate(SEGMENTS):
            segment_mult[s, j] = params.segment_rate_multipliers.get(t, {}).get(seg, 1.0)
    return _Rates(rates=rates, max_rate=max_rate, accept=accept, weekday_norm=7.0 / (5.0 + 2.0 * weekend),
                  segment_mult=segment_mult,
                  customer_initiated=np.array([t in CUSTOMER_INITIATED for t in ENGAGEMENT_TYPES]))


def _candidate_touches(rng: np.random.Generator, cust: dict[str, Any], cal: _Calendar, rates: _Rates,
                       params: WorldParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw candidate touches at the maximum (over statuses) rate; the day loop thins them.

    Returns sorted ``(ts, customer, type)`` arrays (seconds after origin) without duplicate
    ``(customer, ts, type)`` triples, and ``day_ptr`` with day ``d`` in ``[day_ptr[d], day_ptr[d+1])``.
    """
    n, k = len(cust["ids"]), len(ENGAGEMENT_TYPES)
    periods = [(0, cal.shift_day), (cal.shift_day, cal.n_days)]
    w_cust, w_lo, w_hi, w_period, w_episode = [], [], [], [], []
    for p, (p0, p1) in enumerate(periods):
        lo = np.maximum(cust["day0"], p0)
        ok = lo < p1
        w_cust.append(np.flatnonzero(ok))
        w_lo.append(lo[ok])
        w_hi.append(np.full(int(ok.sum()), p1))
        w_period.append(np.full(int(ok.sum()), p))
        w_episode.append(np.zeros(int(ok.sum()), dtype=bool))
        lo = np.maximum(cust["ep_start"], p0)
        hi = np.minimum(cust["ep_end"], p1)
        ok = lo < hi
        w_cust.append(cust["ep_cust"][ok])
        w_lo.append(lo[ok])
        w_hi.append(hi[ok])
        w_period.append(np.full(int(ok.sum()), p))
        w_episode.append(np.ones(int(ok.sum()), dtype=bool))
    wc, lo, hi = np.concatenate(w_cust), np.concatenate(w_lo), np.concatenate(w_hi)
    period, episode = np.concatenate(w_period), np.concatenate(w_episode)

    cust_init = rates.customer_initiated
    covered = np.array([t in params.coverage_types for t in ENGAGEMENT_TYPES])
    per_day = rates.max_rate * rates.weekday_norm[None, :]           # (2, K)
    episode_extra = np.where(cust_init, params.episode_multiplier - 1.0, 0.0)
    profile_of_type = np.array([list(_HOUR_PROFILES).index(_HOUR_PROFILE_OF[t]) for t in ENGAGEMENT_TYPES])
    n_k = n * k
    span = int(cal.bounds[-1])
    if span * n_k >= 2**62:
        raise ValueError("simulation too large for the candidate key (n_customers x days); shorten it")
    keys = []
    for s in range(0, len(wc), _CANDIDATE_CHUNK):
        c = wc[s:s + _CANDIDATE_CHUNK]
        lam = per_day[period[s:s + _CANDIDATE_CHUNK]]
        # an episode adds (multiplier - 1) x the base rate whatever the customer's engagement
        in_episode = episode[s:s + _CANDIDATE_CHUNK, None]
        lam = lam * np.where(cust_init[None, :] & ~in_episode, cust["engagement"][c][:, None], 1.0)
        lam = lam * np.where(covered[None, :], cust["coverage"][c][:, None], 1.0)
        lam = lam * rates.segment_mult[cust["segment"][c]]
        if "targeting" in cust:  # the confounded world: rates follow the latent interest
            lam = lam * cust["targeting"][c]
        lam = lam * np.where(episode[s:s + _CANDIDATE_CHUNK, None], episode_extra[None, :], 1.0)
        lam = lam * (hi[s:s + _CANDIDATE_CHUNK] - lo[s:s + _CANDIDATE_CHUNK])[:, None]
        counts = rng.poisson(lam).ravel()
        flat = np.repeat(np.arange(len(c) * k, dtype=np.int64), counts)
        row, typ = np.divmod(flat, k)
        day = rng.integers(lo[s:s + _CANDIDATE_CHUNK][row], hi[s:s + _CANDIDATE_CHUNK][row])
        sec = _hour_seconds(rng, profile_of_type[typ])
        ts = cal.bounds[day] + np.minimum(sec, cal.bounds[day + 1] - cal.bounds[day] - 1)
        cc = c[row]
        keep = ts >= cust["first_seen"][cc]
        keys.append((ts[keep] * n_k + cc[keep] * k + typ[keep]).astype(np.int64))
    key = np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)
    key.sort()
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    ts, rest = np.divmod(key, n_k)
    del key
    c, typ = np.divmod(rest, k)
    del rest
    day_ptr = np.searchsorted(ts, cal.bounds)
    return ts, c.astype(np.int32), typ.astype(np.int8), day_ptr


def _draw_values(rng: np.random.Generator, employees: np.ndarray, params: WorldParameters, *, upsell: bool) -> np.ndarray:
    median = params.contract_value_scale * employees.astype(float) ** params.contract_value_exponent
    if upsell:
        raw = np.exp(rng.normal(np.log(median * params.upsell_share), params.upsell_sigma))
    else:
        raw = np.exp(rng.normal(np.log(median), params.contract_value_sigma))
    unit = params.value_unit
    return np.maximum(np.round(raw / unit), 1.0) * unit


def simulate_crm(settings: Settings, *, params: WorldParameters | None = None,
                 progress: bool = False) -> SimulatedWorld:
    """Simulate a B2B CRM with known point weights and a behaviour shift.

    Parameters
    ----------
    settings : Settings
        ``settings.simulate`` gives the size, span, shift date, true half-life, activity scale and
        seed; ``settings.timezone`` the business time zone of days and office hours;
        ``settings.catalog`` the touchpoint categories (it must contain the 13 simulated types).
    params : WorldParameters, optional
        The generative parameters; :data:`DEFAULT_PARAMETERS` when omitted.
    progress : bool
        Show a progress bar over the simulated days (on a terminal).

    Returns
    -------
    SimulatedWorld
        ``events`` (canonical, sorted by customer and time), ``customers``, ``truth`` and
        ``latent``. The same settings and parameters always give identical frames.

    Raises
    ------
    ValueError
        The catalog lacks a type the simulator needs or gives it another role.

    Notes
    -----
    About 100k customers over the default three years give about 10 million events
    (``simulate.activity_scale`` multiplies every touch rate).
    """
    params = DEFAULT_PARAMETERS if params is None else params
    categories = _check_catalog(settings)
    sim = settings.simulate
    rng = np.random.default_rng(sim.seed)
    cal = _calendar(settings)
    cust = _draw_customers(rng, sim.n_customers, cal, params)
    confounded = sim.confounding
    if confounded:
        _confound(cust, params)
        params_used = dataclasses.replace(params, touch_rates_per_year={**params.touch_rates_per_year,
                                                                        **params.confounded_touch_rates})
    else:
        params_used = params
    rates = _rates(params_used, sim.activity_scale)
    cand_ts, cand_c, cand_k, day_ptr = _candidate_touches(rng, cust, cal, rates, params)

    n, n_days = sim.n_customers, cal.n_days
    # columns: purchase before, purchase after, churn before, churn after the shift
    weights = np.array([
        [params.purchase_weights[t] for t in ENGAGEMENT_TYPES],
        [params.purchase_weights_after_shift[t] for t in ENGAGEMENT_TYPES],
        [params.churn_weights[t] for t in ENGAGEMENT_TYPES],
        [params.churn_weights_after_shift[t] for t in ENGAGEMENT_TYPES],
    ])
    if sim.shift_date is None:
        weights[1], weights[3] = weights[0], weights[2]
    seg = cust["segment"]
    seg_p = np.array([params.segment_purchase_offset[s] for s in SEGMENTS])[seg]
    seg_c = np.array([params.segment_churn_offset[s] for s in SEGMENTS])[seg]
    base_p = np.array([params.purchase_base_logit[s] for s in STATUSES])[None, :] + (seg_p + cust["purchase_effect"])[:, None]
    base_c = params.churn_base_logit + seg_c + cust["churn_effect"]
    log_half = math.log(0.5) / (sim.true_half_life_days * _SECONDS_PER_DAY)

    decayed = np.zeros((4, n))                      # sum_k w_k D_k for the four weight sets
    k_types = len(ENGAGEMENT_TYPES)
    if confounded:                                  # per-type D_k, saturating, segment-dependent weights
        per_type = np.zeros((n, k_types))
        segment_weights = weights[:, None, :] * _segment_weight_table(params)[None, :, :]   # (4, segment, K)
        customer_weights = segment_weights[:, seg, :]                                    # (4, n, K)
        saturation = params.saturation_touches
        snapshots: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        n_snap = min(n, _SNAPSHOT_CUSTOMERS)
        last_buy = np.full(n, -(10**9), dtype=np.int64)
        buys: list[tuple[np.ndarray, int]] = []
        churns: list[tuple[np.ndarray, int]] = []
        month_starts = set(cal.month_starts.tolist())
    status = np.zeros(n, dtype=np.int8)
    logit_p = np.full(n, -np.inf)                  # base purchase logit now (-inf: not yet eligible)
    logit_c = np.full(n, -np.inf)                  # base churn logit now (-inf: not active)
    next_renewal = np.full(n, n_days, dtype=np.int64)
    contract_value = np.zeros(n)
    accepted = np.zeros(len(cand_ts), dtype=bool)
    elig_order = np.argsort(cust["eligible"], kind="stable")
    elig_ptr = np.searchsorted(cust["eligible"][elig_order], np.arange(n_days + 1))
    in_status = np.zeros(3, dtype=np.int64)
    exposure = np.zeros((2, 3), dtype=np.int64)    # customer-days per (period, status)
    counts = {name: np.zeros(2, dtype=np.int64) for name in ("new", "winback", "upsell", "churn", "renewal")}
    c_cust, c_type, c_ts, c_val = [], [], [], []

    def record(who: np.ndarray, kind: str, values: np.ndarray) -> None:
        c_cust.append(who)
        c_type.append(np.full(len(who), SIMULATED_TYPES.index(kind)))
        c_val.append(values)

    office = list(_HOUR_PROFILES).index("office")

    for d in track(range(n_days), description="simulating days", total=n_days, enabled=progress):
        period = 0 if d < cal.shift_day else 1
        new = elig_order[elig_ptr[d]:elig_ptr[d + 1]]
        logit_p[new] = base_p[new, 0]
        in_status[0] += len(new)
        exposure[period] += in_status
        # candidate touches of the day, thinned by the status at the start of the day
        lo, hi = day_ptr[d], day_ptr[d + 1]
        c, typ = cand_c[lo:hi], cand_k[lo:hi]
        keep = rng.random(hi - lo) < rates.accept[period, int(cal.weekend[d])][typ, status[c]]
        accepted[lo:hi] = keep
        # hazards at the start of the day from the touches before it
        if confounded:
            saturated = saturation * np.log1p(per_type / saturation)
            hazard_p = np.einsum("nk,nk->n", saturated, customer_weights[period])
            hazard_c = np.einsum("nk,nk->n", saturated, customer_weights[2 + period])
            if d in month_starts:
                snapshots.append((d, per_type[:n_snap].copy(), status[:n_snap].copy(), last_buy[:n_snap].copy()))
        else:
            hazard_p, hazard_c = decayed[period], decayed[2 + period]
        buy = rng.random(n) < expit(logit_p + hazard_p)
        churn = rng.random(n) < expit(logit_c + hazard_c)
        buy &= ~churn
        renew = (next_renewal == d) & (status == 1) & ~churn
        i_churn = np.flatnonzero(churn)
        i_buy = np.flatnonzero(buy)
        i_renew = np.flatnonzero(renew)
        if len(i_renew):
            record(i_renew, "renewal", contract_value[i_renew])
            next_renewal[i_renew] = cal.next_year[d]
            counts["renewal"][period] += len(i_renew)
        if len(i_churn):
            record(i_churn, "cancellation", np.zeros(len(i_churn)))
            status[i_churn] = 2
            logit_p[i_churn] = base_p[i_churn, 2]
            logit_c[i_churn] = -np.inf
            next_renewal[i_churn] = n_days
            contract_value[i_churn] = 0.0
            counts["churn"][period] += len(i_churn)
            in_status[1] -= len(i_churn)
            in_status[2] += len(i_churn)
        if len(i_buy):
            was = status[i_buy]
            up = i_buy[was == 1]
            fresh = i_buy[was != 1]
            value = np.empty(len(i_buy))
            value[was == 1] = _draw_values(rng, cust["employees"][up], params, upsell=True)
            value[was != 1] = _draw_values(rng, cust["employees"][fresh], params, upsell=False)
            record(i_buy, "purchase", value)
            contract_value[up] += value[was == 1]
            contract_value[fresh] = value[was != 1]
            counts["upsell"][period] += len(up)
            counts["new"][period] += int((was == 0).sum())
            counts["winback"][period] += int((was == 2).sum())
            in_status[0] -= int((was == 0).sum())
            in_status[2] -= int((was == 2).sum())
            in_status[1] += len(fresh)
            status[fresh] = 1
            logit_p[fresh] = base_p[fresh, 1]
            logit_c[fresh] = base_c[fresh]
            next_renewal[fresh] = cal.next_year[d]
        if confounded:
            last_buy[i_buy] = d
            buys.append((i_buy, d))
            churns.append((i_churn, d))
        n_contract = len(i_renew) + len(i_churn) + len(i_buy)
        if n_contract:
            sec = _hour_seconds(rng, np.full(n_contract, office))
            c_ts.append(cal.bounds[d] + np.minimum(sec, cal.bounds[d + 1] - cal.bounds[d] - 1))
        # decayed sums at the start of the next day
        if confounded:
            per_type *= math.exp(log_half * (cal.bounds[d + 1] - cal.bounds[d]))
            if keep.any():
                contrib = np.exp(log_half * (cal.bounds[d + 1] - cand_ts[lo:hi][keep]))
                np.add.at(per_type, (c[keep], typ[keep].astype(np.int64)), contrib)
        else:
            decayed *= math.exp(log_half * (cal.bounds[d + 1] - cal.bounds[d]))
            if keep.any():
                ck, tk = c[keep], typ[keep]
                contrib = np.exp(log_half * (cal.bounds[d + 1] - cand_ts[lo:hi][keep]))
                for j in range(4):
                    np.add.at(decayed[j], ck, weights[j][tk] * contrib)

    t_ts, t_c, t_k = cand_ts[accepted], cand_c[accepted], cand_k[accepted]
    c = typ = keep = ck = tk = None  # loop views keep the candidate arrays alive
    del cand_ts, cand_c, cand_k, accepted
    events = _assemble_events(cal, cust, categories, t_ts, t_c, t_k, c_cust, c_type, c_ts, c_val)
    del t_ts, t_c, t_k
    customers = _customers_frame(cal, cust, events[CUSTOMER_ID].dtype)
    latent = pd.DataFrame({
        CUSTOMER_ID: pd.Categorical.from_codes(np.arange(n), dtype=events[CUSTOMER_ID].dtype),
        "engagement": cust["engagement"], "coverage": cust["coverage"], "purchase_effect": cust["purchase_effect"],
        "churn_effect": cust["churn_effect"], "n_episodes": cust["n_episodes"].astype(np.int64),
        "episode_days": np.bincount(cust["ep_cust"], weights=cust["ep_end"] - cust["ep_start"],
                                    minlength=n).astype(np.int64),
    })
    truth = _truth(settings, params, cal, rates, cust, events, exposure, counts)
    history = (snapshots, buys, churns, n_snap) if confounded else None
    truth["confounding"] = _confounding_truth(params, confounded)
    truth["points_truth"] = _points_truth(settings, params, cal, weights, cust, history)
    seconds = cal.origin + cal.bounds
    episodes = pd.DataFrame({
        CUSTOMER_ID: pd.Categorical.from_codes(cust["ep_cust"], dtype=events[CUSTOMER_ID].dtype),
        "start": pd.to_datetime(seconds[cust["ep_start"]] * 1_000_000_000, unit="ns", utc=True),
        "end": pd.to_datetime(seconds[cust["ep_end"]] * 1_000_000_000, unit="ns", utc=True),
    })
    return SimulatedWorld(events=events, customers=customers, truth=truth, latent=latent, episodes=episodes)


def _assemble_events(cal: _Calendar, cust: dict[str, Any], categories: list[str], t_ts: np.ndarray,
                     t_c: np.ndarray, t_k: np.ndarray, c_cust: list, c_type: list, c_ts: list,
                     c_val: list) -> pd.DataFrame:
    """Canonical events sorted by (customer, ts, catalog code); (customer, ts, type) is unique."""
    code_of = np.array([categories.index(t) for t in SIMULATED_TYPES], dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    k_cust = np.concatenate(c_cust).astype(np.int64) if c_cust else empty
    k_ts = np.concatenate(c_ts) if c_ts else empty
    k_code = code_of[np.concatenate(c_type)] if c_type else empty
    k_val = np.concatenate(c_val) if c_val else np.empty(0)
    span, n_cat = int(cal.bounds[-1]), len(categories)
    if len(cust["ids"]) * span * n_cat >= 2**62:
        raise ValueError("simulation too large for the event sort key (n_customers x seconds); shorten it")
    # one int64 key per event: sorting it sorts the events, decoding it gives the columns
    key = np.concatenate([(t_c.astype(np.int64) * span + t_ts) * n_cat + code_of[t_k.astype(np.int64)],
                          (k_cust * span + k_ts) * n_cat + k_code])
    contract_key = key[len(t_ts):].copy()
    key.sort()
    value = np.zeros(len(key))
    value[np.searchsorted(key, contract_key)] = k_val
    rest, code = np.divmod(key, n_cat)
    del key
    cust_idx, ts = np.divmod(rest, span)
    del rest
    source_names = sorted({SOURCE_OF[t] for t in SIMULATED_TYPES})
    source_of_code = np.full(n_cat, -1, dtype=np.int64)
    for t in SIMULATED_TYPES:
        source_of_code[categories.index(t)] = source_names.index(SOURCE_OF[t])
    source_codes = source_of_code[code]
    present = [s for i, s in enumerate(source_names) if (source_codes == i).any()]
    remap = np.array([present.index(s) if s in present else -1 for s in source_names])
    return pd.DataFrame({
        CUSTOMER_ID: pd.Categorical.from_codes(cust_idx, categories=cust["ids"]),
        TS: pd.to_datetime((cal.origin + ts) * 1_000_000_000, unit="ns", utc=True),
        TOUCHPOINT: pd.Categorical.from_codes(code, categories=categories),
        VALUE: value,
        SOURCE: pd.Categorical.from_codes(remap[source_codes], categories=present),
    })


def _customers_frame(cal: _Calendar, cust: dict[str, Any], id_dtype: pd.CategoricalDtype) -> pd.DataFrame:
    n = len(cust["ids"])
    return pd.DataFrame({
        CUSTOMER_ID: pd.Categorical.from_codes(np.arange(n), dtype=id_dtype),
        "first_seen": pd.to_datetime((cal.origin + cust["first_seen"]) * 1_000_000_000, unit="ns", utc=True),
        "industry": cust["industry"],
        "size_band": pd.Categorical.from_codes(cust["size_code"], categories=list(_SIZE_BANDS), ordered=True),
        "employees": cust["employees"],
        "segment": pd.Categorical.from_codes(cust["segment"], categories=list(SEGMENTS), ordered=True),
        "region": cust["region"],
    })


def _truth(settings: Settings, params: WorldParameters, cal: _Calendar, rates: _Rates, cust: dict[str, Any],
           events: pd.DataFrame, exposure: np.ndarray, counts: dict[str, np.ndarray]) -> dict[str, Any]:
    sim = settings.simulate
    shifted = sim.shift_date is not None

    def weights(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, dict[str, float]]:
        b = {t: float(before[t]) for t in ENGAGEMENT_TYPES}
        return {"before": b, "after": {t: float(after[t]) for t in ENGAGEMENT_TYPES} if shifted else dict(b)}

    def rate_table(p: int) -> dict[str, dict[str, float]]:
        per_year = rates.rates[p] * _DAYS_PER_YEAR
        return {t: {s: float(per_year[j, i]) for i, s in enumerate(STATUSES)} for j, t in enumerate(ENGAGEMENT_TYPES)}

    per_type = events[TOUCHPOINT].value_counts(sort=False)
    years = exposure / _DAYS_PER_YEAR
    total = {name: int(v.sum()) for name, v in counts.items()}
    status_years = years.sum(axis=0)

    def per_year(count: int, yrs: float) -> float | None:
        return float(count / yrs) if yrs > 0 else None

    period_names = ("before", "after")
    return {
        "start": sim.start.isoformat(),
        "end": sim.end.isoformat(),
        "timezone": cal.tz,
        "start_utc": pd.Timestamp(cal.origin, unit="s", tz="UTC").isoformat(),
        "end_utc": pd.Timestamp(cal.origin + int(cal.bounds[-1]), unit="s", tz="UTC").isoformat(),
        "shift_date": sim.shift_date.isoformat() if shifted else None,
        "seed": sim.seed,
        "n_customers": sim.n_customers,
        "true_half_life_days": float(sim.true_half_life_days),
        "activity_scale": float(sim.activity_scale),
        "engagement_types": list(ENGAGEMENT_TYPES),
        "hazard": ("logit h_purchase(t) = base_logits.purchase[status][segment] + sum_k weights.purchase[period][k] * D_k(t) + u_i; "
                   "logit h_churn(t) = base_logits.churn[segment] + sum_k weights.churn[period][k] * D_k(t) + v_i (active only); "
                   "D_k(t) = sum over touches of type k before t of 0.5 ** ((t - t_j) / true_half_life_days); "
                   "t runs over the starts of local days; period = after from shift_date on"),
        "weights": {
            "purchase": weights(params.purchase_weights, params.purchase_weights_after_shift),
            "churn": weights(params.churn_weights, params.churn_weights_after_shift),
        },
        "base_logits": {
            "purchase": {s: {g: float(params.purchase_base_logit[s] + params.segment_purchase_offset[g]) for g in SEGMENTS}
                         for s in STATUSES},
            "churn": {g: float(params.churn_base_logit + params.segment_churn_offset[g]) for g in SEGMENTS},
        },
        "touch_rates_per_year": {"before": rate_table(0), "after": rate_table(1) if shifted else rate_table(0)},
        "shift_rate_multipliers": {t: float(m) for t, m in params.shift_rate_multipliers.items()},
        "segment_rate_multipliers": {t: {g: float(v) for g, v in m.items()} for t, m in params.segment_rate_multipliers.items()},
        "weekend_factors": {t: float(params.weekend_factors.get(t, 1.0)) for t in ENGAGEMENT_TYPES},
        "customer_initiated": sorted(CUSTOMER_INITIATED),
        "sources": dict(SOURCE_OF),
        "heterogeneity": {
            "engagement_multiplier": {"distribution": "gamma", "shape": params.engagement_shape,
                                      "scale": 1.0 / params.engagement_shape, "cap": params.multiplier_cap,
                                      "applies_to": "customer-initiated touch rates"},
            "coverage_multiplier": {"distribution": "gamma", "shape": params.coverage_shape,
                                    "scale": 1.0 / params.coverage_shape, "cap": params.multiplier_cap,
                                    "applies_to": list(params.coverage_types)},
            "purchase_effect_sd": params.purchase_effect_sd,
            "churn_effect_sd": params.churn_effect_sd,
        },
        "episodes": {"per_year": params.episodes_per_year, "mean_days": params.episode_mean_days,
                     "max_days": params.episode_max_days, "rate_multiplier": params.episode_multiplier,
                     "applies_to": "customer-initiated touch rates",
                     "rule": "rate = base * (engagement + (rate_multiplier - 1) * in_episode); overlapping episodes merge"},
        "customers_model": {"share_at_start": params.share_at_start, "employees_median": params.employees_median,
                            "employees_sigma": params.employees_sigma,
                            "segments": "SMB: employees < 100, Mid: < 1000, Enterprise: >= 1000"},
        "values": {"contract_value": f"lognormal, median {params.contract_value_scale} * employees ** {params.contract_value_exponent}, sigma {params.contract_value_sigma}",
                   "upsell_value": f"lognormal, median {params.upsell_share} x contract median, sigma {params.upsell_sigma}",
                   "renewal_value": "the contract value (first purchase + upsells of the contract)",
                   "rounded_to": params.value_unit},
        "realised": {
            "customers": sim.n_customers,
            "customers_at_start": int((cust["first_seen"] == 0).sum()),
            "events": len(events),
            "events_per_type": {str(t): int(per_type.get(t, 0)) for t in events[TOUCHPOINT].cat.categories},
            "purchases": total["new"] + total["winback"] + total["upsell"],
            "new_purchases": total["new"],
            "winbacks": total["winback"],
            "upsells": total["upsell"],
            "churns": total["churn"],
            "renewals": total["renewal"],
            "customer_years": {s: float(status_years[i]) for i, s in enumerate(STATUSES)},
            "per_period": {
                name: {
                    "customer_years": {s: float(years[p, i]) for i, s in enumerate(STATUSES)},
                    "new_purchases": int(counts["new"][p]), "winbacks": int(counts["winback"][p]),
                    "upsells": int(counts["upsell"][p]), "churns": int(counts["churn"][p]),
                    "renewals": int(counts["renewal"][p]),
                }
                for p, name in enumerate(period_names)
            },
            "yearly_rates": {
                "new_purchases_per_prospect_year": per_year(total["new"], status_years[0]),
                "upsells_per_subscriber_year": per_year(total["upsell"], status_years[1]),
                "churns_per_subscriber_year": per_year(total["churn"], status_years[1]),
                "winbacks_per_churned_year": per_year(total["winback"], status_years[2]),
            },
        },
    }


# --------------------------------------------------------------------------------------------
# the confounded world and what the points should be


def _confound(cust: dict[str, Any], params: WorldParameters) -> None:
    """Correlate the latent churn effect with the purchase interest, and target touches at interest."""
    u = cust["purchase_effect"]
    rho = params.latent_correlation
    scale = params.churn_effect_sd / params.purchase_effect_sd if params.purchase_effect_sd > 0 else 0.0
    cust["churn_effect"] = rho * scale * u + math.sqrt(1.0 - rho**2) * cust["churn_effect"]
    z = u / params.purchase_effect_sd if params.purchase_effect_sd > 0 else np.zeros_like(u)
    targeting = np.ones((len(u), len(ENGAGEMENT_TYPES)))
    for name, g in params.interest_targeting.items():
        targeting[:, ENGAGEMENT_TYPES.index(name)] = np.exp(g * z - g * g / 2.0)  # mean 1
    cust["targeting"] = targeting


def _segment_weight_table(params: WorldParameters) -> np.ndarray:
    """``(segment, type)`` multipliers of the true weights in the confounded world."""
    table = np.ones((len(SEGMENTS), len(ENGAGEMENT_TYPES)))
    for name, by_segment in params.segment_weight_multipliers.items():
        table[:, ENGAGEMENT_TYPES.index(name)] = [by_segment[g] for g in SEGMENTS]
    return table


def _confounding_truth(params: WorldParameters, enabled: bool) -> dict[str, Any]:
    if not enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "interest_targeting": {t: float(g) for t, g in params.interest_targeting.items()},
        "targeting_rule": "rate x exp(g * z - g^2 / 2), z = purchase_effect / purchase_effect_sd (latent interest)",
        "touch_rates_replaced": {t: [float(r) for r in rates] for t, rates in params.confounded_touch_rates.items()},
        "latent_correlation": float(params.latent_correlation),
        "saturation_touches": float(params.saturation_touches),
        "hazard_term": "weight_k * segment_multiplier_k * c * log(1 + D_k / c), c = saturation_touches",
        "segment_weight_multipliers": {t: {g: float(v) for g, v in m.items()}
                                       for t, m in params.segment_weight_multipliers.items()},
    }


def _horizon_logodds(weights: np.ndarray, state: np.ndarray | None, horizon: int, half_life: float,
                     saturation: float | None) -> np.ndarray:
    """Log of the mean hazard ratio over the horizon's days of one more touch just before the
    cutoff (its rare-event log-odds effect on the horizon label); ``state`` is ``D_k`` at the cutoff."""
    total = np.zeros(np.broadcast_shapes(np.shape(weights), np.shape(state) if state is not None else ()))
    for j in range(horizon):
        f = 0.5 ** (j / half_life)
        if saturation is None:
            step = weights * f
        else:
            now = state * f
            step = weights * saturation * (np.log1p((now + f) / saturation) - np.log1p(now / saturation))
        total = total + np.exp(step)
    return np.log(total / horizon)


def _points_truth(settings: Settings, params: WorldParameters, cal: _Calendar, weights: np.ndarray,
                  cust: dict[str, Any], history) -> dict[str, Any]:
    """What the learned points should be: per task and regime, the causal log-odds effect of one
    more touch now on the task's label; in the confounded world also what a purely predictive
    model sees (see the ``definition`` entry)."""
    sim, labels = settings.simulate, settings.labels
    horizons = {"purchase": labels.purchase.horizon_days, "churn": labels.churn.horizon_days}
    sets = {"purchase": (0, 1), "churn": (2, 3)}
    out: dict[str, Any] = {"definition": (
        "causal_logodds: the log-odds effect on the task's label (an event within the horizon) of one more touch "
        "just before the cutoff, log(mean over the horizon's days of the hazard ratio), averaged over the task's "
        "population; predictive_logodds: the coefficients of D_k (decayed counts at the true half-life) in a "
        "logistic regression of the label on D_k, status and segment over monthly snapshots (what a purely "
        "predictive model sees); adjusted_logodds: the same regression with the latent purchase and churn effects "
        "added (the confounders). Unconfounded worlds: the causal effect is exact and nothing confounds it.")}
    for task, (before, after) in sets.items():
        h = int(horizons[task])
        entry: dict[str, Any] = {"horizon_days": h}
        for regime, j in (("before", before), ("after", after)):
            if history is None:
                tau = _horizon_logodds(weights[j], None, h, sim.true_half_life_days, None)
                entry[regime] = {"causal_logodds": dict(zip(ENGAGEMENT_TYPES, map(float, tau), strict=True)),
                                 "predictive_logodds": None, "adjusted_logodds": None}
            else:
                entry[regime] = _confounded_regime(task, regime, j, h, settings, params, cal, weights, cust, history)
        out[task] = entry
    return out


def _confounded_regime(task: str, regime: str, j: int, horizon: int, settings: Settings, params: WorldParameters,
                       cal: _Calendar, weights: np.ndarray, cust: dict[str, Any], history) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    snapshots, buys, churns, n_snap = history
    labels = settings.labels
    days = [snap for snap in snapshots
            if (snap[0] < cal.shift_day) == (regime == "before") and snap[0] + horizon <= cal.n_days]
    empty = {"causal_logodds": None, "predictive_logodds": None, "adjusted_logodds": None, "rows": 0}
    if task == "churn" and labels.churn.mode != "contractual":
        return empty | {"note": "computed for contractual churn only"}
    if not days:
        return empty

    def keys(events: list[tuple[np.ndarray, int]]) -> np.ndarray:
        parts = [who[who < n_snap].astype(np.int64) * (cal.n_days + 1) + day for who, day in events]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    outcome = keys(buys if task == "purchase" else churns)
    parts_id, parts_state, parts_status, parts_label = [], [], [], []
    customer = np.arange(n_snap, dtype=np.int64)
    quiet = labels.purchase.quiet_days
    for day, state, status, last_buy in days:
        if task == "purchase":  # no purchase in the quiet period before the cutoff
            member = (day - last_buy) > quiet if quiet > 0 else np.ones(n_snap, dtype=bool)
        else:                   # contractual churn: active subscribers
            member = status == 1
        who = customer[member]
        base = who * (cal.n_days + 1)
        count = np.searchsorted(outcome, base + day + horizon) - np.searchsorted(outcome, base + day)
        parts_id.append(who)
        parts_state.append(state[member])
        parts_status.append(status[member])
        parts_label.append(count > 0)
    member_ids = np.concatenate(parts_id)
    state = np.concatenate(parts_state)
    status = np.concatenate(parts_status)
    label = np.concatenate(parts_label)
    rng = np.random.default_rng(settings.simulate.seed + (0 if task == "purchase" else 1))
    pick = rng.choice(len(label), size=min(len(label), 100_000), replace=False) if len(label) else np.empty(0, int)
    state, status, label, member_ids = state[pick], status[pick], label[pick], member_ids[pick]
    segment = cust["segment"][member_ids]
    w = (weights[j][None, :] * _segment_weight_table(params)[segment])
    causal = _horizon_logodds(w, state, horizon, settings.simulate.true_half_life_days, params.saturation_touches)
    result: dict[str, Any] = {
        "causal_logodds": dict(zip(ENGAGEMENT_TYPES, map(float, causal.mean(axis=0)), strict=True)),
        "rows": int(len(label)), "positives": int(label.sum()),
    }
    if label.sum() < 20 or (~label).sum() < 20:
        return result | {"predictive_logodds": None, "adjusted_logodds": None}
    observed = [state, np.eye(len(SEGMENTS))[segment][:, 1:]]
    if task == "purchase":
        observed.append(np.eye(len(STATUSES))[status][:, 1:])
    latent = np.column_stack([cust["purchase_effect"][member_ids], cust["churn_effect"][member_ids]])
    for name, design in (("predictive_logodds", np.hstack(observed)), ("adjusted_logodds", np.hstack([*observed, latent]))):
        fit = LogisticRegression(C=1e4, max_iter=2000).fit(design, label)
        result[name] = dict(zip(ENGAGEMENT_TYPES, map(float, fit.coef_[0, :len(ENGAGEMENT_TYPES)]), strict=True))
    return result


def __getattr__(name: str):
    """``signals.simulate.messy_sources`` / ``REJECT_REASONS`` moved to :mod:`signals.messy` (kept importable)."""
    if name in ("messy_sources", "REJECT_REASONS"):
        import signals.messy

        return getattr(signals.messy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
