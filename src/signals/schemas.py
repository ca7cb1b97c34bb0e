"""Column names and the data contracts between stages.

The canonical **events** table (one row per contact) is the only input every stage needs:

=============  ==========================  =================================================
column         dtype                       meaning
=============  ==========================  =================================================
customer_id    category (of str)           the CRM's account / customer id
ts             datetime64[ns, UTC]         when the contact happened
touchpoint     category (catalog names)    canonical type from the catalog
value          float64 (0 if none)         amount, for purchases and renewals
source         category (of str)           the system it came from
=============  ==========================  =================================================

**Cutoffs** are ``(customer_id, cutoff)`` rows; a cutoff is an instant (UTC, whole seconds).
Features at a cutoff only see events with ``ts < cutoff``.

The ``check_*`` functions validate at the edges (ingestion, jobs, public entry points) and return
a normalised copy; code inside the package trusts the contracts afterwards. A broken contract is a
:class:`~signals.errors.DataError` that says what to change.

Two rules hold at every entry point (notebook, CLI, jobs):

* **Instants carry a time zone.** A naive timestamp (no zone, no offset) is refused wherever it
  would have to be guessed: events, cutoffs, customers' dates. It is accepted only where a
  ``timezone`` is given with it (:func:`to_utc` with ``timezone=``,
  :func:`signals.cutoffs.as_of_instant`, :func:`signals.cutoffs.cutoff_grid`,
  :func:`signals.ingest.ingest`), where it is a wall-clock time in that zone. Numbers are never
  read as instants.
* **Customer ids are text**, normalised by one function, :func:`normalize_ids`: ``"00042"`` stays
  ``"00042"``, surrounding spaces go, an integer (or an integral float such as ``1.0``, the result
  of a join that met a missing value) becomes its digits ``"1"``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from signals.errors import DataError

__all__ = [
    "CUSTOMER_ID",
    "CUTOFF",
    "EVENT_COLUMNS",
    "MAX_ABS_VALUE",
    "SOURCE",
    "TOUCHPOINT",
    "TS",
    "VALUE",
    "DataWarning",
    "check_cutoffs",
    "check_events",
    "check_ids_match",
    "normalize_ids",
    "to_utc",
]

CUSTOMER_ID = "customer_id"
TS = "ts"
TOUCHPOINT = "touchpoint"
VALUE = "value"
SOURCE = "source"
CUTOFF = "cutoff"
EVENT_COLUMNS = (CUSTOMER_ID, TS, TOUCHPOINT, VALUE, SOURCE)
CUTOFF_COLUMNS = (CUSTOMER_ID, CUTOFF)

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
#: The largest amount an event may carry (10^15 in any currency): sums of millions of such
#: amounts stay exact enough and finite, where ``1.8e308`` would turn every sum into ``inf``.
MAX_ABS_VALUE = 1e15

# An explicit UTC offset (or Z) after a time of day: "...T10:00:00+09:00", "... 10:00Z", "...T1000-0500".
# A date alone ("2024-01-05") never matches, so its "-05" is not mistaken for an offset.
AWARE_TEXT_RE = r"[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?\s?(?:Z|[+-]\d{2}(?::?\d{2})?)$"

_NAIVE_HINT = ("give them a time zone (e.g. .dt.tz_localize('Asia/Tokyo'), or an ISO 8601 offset), "
               "or build them with a timezone argument")


# --------------------------------------------------------------------------------------------
# customer ids


def _id_text(value) -> str | None:
    """One raw id -> its text (None when missing or blank)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        if np.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    return text or None


