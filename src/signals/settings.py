"""Typed, validated settings for every stage, loaded from YAML.

Every section is a frozen pydantic model with ``extra="forbid"``: an unknown key, a wrong type or
a bad value is a :class:`ConfigError` that names the file and the key path (``features.windows_days``).
The defaults below are the documented defaults of ``configs/default.yaml`` (a test keeps the two equal).

Secrets never live in these files: database URLs can be given through environment variables
(``sink.url_env``, ``ingest.sources[].url_env``).

>>> s = load_settings(overrides=["features.windows_days=[7, 30]"])
>>> s.features.windows_days
(7, 30)
>>> s.catalog["seminar"].prior_points
10.0
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from signals.errors import ConfigError

__all__ = [
    "AlarmSettings",
    "BandSettings",
    "ConfigError",
    "CutoffSettings",
    "FeatureSettings",
    "IngestSettings",
    "LabelSettings",
    "LightGBMSettings",
    "ModelSettings",
    "MlflowSettings",
    "PLACEHOLDER_DATES",
    "PLACEHOLDER_IDS",
    "PathSettings",
    "PromotionSettings",
    "Settings",
    "SimulateSettings",
    "ScoringSettings",
    "SinkSettings",
    "SourceSettings",
    "SubscriptionSourceSettings",
    "Touchpoint",
    "ViewSettings",
    "load_settings",
]

TouchpointRole = Literal["engagement", "purchase", "renewal", "cancellation", "refund"]
RESERVED_TOUCHPOINT_NAMES = frozenset({"all", "customer", "company", "prior", "learned"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like 'Asia/Tokyo' or 'UTC')") from exc
    return name


def _positive_unique(values: tuple[float, ...], what: str) -> tuple:
    if not values:
        raise ValueError(f"{what} must not be empty")
    if any(v <= 0 for v in values):
        raise ValueError(f"{what} must all be > 0, got {list(values)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat a value, got {list(values)}")
    return tuple(sorted(values))


class Touchpoint(_Frozen):
    """One canonical touchpoint type of the catalog.

    ``prior_points`` is the hand-set 配点 (the article's example: seminar 10, web document request 5,
    sales visit 13, purchase 20). ``role`` tells labels which types are purchases, renewals or
    cancellations, and value features which amounts are money in (purchase, renewal) or money
    given back (``refund``: refunds and credit notes, whose amounts may be exported negative);
    everything else is ``engagement``. ``valued`` says whether the type's touches carry amounts
    (deal sizes, MRR) that value features sum, average and take the last of; when not set,
    purchases, renewals and refunds get their sums only (``false``: no value features).
    """

    channel: str = Field(min_length=1)
    initiated_by: Literal["customer", "company"]
    prior_points: float
    role: TouchpointRole = "engagement"
    valued: bool | None = Field(
        default=None, description="its touches carry amounts (value features: sum, mean, last); null = sums for the money roles")
    label: str = Field(default="", description="singular noun used in reasons; empty = the name with spaces")
    description: str = ""

    def noun(self, name: str, count: float = 1) -> str:
        """``"document request"`` / ``"document requests"`` (for reasons in plain words)."""
        word = self.label or name.replace("_", " ")
        if count == 1:
            return word
        if word.endswith("y") and not word.endswith(("ay", "ey", "oy", "uy")):
            return word[:-1] + "ies"
        if word.endswith(("s", "x", "ch", "sh")):
            return word + "es"
        return word + "s"


def _default_catalog() -> dict[str, Touchpoint]:
    t = Touchpoint
    return {
        "seminar": t(channel="event", initiated_by="customer", prior_points=10,
                     description="attended an on-site seminar"),
        "webinar": t(channel="online_event", initiated_by="customer", prior_points=8,
                     description="attended a webinar"),
        "doc_request": t(channel="web", initiated_by="customer", prior_points=5, label="document request",
                         description="requested documents on the web site (資料請求)"),
        "web_visit": t(channel="web", initiated_by="customer", prior_points=1,
                       description="visited a product or pricing page"),
        "email_open": t(channel="email", initiated_by="customer", prior_points=1, label="e-mail open",
                        description="opened a marketing e-mail"),
        "email_click": t(channel="email", initiated_by="customer", prior_points=2, label="e-mail click",
                         description="clicked a link in a marketing e-mail"),
        "newsletter": t(channel="email", initiated_by="company", prior_points=1,
                        description="was sent the newsletter"),
        "inquiry": t(channel="support", initiated_by="customer", prior_points=6,
                     description="opened a support inquiry"),
        "call": t(channel="phone", initiated_by="company", prior_points=3,
                  description="received a sales call"),
        "sales_visit": t(channel="field_sales", initiated_by="company", prior_points=13,
                         description="was visited by sales"),
        "purchase": t(channel="commerce", initiated_by="customer", prior_points=20, role="purchase",
                      description="purchased (new contract, upsell or order)"),
        "renewal": t(channel="contract", initiated_by="customer", prior_points=15, role="renewal",
                     description="renewed the contract"),
        "cancellation": t(channel="contract", initiated_by="customer", prior_points=-20,
                          role="cancellation", description="cancelled or did not renew"),
    }


class FeatureSettings(_Frozen):
    """Windows and half-lives of the feature builders (all in days; a day is exactly 24 h)."""

    windows_days: tuple[int, ...] = (7, 30, 90, 365)
    half_lives_days: tuple[float, ...] = (7, 30, 90)
    trend_lags_days: tuple[int, ...] = (14, 30)
    trend_half_life_days: float = 30
    surge_recent_days: int = Field(default=30, gt=0)
    surge_baseline_days: int = Field(default=365, gt=0)
    falling_window_days: int = Field(default=90, gt=0)
    static_columns: tuple[str, ...] = Field(default=(), description="customers-table columns used as features")
    max_unmatched_id_fraction: float = Field(
        default=0.2, ge=0, le=1,
        description="build_features: share of the cutoffs' customer ids that may have no event at all")
    unmatched_ids: Literal["error", "warn"] = Field(
        default="error", description="what build_features does past max_unmatched_id_fraction")
    threads: int = Field(default=0, ge=0, description="threads for the per-type work; 0 = the cores available")

    @field_validator("windows_days", "trend_lags_days")
    @classmethod
    def _windows(cls, v: tuple[int, ...], info) -> tuple[int, ...]:
        return _positive_unique(v, info.field_name)

    @field_validator("half_lives_days")
    @classmethod
    def _half_lives(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return _positive_unique(v, "half_lives_days")

    @field_validator("trend_half_life_days")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("trend_half_life_days must be > 0")
        return v

    @model_validator(mode="after")
    def _surge_order(self) -> FeatureSettings:
        if self.surge_recent_days >= self.surge_baseline_days:
            raise ValueError("surge_recent_days must be shorter than surge_baseline_days")
        return self


class CutoffSettings(_Frozen):
    """The snapshot grid: when features are taken and labels start.

    ``kind`` picks the cutoffs: the calendar grid (``frequency``), a user's table of
    ``(customer, cutoff)`` rows (``table``), or renewal-anchored dates ``days_before`` days before
    each ``every_months`` anniversary of the customer's latest contract start (``anniversary``).
    Custom cutoffs serve the ``tasks`` listed; training groups them into the calendar grid's
    periods, which the time split divides (see :mod:`signals.modeling.splits`).
    """

    frequency: Literal["monthly", "weekly"] = "monthly"
    n_training: int = Field(default=18, gt=0, description="training cutoffs, the most recent that leave a full label horizon")
    end: dt.date | None = Field(default=None, description="last training cutoff; null = latest that fits the data")
    start: Literal["first_event", "all_sources"] | dt.date = Field(
        default="first_event", description="training cutoffs come after this: the first event, the first moment "
                                           "every source has an event, or a date")
    min_history_days: int = Field(default=0, ge=0)
    kind: Literal["calendar", "table", "anniversary"] = "calendar"
    table: Path | None = Field(default=None, description="kind table: CSV or Parquet of (customer, cutoff) rows")
    table_columns: dict[str, str] = Field(
        default_factory=lambda: {"customer_id": "customer_id", "cutoff": "cutoff"},
        description="kind table: customer_id / cutoff -> the table's column names")
    anchor_roles: tuple[TouchpointRole, ...] = Field(
        default=("purchase",), description="kind anniversary: the roles whose events start a contract")
    every_months: int = Field(default=1, ge=1, description="kind anniversary: months between anniversaries")
    days_before: int = Field(default=5, ge=0, description="kind anniversary: cutoffs this many days before each")
    tasks: tuple[Literal["churn", "purchase"], ...] = Field(
        default=("churn", "purchase"), description="the tasks custom cutoffs serve; others keep the calendar grid")

    @field_validator("table_columns")
    @classmethod
    def _table_columns(cls, v: dict[str, str]) -> dict[str, str]:
        if set(v) != {"customer_id", "cutoff"}:
            raise ValueError(f"table_columns maps exactly customer_id and cutoff, got {sorted(v)}")
        return v

    @model_validator(mode="after")
    def _kind(self) -> CutoffSettings:
        if self.kind == "table" and self.table is None:
            raise ValueError("cutoffs.kind table needs cutoffs.table (a CSV or Parquet file of customer, cutoff rows)")
        return self

    def custom_for(self, task: str) -> bool:
        """Whether ``task`` trains and scores on custom cutoffs."""
        return self.kind != "calendar" and task in self.tasks


class ChurnLabelSettings(_Frozen):
    mode: Literal["contractual", "non_contractual"] = "contractual"
    horizon_days: int = Field(default=90, gt=0)
    lookback_days: int = Field(default=365, gt=0, description="non-contractual: active = activity in [cutoff - lookback, cutoff)")
    activity_roles: tuple[TouchpointRole, ...] = ("purchase", "renewal")


class PurchaseLabelSettings(_Frozen):
    horizon_days: int = Field(default=60, gt=0)
    quiet_days: int = Field(default=90, ge=0, description="eligible only with no purchase in [cutoff - quiet, cutoff)")


class LabelSettings(_Frozen):
    churn: ChurnLabelSettings = ChurnLabelSettings()
    purchase: PurchaseLabelSettings = PurchaseLabelSettings()


class LightGBMSettings(_Frozen):
    """Booster settings. The defaults favour many small, heavily regularised trees: positives are
    rare and touch effects are mostly additive, so deep trees chase noise (chosen on validation
    cutoffs of simulated data, see the training note in README)."""

    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=7, ge=2)
    min_child_samples: int = Field(default=300, ge=1)
    feature_fraction: float = Field(default=0.3, gt=0, le=1)
    bagging_fraction: float = Field(default=0.8, gt=0, le=1)
    bagging_freq: int = Field(default=1, ge=0)
    lambda_l2: float = Field(default=10.0, ge=0)
    n_estimators: int = Field(default=2000, ge=1)
    early_stopping_rounds: int = Field(default=100, ge=1)
    num_threads: int = Field(default=0, ge=0, description="0 = all cores")


EmbargoMode = Literal["full", "test", "none"]


class ModelSettings(_Frozen):
    """Training, the rolling-origin backtest, learned points and their intervals."""

    validation_cutoffs: int = Field(default=2, ge=1, description="per backtest origin")
    test_cutoffs: int = Field(default=1, ge=1, description="per backtest origin")
    backtest_origins: int = Field(default=4, ge=1, description="test origins of the rolling-origin backtest")
    embargo: EmbargoMode = Field(
        default="full", description="full: one label horizon before validation and before test; test: before "
                                    "test only; none (true / false are read as full / none)")
    min_positives: int = Field(default=10, ge=1, description="positives (and negatives) every validation and "
                                                             "test period needs to be measured")
    calibration: Literal["isotonic", "sigmoid"] = Field(
        default="sigmoid", description="sigmoid keeps the ranking strictly (no ties among top customers)")
    lightgbm: LightGBMSettings = LightGBMSettings()
    half_life_grid_days: tuple[float, ...] = (7, 14, 21, 30, 45, 60, 90)
    points_reference_rows: int = Field(default=3000, ge=10)
    points_interval: Literal["half_sample", "bootstrap", "none"] = Field(
        default="half_sample", description="how the points' intervals refit the whole model")
    points_refits: int = Field(default=10, ge=2, description="refits behind the points' intervals")
    parallel_fits: int = Field(
        default=0, ge=0, description="LightGBM fits run side by side on threads (the backtest's earlier origins and "
                                     "the points' refits), each on lightgbm.num_threads threads (0 there = one); "
                                     "0 = the cores available, 1 = one after another")
    recency_half_life_days: float | None = Field(
        default=None, gt=0, description="weigh each training row by 0.5 ** (days before the latest training cutoff / "
                                        "this), so recent behaviour counts more after a shift; null = equal weights")
    bootstrap_rounds: int = Field(default=200, ge=10)
    seed: int = 42

    @field_validator("embargo", mode="before")
    @classmethod
    def _embargo(cls, v: Any) -> Any:
        if isinstance(v, bool):  # the old boolean form: true = both gaps, false = none
            return "full" if v else "none"
        return v

    @field_validator("half_life_grid_days")
    @classmethod
    def _grid(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return _positive_unique(v, "half_life_grid_days")


class PromotionSettings(_Frozen):
    """When ``signals retrain`` moves the ``champion`` alias to the challenger.

    Both are scored on the same latest out-of-time cutoffs (the challenger's test cutoffs). The
    challenger is promoted when its ROC AUC is not worse than the champion's by more than
    ``auc_margin`` and its expected calibration error is at most ``max_ece``.
    """

    auc_margin: float = Field(default=0.005, ge=0, le=1,
                              description="promote if challenger AUC >= champion AUC - auc_margin")
    max_ece: float = Field(default=0.02, gt=0, le=1, description="and challenger ECE <= max_ece")


class MlflowSettings(_Frozen):
    """Where runs and registered models go (MLflow), and the champion / challenger rule.

    Credentials never live here: MLflow reads ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``) from the environment.
    """

    tracking_uri: str = Field(default="sqlite:///mlflow.db", min_length=1,
                              description="a local store (sqlite:///file.db) or a server (http://host:5000)")
    tracking_uri_env: str | None = Field(default="MLFLOW_TRACKING_URI",
                                         description="if this environment variable is set, it replaces tracking_uri")
    registry_uri: str | None = Field(default=None, description="model registry; null = the tracking store")
    experiment: str = Field(default="signals", min_length=1)
    artifact_location: str | None = Field(
        default="mlartifacts",
        description="artifact root of an experiment created on a local store (relative = to the working "
                    "folder); null = the store's default. A server decides its own.")
    registered_model_prefix: str = Field(default="signals", min_length=1,
                                         description="registered models are <prefix>-churn and <prefix>-purchase")
    track_training: bool = Field(default=True, description="`signals train` logs a run (--no-track opts out)")
    retrain_backtest_origins: int | None = Field(
        default=1, ge=1, description="backtest origins of a retrain's challenger; null = model.backtest_origins. "
                                     "The decision reads only the latest origin's test cutoffs; more origins add "
                                     "pooled metrics to the bundle, each at the cost of a model")
    promotion: PromotionSettings = PromotionSettings()

    @field_validator("tracking_uri", "registry_uri")
    @classmethod
    def _no_password(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v is not None and urlsplit(v).password is not None:
            raise ValueError("the URI holds a password: credentials never go in a config file; set "
                             "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN), or put "
                             "the whole URI in the environment variable named by mlflow.tracking_uri_env "
                             "(default MLFLOW_TRACKING_URI)")
        return v


class SinkSettings(_Frozen):
    """Where batch scoring writes the ``customer_signals`` rows (:mod:`signals.io.sinks`).

    ``sqlite`` and ``postgresql`` write through SQLAlchemy to ``url``; ``files`` writes one
    Parquet or CSV file per batch under ``folder``. A password never goes in ``url``: put the
    whole URL in the environment variable named by ``url_env`` instead (it replaces ``url``).
    ``signals report`` reads the top alarms back (``kind`` sqlite).
    """

    kind: Literal["sqlite", "postgresql", "files"] = "sqlite"
    url: str = Field(default="sqlite:///crm.db", description="SQLAlchemy URL without a password")
    url_env: str | None = Field(default="SIGNALS_CRM_URL", description="if this variable is set, it replaces url")
    table: str = Field(default="customer_signals", description="table name, optionally schema.table")
    folder: Path = Field(default=Path("data/customer_signals"), description="kind files: where the batch files go")
    format: Literal["parquet", "csv"] = Field(default="parquet", description="kind files: the file format")
    chunk_rows: int = Field(default=50_000, gt=0, description="rows sent to the database per round trip")

    @field_validator("url")
    @classmethod
    def _no_password(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(v)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc}); e.g. sqlite:///crm.db or postgresql+psycopg://host/db") from None
        if url.password is not None:
            raise ValueError("the URL holds a password: credentials never go in a config file; put the whole "
                             "URL in the environment variable named by sink.url_env (default SIGNALS_CRM_URL)")
        return v

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        parts = v.split(".")
        if len(parts) > 2 or not all(p.isidentifier() for p in parts):
            raise ValueError(f"table must be a name or schema.name of letters, digits and underscores, got {v!r}")
        return v


class BandSettings(_Frozen):
    """Score bands: ``high`` is the top ``high_share`` of the validation rows' probabilities,
    ``medium`` the next ``medium_share``; the cut points are saved with the model."""

    high_share: float = Field(default=0.1, gt=0, lt=1)
    medium_share: float = Field(default=0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _shares(self) -> BandSettings:
        if self.high_share + self.medium_share >= 1:
            raise ValueError("high_share + medium_share must be below 1 (the rest is low)")
        return self


class AlarmSettings(_Frozen):
    """Alarm rules; their thresholds are chosen on the validation cutoffs for the target precision."""

    kizashi_precision: float = Field(default=0.2, gt=0, lt=1, description="purchase: target precision of kizashi")
    cooling_precision: float = Field(default=0.08, gt=0, lt=1, description="churn: target precision of cooling")
    min_alarms: int = Field(default=30, ge=1, description="a threshold must raise at least this many validation alarms")
    min_lift: float = Field(default=2.0, ge=1, description="and reach at least this multiple of the base rate")
    warm_quantile: float = Field(default=0.5, gt=0, lt=1,
                                 description="cooling: 'warm' = temperature 30 days ago at or above this quantile")


class ScoringSettings(_Frozen):
    """Batch scoring (``signals score``): bands, alarms, reasons."""

    bands: BandSettings = BandSettings()
    alarms: AlarmSettings = AlarmSettings()
    reasons: int = Field(default=3, ge=1, le=10, description="reasons per customer and task")
    views: bool = Field(default=True, description="add each customer's segment and journey stage (signals.views)")
    reason_chunk_rows: int = Field(default=100_000, gt=0, description="rows per chunk of per-row contributions")


class SimulateSettings(_Frozen):
    n_customers: int = Field(default=20_000, gt=0)
    start: dt.date = dt.date(2023, 1, 1)
    end: dt.date = dt.date(2026, 1, 1)
    shift_date: dt.date | None = dt.date(2024, 7, 1)
    true_half_life_days: float = Field(default=30, gt=0)
    activity_scale: float = Field(default=1.0, gt=0, description="multiplies every touch rate")
    confounding: bool = Field(default=False, description="a world built to fool the learned points (targeted "
                                                         "sales, saturating and segment-dependent effects)")
    seed: int = 7

    @model_validator(mode="after")
    def _dates(self) -> SimulateSettings:
        if self.end <= self.start:
            raise ValueError("simulate.end must be after simulate.start")
        if self.shift_date is not None and not (self.start < self.shift_date < self.end):
            raise ValueError("simulate.shift_date must lie strictly between start and end (or be null)")
        return self


SUBSCRIPTION_COLUMNS = ("customer_id", "start", "end", "product", "value", "status", "cancelled_at")


class SubscriptionSourceSettings(_Frozen):
    """How a source of ``kind: subscriptions`` becomes contract events
    (:func:`signals.subscriptions.contracts_from_subscriptions` has the rules)."""

    format: Literal["csv", "parquet", "sql"] | None = Field(
        default=None, description="how to read it; null = sql with a query, parquet for .parquet/.pq, else csv")
    gap_days: float = Field(default=0, ge=0, description="a period starting this soon after the last one ended continues it")
    term_months: int | None = Field(default=None, ge=1, description="open-ended rows renew every this many months")
    end_inclusive: bool = Field(default=False, description="end dates are the last active day")
    statuses: dict[str, Literal["active", "ended"]] = Field(
        default_factory=dict, description="raw status -> active | ended (English words are known already)")
    purchase: str = Field(default="purchase", description="catalog type (role purchase) of a spell's start")
    renewal: str = Field(default="renewal", description="catalog type (role renewal) of a term boundary")
    cancellation: str = Field(default="cancellation", description="catalog type (role cancellation) of a spell's end")


class SourceSettings(_Frozen):
    """One raw system feeding the event table, with its column and activity-name mappings.

    ``kind`` is how the rows are read (``csv``, ``parquet``, ``sql``), or ``subscriptions``: a
    subscriptions table (read as ``subscriptions.format`` says) whose rows become purchase, renewal
    and cancellation events; its ``columns`` map the subscription columns instead.
    """

    name: str = Field(min_length=1)
    kind: Literal["csv", "parquet", "sql", "subscriptions"]
    path: Path | None = None
    url: str | None = None
    url_env: str | None = None
    query: str | None = None
    columns: dict[str, str] = Field(
        description="canonical column -> raw column; needs customer_id, ts, touchpoint; value and event_id optional "
                    "(kind subscriptions: customer_id, start; end, product, value, status, cancelled_at optional)")
    touchpoints: dict[str, str] = Field(default_factory=dict, description="raw activity name -> canonical touchpoint")
    timezone: str = Field(default="UTC", description="time zone of naive timestamps")
    ts_format: str | None = Field(default=None, description="strftime format; null = ISO 8601")
    encoding: str = Field(default="utf-8", description="CSV only: the file's text encoding (e.g. cp932)")
    delimiter: str = Field(default=",", description="CSV only: the field separator (one character, e.g. ';' or '\\t')")
    max_reject_fraction: float | None = Field(
        default=None, ge=0, le=1, description="overrides ingest.max_reject_fraction for this source")
    subscriptions: SubscriptionSourceSettings = Field(
        default_factory=SubscriptionSourceSettings, description="kind subscriptions only")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _check_timezone(v)

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, v: str) -> str:
        if len(v) != 1 or v in ('"', "\n", "\r"):
            raise ValueError(f"delimiter must be one character other than a quote or a line break, got {v!r} "
                             "(write a tab as '\\t' in double quotes)")
        return v

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str], info) -> dict[str, str]:
        if info.data.get("kind") == "subscriptions":
            allowed, required = set(SUBSCRIPTION_COLUMNS), {"customer_id", "start"}
        else:
            allowed, required = {"customer_id", "ts", "touchpoint", "value", "event_id"}, {"customer_id", "ts", "touchpoint"}
        unknown = sorted(set(v) - allowed)
        if unknown:
            raise ValueError(f"unknown canonical column(s) {unknown}; allowed: {sorted(allowed)}")
        missing = sorted(required - set(v))
        if missing:
            raise ValueError(f"missing mapping for canonical column(s) {missing}")
        return v

    @property
    def reader(self) -> Literal["csv", "parquet", "sql"]:
        """How the rows are read: ``kind``, or for subscriptions ``subscriptions.format`` (else inferred)."""
        if self.kind != "subscriptions":
            return self.kind
        if self.subscriptions.format is not None:
            return self.subscriptions.format
        if self.query is not None:
            return "sql"
        return "parquet" if self.path is not None and Path(self.path).suffix.lower() in (".parquet", ".pq") else "csv"

    @model_validator(mode="after")
    def _location(self) -> SourceSettings:
        what = self.kind if self.kind != "subscriptions" else f"subscriptions (read as {self.reader})"
        if self.reader in ("csv", "parquet") and self.path is None:
            raise ValueError(f"source {self.name!r} of kind {what} needs a path")
        if self.reader == "sql" and (self.query is None or (self.url is None and self.url_env is None)):
            raise ValueError(f"source {self.name!r} of kind {what} needs a query and a url (or url_env)")
        if self.kind == "subscriptions" and self.touchpoints:
            raise ValueError(f"source {self.name!r}: a subscriptions source has no activity names; name the event "
                             "types in subscriptions.purchase / renewal / cancellation instead of touchpoints")
        if self.kind != "subscriptions" and self.subscriptions != SubscriptionSourceSettings():
            raise ValueError(f"source {self.name!r}: the subscriptions block is for kind subscriptions only")
        return self


#: Customer ids that mean "no id" in exports (compared case-insensitively, after stripping spaces).
PLACEHOLDER_IDS: tuple[str, ...] = (
    "null", "none", "nan", "nat", "na", "n/a", "#n/a", "#na", "-", "--", "?", "(null)", "(blank)", "undefined",
    "#value!", "#ref!", "#null!",
)
#: Dates that mean "no date" in exports: Excel's day zero, its first day, and the Unix epoch.
PLACEHOLDER_DATES: tuple[dt.date, ...] = (dt.date(1899, 12, 30), dt.date(1900, 1, 1), dt.date(1970, 1, 1))


class IngestSettings(_Frozen):
    as_of: dt.datetime | None = Field(default=None, description="events after this instant are rejected; null = now")
    dedupe_tolerance_seconds: float = Field(default=0, ge=0, description="cross-source duplicates: clock tolerance")
    max_reject_fraction: float = Field(
        default=0.5, ge=0, le=1, description="fail when more than this share of a source's rows is rejected")
    placeholder_ids: tuple[str, ...] = Field(default=PLACEHOLDER_IDS, description="ids that mean 'no id' (any case)")
    placeholder_dates: tuple[dt.date, ...] = Field(default=PLACEHOLDER_DATES, description="dates that mean 'no date'")
    rejects_raw_columns: bool = Field(
        default=False, description="also copy every raw column (unmapped personal data too) into the rejects")
    sources: tuple[SourceSettings, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> IngestSettings:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return self


class PathSettings(_Frozen):
    """Files the jobs read and write; relative paths start at the working directory."""

    raw_dir: Path = Path("data/raw")
    events: Path = Path("data/events.parquet")
    customers: Path = Path("data/customers.parquet")
    truth: Path = Path("data/truth.json")
    rejects: Path = Path("data/rejects.csv")
    duplicates: Path = Path("data/duplicates.csv")
    features: Path = Path("data/features.parquet")
    models_dir: Path = Path("models")
    reports_dir: Path = Path("reports")


class SegmentSettings(_Frozen):
    """Seed 003's contact-frequency segments (:mod:`signals.views._segments`). Contacts are every
    touch except ``views.ignore_touchpoints``; a customer's frequency is its contacts in the last
    ``window_days``. The default thresholds are what ``signals.views.choose_segment_thresholds``
    picks on the training cutoffs of the demo world (``configs/demo.yaml``; ``signals report`` shows
    its pick on any data)."""

    window_days: int = Field(default=90, gt=0)
    new_days: int = Field(default=180, ge=0, description="first seen fewer than this many days ago: new")
    nurture_min_contacts: int = Field(default=14, ge=1, description="nurture: at least this many contacts in the window")
    stop_max_peak_contacts: int = Field(default=8, ge=0, description="stop_spending: never more contacts in any window")
    follow_up_max_ratio: float = Field(default=0.65, gt=0, lt=1, description="follow_up: (last + 1) / (before + 1) at most this")
    min_share: float = Field(default=0.05, gt=0, lt=1, description="threshold search: smallest segment share allowed")
    max_share: float = Field(default=0.30, gt=0, le=1, description="threshold search: largest segment share allowed")

    @model_validator(mode="after")
    def _order(self) -> SegmentSettings:
        if self.nurture_min_contacts <= self.stop_max_peak_contacts:
            raise ValueError("nurture_min_contacts must be larger than stop_max_peak_contacts")
        if self.min_share >= self.max_share:
            raise ValueError("min_share must be smaller than max_share")
        return self


class ContactViewSettings(_Frozen):
    """Seed 000's contact rate and the dose-response of company-initiated contacts."""

    dose_window_days: int = Field(default=90, gt=0)
    dose_bins: tuple[int, ...] = Field(default=(0, 1, 2, 3, 5, 8), description="lower edges of the contact-count bins")

    @field_validator("dose_bins")
    @classmethod
    def _bins(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or v[0] != 0 or list(v) != sorted(set(v)):
            raise ValueError(f"dose_bins must start at 0 and increase strictly, got {list(v)}")
        return v


class RetentionSettings(_Frozen):
    """Seed 004's cohort retention (contractual: active subscribers; non-contractual: active in the lookback)."""

    cohort: Literal["first_purchase", "first_seen"] = "first_purchase"
    max_months: int = Field(default=24, gt=0)
    lookback_days: int | None = Field(default=None, gt=0, description="non-contractual; null = labels.churn.lookback_days")


class TimelineSettings(_Frozen):
    """Seed 002's temperature timeline and its alarm lines (population quantiles at the as-of date)."""

    surge_days: int = Field(default=14, gt=0, description="kizashi: temperature rise over this many days")
    surge_quantile: float = Field(default=0.95, gt=0, lt=1, description="kizashi line: this quantile of the rise")
    cold_quantile: float = Field(default=0.2, gt=0, lt=1, description="cooling line: this quantile among active customers")


class JourneySettings(_Frozen):
    """Seed 001's journey stages. Before a purchase, a customer is in the furthest stage it touched in
    the last ``recent_days`` (awareness when none); an active customer is in ``purchase`` (bought in
    the last ``purchase_days``), ``at_risk`` (no contact in ``at_risk_quiet_days``) or ``retention``."""

    awareness: tuple[str, ...] = ("newsletter", "email_open", "web_visit", "call")
    interest: tuple[str, ...] = ("email_click", "webinar", "seminar")
    consideration: tuple[str, ...] = ("doc_request", "inquiry", "sales_visit")
    recent_days: int = Field(default=90, gt=0)
    purchase_days: int = Field(default=90, gt=0)
    at_risk_quiet_days: int = Field(default=60, gt=0)
    conversion_days: int = Field(default=90, gt=0)

    @model_validator(mode="after")
    def _disjoint(self) -> JourneySettings:
        listed = [*self.awareness, *self.interest, *self.consideration]
        twice = sorted({t for t in listed if listed.count(t) > 1})
        if twice:
            raise ValueError(f"a touchpoint belongs to one stage only, repeated: {twice}")
        return self


class ReportSettings(_Frozen):
    timeline_customers: int = Field(default=3, ge=0, description="customers drawn in the report's timelines")
    top_alarms: int = Field(default=20, ge=0)


class ViewSettings(_Frozen):
    """The seeds' business views (:mod:`signals.views`) and ``signals report``."""

    ignore_touchpoints: tuple[str, ...] = Field(default=("newsletter",), description="not counted as contacts")
    evidence_cutoffs: int = Field(default=6, gt=0, description="latest grid cutoffs the evidence tables use")
    segments: SegmentSettings = SegmentSettings()
    contact: ContactViewSettings = ContactViewSettings()
    retention: RetentionSettings = RetentionSettings()
    timeline: TimelineSettings = TimelineSettings()
    journey: JourneySettings = JourneySettings()
    report: ReportSettings = ReportSettings()


class Settings(_Frozen):
    """All settings of a run. Build with :func:`load_settings`."""

    timezone: str = "UTC"
    catalog: dict[str, Touchpoint] = Field(default_factory=_default_catalog)
    features: FeatureSettings = FeatureSettings()
    cutoffs: CutoffSettings = CutoffSettings()
    labels: LabelSettings = LabelSettings()
    model: ModelSettings = ModelSettings()
    mlflow: MlflowSettings = MlflowSettings()
    sink: SinkSettings = SinkSettings()
    scoring: ScoringSettings = ScoringSettings()
    simulate: SimulateSettings = SimulateSettings()
    ingest: IngestSettings = IngestSettings()
    paths: PathSettings = PathSettings()
    views: ViewSettings = ViewSettings()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _check_timezone(v)

    @field_validator("catalog")
    @classmethod
    def _catalog(cls, v: dict[str, Touchpoint]) -> dict[str, Touchpoint]:
        if not v:
            raise ValueError("the catalog needs at least one touchpoint type")
        for name in v:
            if not name.isidentifier() or name != name.lower() or "__" in name:
                raise ValueError(
                    f"touchpoint name {name!r} must be lower_snake_case without '__' (it becomes part of feature names)"
                )
            if name in RESERVED_TOUCHPOINT_NAMES:
                raise ValueError(f"touchpoint name {name!r} is reserved")
        return v

    @model_validator(mode="after")
    def _views_use_the_catalog(self) -> Settings:
        # the default lists name default-catalog types: a replaced catalog (configs/cdnow.yaml) just
        # skips the ones it lacks; a list the config writes itself must name catalog types only
        j, default_views = self.views.journey, ViewSettings()
        named = {"views.ignore_touchpoints": (self.views.ignore_touchpoints, default_views.ignore_touchpoints)}
        for stage in ("awareness", "interest", "consideration"):
            named[f"views.journey.{stage}"] = (getattr(j, stage), getattr(default_views.journey, stage))
        for key, (names, default) in named.items():
            unknown = sorted(set(names) - set(self.catalog))
            if unknown and names != default:
                raise ValueError(f"{key}: touchpoint(s) {unknown} are not in the catalog")
        return self

    def touchpoints_with_role(self, *roles: str) -> list[str]:
        """Catalog names whose role is one of ``roles``, in catalog order."""
        return [name for name, tp in self.catalog.items() if tp.role in roles]


# --------------------------------------------------------------------------------------------
# loading


class _Loader(yaml.SafeLoader):
    """Safe YAML, strict where silence would hide a mistake.

    A key repeated in one mapping is an error (plain YAML keeps the last one and silently drops
    the first, e.g. a whole second ``features:`` section). A date-like scalar that is not a real
    date (``2025-02-30``) stays text, so validation names its key instead of YAML failing.
    """

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise ConfigError(
                    f"line {line}: key {key!r} appears twice in one mapping (first on line {seen[key]}); "
                    "YAML would keep only the last one: merge the two"
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:  # "2025-02-30": left as text for validation to report with its key
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _child(node: Any, key: str, dotted: str, walked: str) -> tuple[Any, Any]:
    """The child of ``node`` at ``key`` (a mapping key, a list index, or a list item's ``name``)."""
    if isinstance(node, dict):
        return node, key
    if isinstance(node, list):
        if key.lstrip("-").isdigit():
            index = int(key)
            if not -len(node) <= index < len(node):
                raise ConfigError(f"override {dotted!r}: {walked} has {len(node)} item(s), no index {index}")
            return node, index
        names = [item.get("name") for item in node if isinstance(item, dict)]
        if key in names:
            return node, names.index(key)
        raise ConfigError(
            f"override {dotted!r}: {walked} has no item named {key!r} "
            f"(names: {[n for n in names if n is not None]}; or use an index 0..{len(node) - 1})"
        )
    raise ConfigError(f"override {dotted!r}: {walked} is not a section")


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested mappings; list items by index or by name (``ingest.sources.sfa.path``)."""
    keys = dotted.split(".")
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        walked = ".".join(keys[: i + 1])
        parent, slot = _child(node, key, dotted, ".".join(keys[:i]) or "(top level)")
        child = parent.get(slot) if isinstance(parent, dict) else parent[slot]
        if child is None:
            child = parent[slot] = {}
        elif isinstance(child, tuple):
            child = parent[slot] = list(child)
        if not isinstance(child, dict | list):
            raise ConfigError(f"override {dotted!r}: {walked} is not a section")
        node = child
    parent, slot = _child(node, keys[-1], dotted, ".".join(keys[:-1]))
    parent[slot] = value


def _parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value (e.g. simulate.n_customers=1000)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = _yaml_load(raw) if raw.strip() else None
    except ConfigError as exc:
        raise ConfigError(f"override {text!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return key, value


def _relative_to(folder: Path, path: str) -> str:
    joined = Path(path) if Path(path).is_absolute() else folder / path
    return os.path.normpath(joined)


def _sources_relative_to(data: dict[str, Any], folder: Path) -> None:
    """Resolve the relative input locations of a config file (sources, the cutoffs table) against the
    file's folder (in place)."""
    cutoffs = data.get("cutoffs")
    if isinstance(cutoffs, dict) and isinstance(cutoffs.get("table"), str) and cutoffs["table"]:
        cutoffs["table"] = _relative_to(folder, cutoffs["table"])
    ingest = data.get("ingest")
    sources = ingest.get("sources") if isinstance(ingest, dict) else None
    if not isinstance(sources, list):
        return
    for source in sources:
        if not isinstance(source, dict):
            continue
        if isinstance(source.get("path"), str) and source["path"]:
            source["path"] = _relative_to(folder, source["path"])
        url = source.get("url")
        if isinstance(url, str) and url.startswith("sqlite:///"):
            database, sep, query = url[len("sqlite:///"):].partition("?")
            if database and database != ":memory:" and not database.startswith("file:"):
                source["url"] = "sqlite:///" + _relative_to(folder, database) + sep + query


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against configs/default.yaml)"
        value = err.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float | dt.date) and len(repr(value)) < 60 else ""
        problems.append(f"{origin}: {loc}: {msg}{shown}")
    if len(problems) == 1:
        return problems[0]
    return "\n".join([f"{origin}: invalid configuration ({len(problems)} problems)", *(f"  {p}" for p in problems)])


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = _yaml_load(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return dict(data)


def load_settings(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Settings:
    """Load settings from an optional YAML file, then apply ``key.path=value`` overrides.

    Keys missing from the file take the defaults (the values documented in
    ``configs/default.yaml``); a section given in the file is merged key by key into the
    defaults, except ``catalog`` and ``ingest.sources`` which replace them as a whole.
    Relative input locations in the file (``ingest.sources[].path``, ``sqlite:///`` file URLs and
    ``cutoffs.table``) start at the file's folder; every other relative path starts at the working
    directory.
    Overrides are applied after the file and are parsed as YAML values (``[7, 30]``, ``true``);
    list items are reached by index or by name (``ingest.sources.0.path``,
    ``ingest.sources.sfa.path``), and an overridden path starts at the working directory.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, a key repeats, or a key is unknown, mistyped or out of
        range; the message names the file (or ``--set``) and the key path.
    """
    origin = str(path) if path is not None else "defaults"
    data = read_yaml_mapping(Path(path)) if path is not None else {}
    if path is not None:
        _sources_relative_to(data, Path(path).parent)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, origin)) from None
    if not overrides:
        return settings
    merged = settings.model_dump(mode="python")
    for text in overrides:
        key, value = _parse_override(text)
        _set_path(merged, key, value)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, f"{origin} + --set {' '.join(overrides)}")) from None