def _normalize_plain(values: pd.Series) -> pd.Series:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return values.astype("str").astype("str")
    if pd.api.types.is_integer_dtype(dtype):
        out = values.astype("str")
        return out.mask(values.isna()) if values.isna().any() else out
    if pd.api.types.is_float_dtype(dtype):
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(v)
        integral = finite & (v == np.round(v)) & (np.abs(v) < 2**63)
        out = np.full(len(v), None, dtype=object)
        if integral.any():
            out[integral] = v[integral].astype(np.int64).astype(str)
        other = ~integral & ~np.isnan(v)
        if other.any():
            out[other] = [repr(float(x)) for x in v[other]]
        return pd.Series(out, index=values.index, dtype="str")
    if pd.api.types.is_string_dtype(dtype) and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = values.astype("str").str.strip()
        return text.mask(text == "")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # mixed objects: decide once per distinct value
    mapped = np.array([_id_text(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype="str")


def normalize_ids(values: pd.Series | Iterable) -> pd.Series:
    """Customer ids as text, the same way at every entry point (ingest, events, cutoffs).

    Text is stripped of surrounding spaces and keeps everything else (``"00042"`` stays
    ``"00042"``; ``"1.0"`` written as text stays ``"1.0"``). Integers become their digits; floats
    that hold whole numbers (a column of integer ids that met a missing value in a join) become
    the integer's digits (``1.0`` -> ``"1"``); other floats their shortest repr. Missing and blank
    values become missing (callers decide whether that is allowed). A categorical keeps its
    codes, with its categories normalised (and merged if two of them become one id).

    >>> normalize_ids(pd.Series([" 00042", 7, 1.0, None, "1.0"], dtype=object)).tolist()
    ['00042', '7', '1', nan, '1.0']
    >>> normalize_ids(pd.Series([1.0, 2.0, np.nan])).tolist()
    ['1', '2', nan]
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = series.cat.categories
        if pd.api.types.infer_dtype(cats, skipna=True) in ("string", "empty") and not (
            len(cats) and ((cats.str.strip() != cats).any() or (cats == "").any())
        ):
            return series  # already normalised text categories: nothing to copy (the common case)
        text = _normalize_plain(pd.Series(cats))
        codes = series.cat.codes.to_numpy()
        new_codes, uniques = pd.factorize(text, use_na_sentinel=True)
        recode = np.append(new_codes, -1)
        out = pd.Categorical.from_codes(recode[codes], categories=pd.Index(uniques, dtype="str"))
        return pd.Series(out, index=series.index, name=series.name)
    return _normalize_plain(series).rename(series.name)


# --------------------------------------------------------------------------------------------
# instants


def to_utc(values: pd.Series | pd.DatetimeIndex | Iterable, *, what: str = "timestamps",
           timezone: str | None = None) -> pd.Series:
    """Convert instants to ``datetime64[ns, UTC]``; the one rule for instants from user input.

    Time-zone aware values (datetimes with a zone, text with an offset or ``Z``) are converted to
    UTC. Naive values are wall-clock times in ``timezone`` when it is given, and refused
    otherwise: guessing UTC silently shifts them by the business time zone's offset.

    Raises
    ------
    DataError
        Naive values without ``timezone``, numbers (epoch seconds and nanoseconds look alike),
        unparseable text, or a wall-clock time that does not exist or happened twice in ``timezone``.

    >>> to_utc(pd.Series(["2025-01-01T09:00:00+09:00"]), what="x").tolist()
    [Timestamp('2025-01-01 00:00:00+0000', tz='UTC')]
    >>> to_utc(pd.Series(["2025-01-01 09:00"]), what="x", timezone="Asia/Tokyo").tolist()
    [Timestamp('2025-01-01 00:00:00+0000', tz='UTC')]
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(dtype):
        return _localize(series, what, timezone)
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        name = what.rsplit(".", 1)[-1]
        raise DataError(f"{name} must be a timestamp, got {dtype} ({what}: numbers are not read as instants; "
                        "convert them, e.g. pd.to_datetime(x, unit='s', utc=True))")
    present = series.notna()
    if not present.any():
        return pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    text = series[present].astype("str")
    aware = text.str.contains(AWARE_TEXT_RE, regex=True)
    if isinstance(series.iloc[np.flatnonzero(present.to_numpy())[0]], dt.datetime):
        aware = pd.Series([getattr(v, "tzinfo", None) is not None for v in series[present]], index=text.index)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    try:
        if aware.any():
            idx = aware[aware].index
            out[idx] = pd.to_datetime(series[idx], utc=True, format="mixed").astype("datetime64[ns, UTC]")
        idx = aware[~aware].index
        if len(idx):
            out[idx] = _localize(pd.to_datetime(series[idx], format="mixed"), what, timezone)
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{what}: cannot parse as timestamps ({exc})") from None
    return out


def _localize(naive: pd.Series, what: str, timezone: str | None) -> pd.Series:
    if timezone is None:
        if naive.notna().any():
            example = naive.dropna().iloc[0]
            raise DataError(f"{what} has no time zone (e.g. {example}): {_NAIVE_HINT}")
        return naive.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    try:
        local = naive.dt.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
    except (ValueError, TypeError) as exc:  # pytz-style AmbiguousTimeError / NonExistentTimeError
        raise DataError(f"{what}: a wall-clock time does not name one instant in {timezone} (DST): {exc}; "
                        "give it a UTC offset") from None
    return local.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


# --------------------------------------------------------------------------------------------
# contracts


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{what} is missing column(s) {missing}; it has {list(df.columns)}")


def _as_category(ids: pd.Series) -> pd.Series:
    if isinstance(ids.dtype, pd.CategoricalDtype):
        return ids
    return ids.astype("category")


def check_events(events: pd.DataFrame, touchpoints: Iterable[str] | None = None) -> pd.DataFrame:
    """Validate and normalise a canonical events table.

    Returns a copy with the canonical dtypes (``source`` and ``value`` are added when absent, with
    ``"unknown"`` and 0). ``touchpoint`` becomes a categorical whose categories are ``touchpoints``
    (the catalog order) when given. Customer ids go through :func:`normalize_ids`; timestamps
    through :func:`to_utc` (naive ones are refused).

    Raises
    ------
    DataError
        A required column is missing, a customer id or timestamp is missing or naive, a value is
        negative, not finite or above :data:`MAX_ABS_VALUE`, or a touchpoint is not in
        ``touchpoints``.
    """
    _require_columns(events, (CUSTOMER_ID, TS, TOUCHPOINT), "events")
    out = pd.DataFrame(index=pd.RangeIndex(len(events)))
    cid = normalize_ids(events[CUSTOMER_ID].reset_index(drop=True))
    if cid.isna().any():
        raise DataError(f"events: {int(cid.isna().sum())} row(s) have no customer_id")
    out[CUSTOMER_ID] = _as_category(cid)
    ts = to_utc(events[TS].reset_index(drop=True), what="events.ts")
    if ts.isna().any():
        raise DataError(f"events: {int(ts.isna().sum())} row(s) have no timestamp")
    out[TS] = ts
    tp = events[TOUCHPOINT].reset_index(drop=True)
    if touchpoints is not None:
        allowed = list(touchpoints)
        if isinstance(tp.dtype, pd.CategoricalDtype):
            present = tp.cat.categories[np.unique(tp.cat.codes[tp.cat.codes >= 0])].astype(str)
        else:
            present = pd.Index(tp.dropna().astype(str).unique())
        unknown = sorted(set(present) - set(allowed))
        if unknown or tp.isna().any():
            raise DataError(
                f"events: touchpoint(s) not in the catalog: {unknown or ['<null>']}; catalog: {allowed}"
            )
        if isinstance(tp.dtype, pd.CategoricalDtype) and list(tp.cat.categories) == allowed:
            out[TOUCHPOINT] = tp
        else:
            out[TOUCHPOINT] = pd.Categorical(tp.astype(str), categories=allowed)
    else:
        out[TOUCHPOINT] = tp if isinstance(tp.dtype, pd.CategoricalDtype) else tp.astype(str).astype("category")
    if VALUE in events.columns:
        try:
            value = pd.to_numeric(events[VALUE].reset_index(drop=True), errors="raise").astype("float64").fillna(0.0)
        except (ValueError, TypeError) as exc:
            raise DataError(f"events.value: not numbers ({exc})") from None
        v = value.to_numpy()
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            raise DataError(f"events: {int(bad.sum())} row(s) have a negative or non-finite value "
                            "(refunds are positive amounts of a type with role refund)")
        huge = v > MAX_ABS_VALUE
        if huge.any():
            raise DataError(f"events: {int(huge.sum())} row(s) have a value above {MAX_ABS_VALUE:g} "
                            f"(e.g. {v[huge][0]:g}): not a real amount")
        out[VALUE] = value
    else:
        out[VALUE] = 0.0
    if SOURCE in events.columns:
        source = events[SOURCE].reset_index(drop=True)
        out[SOURCE] = source if isinstance(source.dtype, pd.CategoricalDtype) else source.astype(str).astype("category")
    else:
        out[SOURCE] = pd.Categorical(["unknown"] * len(events))
    return out


def _distinct_text(values: pd.Series) -> pd.Index:
    """The distinct values of a text column (Arrow's hash unique when the column is Arrow-backed)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) > 0
        return pd.Index(values.cat.categories[used]).astype("str")
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pd.Index(pc.unique(pa.array(values.array)).to_pandas(), dtype="str")
    except (TypeError, ValueError, pa.ArrowException):  # not text Arrow can take as it is
        return pd.Index(pd.unique(values.astype("str")), dtype="str")


class DataWarning(UserWarning):
    """Data that are probably wrong but may be right (e.g. many cutoff ids without any event)."""


def check_ids_match(event_ids: Iterable[str], cutoff_ids: pd.Series, *, max_fraction: float = 0.2,
                    action: str = "error") -> float:
    """Check that the cutoffs' customer ids are ids of the events; returns the unmatched share.

    A cutoff id with no event at all gets all-zero features; a few are normal (accounts never
    touched), many mean the ids do not match (``"1.0"`` from a float join against ``"1"``, padded
    against unpadded ids). Above ``max_fraction`` of the distinct cutoff ids: a
    :class:`~signals.errors.DataError` (``action="error"``) or a :class:`DataWarning` (``"warn"``).
    With fewer than 20 distinct cutoff ids a share says little, so there only a complete mismatch
    (no cutoff id among non-empty events) counts.

    >>> check_ids_match(["1", "2"], pd.Series(["1", "2"]))
    0.0
    >>> check_ids_match(["1", "2"], pd.Series(["1.0", "2.0"]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    signals.errors.DataError: 100% of cutoff customer ids (2 of 2) have no events: check that the ids match ...
    """
    distinct = _distinct_text(cutoff_ids)
    if not len(distinct):
        return 0.0
    known = pd.Index(event_ids).astype("str")
    if not known.is_unique:
        known = known.unique()
    missing = distinct[known.get_indexer(distinct) < 0]  # get_indexer: isin is slow on Arrow strings
    share = len(missing) / len(distinct)
    small = len(distinct) < 20 and not (share == 1.0 and len(known))
    if share > max_fraction and not small:
        example_event = f" vs event ids like {list(known[:3])}" if len(known) else " (the events are empty)"
        message = (f"{share:.0%} of cutoff customer ids ({len(missing):,} of {len(distinct):,}) have no events: "
                   f"check that the ids match (e.g. '1.0' vs '1'; cutoff ids like {list(missing[:3])}"
                   f"{example_event}); if customers without any touch are expected, raise "
                   f"features.max_unmatched_id_fraction (now {max_fraction:g}) or set features.unmatched_ids: warn")
        if action == "warn":
            import warnings

            warnings.warn(message, DataWarning, stacklevel=3)
        else:
            raise DataError(message)
    return share


def check_cutoffs(cutoffs: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise a cutoffs table of ``(customer_id, cutoff)`` rows.

    Cutoffs must be time-zone aware instants (naive ones are refused: build them with
    :func:`signals.cutoffs.cutoff_grid` / :func:`signals.cutoffs.as_of_instant`, or give them a
    zone) and whole seconds: the point-in-time comparisons are exact at that resolution. They are
    converted to UTC. Customer ids go through :func:`normalize_ids`. Extra columns (e.g. labels
    travelling with their cutoffs) are kept.

    Raises
    ------
    DataError
        A column is missing, an id or cutoff is missing, a cutoff is naive, a number or not whole
        seconds, or a ``(customer_id, cutoff)`` pair repeats.
    """
    _require_columns(cutoffs, CUTOFF_COLUMNS, "cutoffs")
    out = cutoffs.reset_index(drop=True).copy()
    ids = normalize_ids(out[CUSTOMER_ID])
    if ids.isna().any():
        raise DataError(f"cutoffs: {int(ids.isna().sum())} row(s) have no customer_id")
    out[CUSTOMER_ID] = ids
    try:
        out[CUTOFF] = to_utc(out[CUTOFF], what="cutoffs.cutoff")
    except DataError as exc:
        if "has no time zone" in str(exc):
            raise DataError("cutoffs are naive timestamps (no time zone): give cutoffs a time zone, "
                            "or build them with `cutoff_grid` / `as_of_instant`") from None
        raise
    if out[CUTOFF].isna().any():
        raise DataError(f"cutoffs: {int(out[CUTOFF].isna().sum())} row(s) have no cutoff")
    ns = out[CUTOFF].array.asi8
    if (ns % NS_PER_SECOND).any():
        raise DataError("cutoffs must be whole seconds (floor them, e.g. cutoff.dt.floor('s'))")
    if out.duplicated([CUSTOMER_ID, CUTOFF]).any():
        raise DataError("cutoffs: duplicate (customer_id, cutoff) rows")
    return out


#: The ``customer_signals`` rows batch scoring writes to the CRM (one row per customer, as-of
#: instant, task and model version): ``(name, kind, nullable)`` with kind one of ``text``,
#: (``segment`` and ``journey_stage`` come from :func:`signals.views.crm_columns`),
#: ``float``, ``int``, ``timestamp``. ``(as_of, task, model_name, model_version, customer_id)``
#: is the key: writing the same batch again replaces it, earlier as-of instants stay as history.
SIGNAL_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("customer_id", "text", False),
    ("as_of", "timestamp", False),
    ("task", "text", False),
    ("model_name", "text", False),
    ("model_version", "text", False),
    ("run_id", "text", True),
    ("score", "float", False),
    ("rank", "int", False),
    ("band", "text", False),
    ("temperature", "float", True),
    ("temperature_prior", "float", True),
    ("temperature_change_14d", "float", True),
    ("temperature_change_30d", "float", True),
    ("alarm", "text", True),
    ("reason_1", "text", True),
    ("reason_2", "text", True),
    ("reason_3", "text", True),
    ("segment", "text", True),
    ("journey_stage", "text", True),
    ("scored_at", "timestamp", False),
)
SIGNAL_KEY: tuple[str, ...] = ("as_of", "task", "model_name", "model_version", "customer_id")
#: The columns that are the same for every row of one batch.
SIGNAL_BATCH_KEY: tuple[str, ...] = ("as_of", "task", "model_name", "model_version")
