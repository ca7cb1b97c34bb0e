"""Sources -> one canonical event table, plus the rows that could not be used and why.

This is the article's first hard part (顧客接点温度, seed 002): the touchpoints of one customer live in
many systems (SFA exports, marketing automation, a support database), each with its own column
names, activity names ("Webinar attended", "資料請求") and clock. Ingestion maps every source onto
the canonical events contract (:mod:`signals.schemas`), validates it row by row, and removes the
rows that say the same thing twice. Nothing is lost silently: every raw row ends up accepted, in
the rejects (with a reason) or in the duplicates (with the row it repeats).

Three steps, each usable on its own:

* :func:`signals.io.sources.read_source` reads one source's raw rows (CSV as text, Parquet as stored,
  SQL through SQLAlchemy, read-only). It is the only step that does I/O.
* :func:`map_source` is a pure function ``raw rows -> (accepted, rejects)``: column mapping, activity
  names, timestamps, values. Every raw row ends up in exactly one of the two outputs.
* :func:`ingest` reads and maps every source, then unifies: one table, deduplicated, sorted by
  ``(customer_id, ts, touchpoint)``, with a report that always satisfies
  ``read = accepted + rejected + duplicates`` per source and in total.

Row checks (the first failing one wins, in this order)
------------------------------------------------------
============================  =========================================================================
reason                        the row is rejected when
============================  =========================================================================
``missing_customer_id``       the customer id is null or blank after stripping spaces
``placeholder_customer_id``   the id is a placeholder for "no id" (``NULL``, ``#N/A``, ``None``, ``nan``,
                              ``N/A``, ``-``, ...: ``ingest.placeholder_ids``, any letter case)
``unparseable_ts``            the timestamp is null, blank, not parseable with the source's ``ts_format``
                              nor as ISO 8601, or outside the range pandas can hold in nanoseconds
                              (1678-01-01 .. 2261-12-31)
``placeholder_ts``            the timestamp falls on a placeholder date (1899-12-30, 1900-01-01,
                              1970-01-01: ``ingest.placeholder_dates``), in UTC or in ``source.timezone``
``nonexistent_local_time``    a naive timestamp falls in the spring-forward gap of ``source.timezone``
``ambiguous_local_time``      a naive timestamp falls in the autumn overlap of ``source.timezone`` (it
                              happened twice; an export with UTC offsets removes the doubt)
``unknown_touchpoint``        the activity name is null, blank, or neither mapped in ``source.touchpoints``
                              nor already a catalog type name
``unparseable_value``         the value is not a finite decimal number (``"1,000"``, ``"abc"``, ``"inf"``)
``value_out_of_range``        the value's size is above 10^15 (:data:`signals.schemas.MAX_ABS_VALUE`;
                              ``1.8e308`` would turn every sum into ``inf``)
``negative_value``            the value is below zero and the type's role is not ``refund``
``future_ts``                 the timestamp is after ``as_of`` (``ts > as_of``)
============================  =========================================================================

Timestamps: naive values are wall-clock times in ``source.timezone``; values with an offset or ``Z``
(and tz-aware Parquet / SQL columns) are instants and are converted to UTC as they are. One text
column may mix both. A ``ts_format`` whose day and month are swapped (``%d/%m/%Y`` for
``03/25/2025``) is a configuration error, not a pile of misread dates: when some rows only parse
with day and month exchanged and every row parses that way, ingestion stops and says so. Customer
ids are text (:func:`signals.schemas.normalize_ids`: ``"00001"`` keeps its zeros). A missing value
is 0. Activity names are stripped before the lookup.

Refunds: a type whose catalog role is ``refund`` (refunds, credit notes) may carry a negative
amount; it is stored as the positive amount given back (``-500`` and ``500`` both mean 500 refunded),
and value features net it off the purchases. Pass the catalog (not just the type names) as
``touchpoints`` so ingestion knows the roles.

A mapping to a type that is not in the catalog is a **configuration error**, not a row problem: it
raises :class:`IngestError` before any row is read, naming the source and the mapping to fix (every
row of that activity would otherwise be rejected, silently hiding a typo in the config). So is a
source whose rows are mostly rejected: above ``max_reject_fraction`` (default 50%) of one source's
rows, ingestion fails with the counts by reason and a hint (a wrong encoding or delimiter usually
shows as every activity unknown), and the rejects are still returned in the error's ``result``.

Deduplication
-------------
Duplicates are rows that say the same thing: the same customer, touchpoint, time and value, and,
when the source maps an ``event_id`` column, the same event id. Distinct amounts on one day are
distinct events; so are rows with distinct event ids.

* **Within one source** a duplicate is an exact repeat: a row with the same customer, touchpoint,
  ``ts``, value and event id (when mapped) as an earlier row of that source. A source without event
  ids cannot tell two identical rows apart: map its activity id as ``event_id`` when it has one.
* **Across sources** (systems that record the same contact), events of one
  ``(customer_id, touchpoint, value)`` are taken in ``ts`` order and grouped: a group starts at an
  event and holds every later event at most ``dedupe_tolerance_seconds`` after it (0 = the same
  instant). In a group, each source's events are matched one to one, in time order, with the events
  of the sources before it in the config: a source's ``k``-th event is a duplicate when an earlier
  source already has ``k`` or more events in the group. So if the SFA logs three orders of 100 at one
  instant (with distinct event ids) and the ERP the same three, three are kept; if the ERP logs
  one of them, it is a duplicate of the SFA's first. Event ids of different systems are not
  compared. Ties keep the event of the earliest source in the config.

The value of a dropped duplicate is not added to the kept one. Duplicates are counted per source
(the source of the dropped row), are not rejects, and are listed, each with the row it duplicates
(``kept_source``, ``kept_row``, ``kept_line``), in :attr:`IngestResult.duplicates`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from signals.errors import IngestError
from signals.io.sources import lines_of, read_source
from signals.schemas import (
    AWARE_TEXT_RE,
    CUSTOMER_ID,
    EVENT_COLUMNS,
    MAX_ABS_VALUE,
    SOURCE,
    TOUCHPOINT,
    TS,
    VALUE,
    normalize_ids,
)
from signals.settings import PLACEHOLDER_DATES, PLACEHOLDER_IDS, SourceSettings, Touchpoint

__all__ = [
    "DUPLICATE_COLUMNS",
    "REASONS",
    "REJECT_COLUMNS",
    "REPORT_COLUMNS",
    "IngestError",
    "IngestResult",
    "check_reject_rates",
    "check_strict",
    "ingest",
    "map_source",
    "resolve_as_of",
]

#: Reject reason codes, in the order the checks run (the first failing check names the reason).
REASONS = (
    "missing_customer_id",
    "placeholder_customer_id",
    "unparseable_ts",
    "placeholder_ts",
    "nonexistent_local_time",
    "ambiguous_local_time",
    "unknown_touchpoint",
    "unparseable_value",
    "value_out_of_range",
    "negative_value",
    "future_ts",
)
#: Columns of the rejects table: where the row is, why it was rejected, and its mapped raw cells as
#: text (``raw``, every raw column as JSON, only with ``rejects_raw_columns=True``).
REJECT_COLUMNS = ("source", "row", "line", "reason", "detail", "customer_id", "ts", "touchpoint", "value",
                  "event_id")
#: Columns of the duplicates table: the dropped row (canonical values, UTC time) and the row it repeats.
DUPLICATE_COLUMNS = ("source", "row", "line", "kind", "customer_id", "ts", "touchpoint", "value", "event_id",
                     "kept_source", "kept_row", "kept_line", "kept_ts")
#: Count columns of the report (then one column per reason code).
REPORT_COLUMNS = ("read", "accepted", "rejected", "duplicates", "events")
TOTAL = "total"
EVENT_ID = "event_id"

_NAT = np.iinfo(np.int64).min
# pandas holds nanoseconds between 1677-09-21 and 2262-04-11; whole years inside keep local-time
# shifts and comparisons clear of the edges.
_TS_MIN = pd.Timestamp("1678-01-01")
_TS_MAX = pd.Timestamp("2262-01-01")
_AWARE_RE = AWARE_TEXT_RE
_NUMBER_RE = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"  # plain decimals: no "1,000", no "inf"

(_OK, _MISSING_ID, _PLACEHOLDER_ID, _BAD_TS, _PLACEHOLDER_TS, _NONEXISTENT, _AMBIGUOUS, _UNKNOWN_TP,
 _BAD_VALUE, _OUT_OF_RANGE, _NEGATIVE, _FUTURE) = range(12)


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest` produced.

    Attributes
    ----------
    events : DataFrame
        The canonical events (see :mod:`signals.schemas`), deduplicated, sorted by
        ``(customer_id, ts, touchpoint)``.
    rejects : DataFrame
        One row per rejected raw row (:data:`REJECT_COLUMNS`): ``source``, ``row`` (0-based row
        number in its source), ``line`` (the line in a CSV file where the row starts, the header
        being line 1; for Parquet and SQL the 1-based row number), ``reason`` (a code of
        :data:`REASONS`), ``detail`` (plain words), then the mapped raw cells as text
        (``customer_id``, ``ts``, ``touchpoint``, ``value``, ``event_id``; empty when the column is
        not mapped) and, only with ``rejects_raw_columns``, ``raw`` (every raw column as JSON).
        Ordered by source (config order) then row.
    report : DataFrame
        Indexed by source name (config order) plus a final ``"total"`` row; columns ``read``,
        ``accepted``, ``rejected``, ``duplicates`` and one count per reason code.
        ``read == accepted + rejected + duplicates`` on every row.
    as_of : Timestamp
        The UTC instant after which events were rejected as ``future_ts``.
    duplicates : DataFrame
        One row per dropped duplicate (:data:`DUPLICATE_COLUMNS`): where it was (``source``,
        ``row``, ``line``), ``kind`` (``repeated_row`` within its source or ``cross_source``), its
        canonical values, and the row it duplicates (``kept_source``, ``kept_row``, ``kept_line``,
        ``kept_ts``). Ordered by source then row.
    """

    events: pd.DataFrame
    rejects: pd.DataFrame
    report: pd.DataFrame
    as_of: pd.Timestamp
    duplicates: pd.DataFrame | None = None

    @property
    def n_rejected(self) -> int:
        return int(self.report.loc[TOTAL, "rejected"])

    @property
    def n_duplicates(self) -> int:
        return int(self.report.loc[TOTAL, "duplicates"])

    def rejected_by_reason(self, source: str = TOTAL) -> dict[str, int]:
        """Non-zero reject counts by reason code for one source (or the total), most frequent first."""
        row = self.report.loc[source, [c for c in self.report.columns if c not in REPORT_COLUMNS]]
        counts = {reason: int(n) for reason, n in row.items() if n > 0}
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def resolve_as_of(as_of: dt.datetime | pd.Timestamp | str | None, timezone: str | None = None) -> pd.Timestamp:
    """The ``as_of`` instant in UTC: ``None`` is now; a naive value is a wall-clock time in ``timezone``.

    A naive value without ``timezone`` is refused (the one rule for instants from user input, see
    :mod:`signals.schemas`): pass the business time zone (``settings.timezone``) or an offset.

    >>> resolve_as_of("2026-01-01T00:00:00", "Asia/Tokyo")
    Timestamp('2025-12-31 15:00:00+0000', tz='UTC')
    >>> resolve_as_of("2026-01-01T00:00:00+09:00")
    Timestamp('2025-12-31 15:00:00+0000', tz='UTC')
    """
    if as_of is None:
        return pd.Timestamp.now(tz="UTC").as_unit("ns")
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise IngestError(f"as_of {as_of!r} is not a timestamp (use ISO 8601, e.g. 2026-01-01T00:00:00+09:00)") from exc
    if ts is pd.NaT:
        raise IngestError("as_of must be a timestamp, got NaT")
    if ts.tzinfo is None:
        if timezone is None:
            raise IngestError(
                f"as_of {as_of} has no time zone: pass timezone= (the job uses settings.timezone) "
                "or give it an offset (e.g. 2026-01-01T00:00:00+09:00)"
            )
        try:
            ts = ts.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # pytz-style AmbiguousTimeError / NonExistentTimeError are ValueErrors
            raise IngestError(
                f"as_of {as_of} does not name one instant in {timezone} (DST); give it a UTC offset"
            ) from exc
    return ts.tz_convert("UTC").as_unit("ns")


def check_strict(result: IngestResult) -> None:
    """Raise :class:`IngestError` (carrying ``result``) when any row was rejected; the message counts by reason."""
    if result.n_rejected == 0:
        return
    lines = [f"strict ingestion: {result.n_rejected} row(s) rejected"]
    for name in result.report.index[:-1]:
        by_reason = result.rejected_by_reason(name)
        if by_reason:
            lines.append(f"  {name}: " + ", ".join(f"{reason} {n}" for reason, n in by_reason.items()))
    raise IngestError("\n".join(lines), result=result)


_HINTS = {
    "unknown_touchpoint": "the activity names match nothing in {key}touchpoints{csv}",
    "missing_customer_id": "the customer id column is empty: check {key}columns{csv}",
    "placeholder_customer_id": "the customer ids are placeholders: check {key}columns.customer_id",
    "unparseable_ts": "the timestamps do not parse: check {key}ts_format{csv}",
    "placeholder_ts": "the timestamps are placeholder dates: check {key}columns.ts",
    "future_ts": "the timestamps are after as_of: check ingest.as_of and {key}timezone",
    "unparseable_value": "the values do not parse: check {key}columns.value (plain decimals, no thousands separator)",
    "negative_value": "the values are negative: map refunds to a catalog type with role refund",
}


def check_reject_rates(result: IngestResult, sources: Sequence[SourceSettings], max_reject_fraction: float) -> None:
    """Raise :class:`IngestError` (carrying ``result``) when a source rejects more than its share of rows.

    Each source's limit is its own ``max_reject_fraction`` when set, else ``max_reject_fraction``.
    """
    lines = []
    for source in sources:
        limit = source.max_reject_fraction if source.max_reject_fraction is not None else max_reject_fraction
        row = result.report.loc[source.name]
        if row["read"] == 0 or row["rejected"] / row["read"] <= limit:
            continue
        by_reason = result.rejected_by_reason(source.name)
        top = next(iter(by_reason))
        csv = (f" (or {_key(source, 'encoding')} {source.encoding!r} / {_key(source, 'delimiter')} "
               f"{source.delimiter!r} do not fit the file)") if source.reader == "csv" else ""
        hint = _HINTS.get(top, "").format(key=f"ingest.sources[name={source.name}].", csv=csv)
        lines.append(
            f"source {source.name!r}: {row['rejected'] / row['read']:.0%} of {int(row['read']):,} rows rejected "
            f"(" + ", ".join(f"{reason} {n:,}" for reason, n in by_reason.items()) + f"), more than the "
            f"{limit:.0%} allowed (max_reject_fraction)" + (f"; {hint}" if hint else "")
        )
    if lines:
        raise IngestError("\n".join(lines), result=result)


# --------------------------------------------------------------------------------------------
# configuration checks


def _key(source: SourceSettings, field: str) -> str:
    return f"ingest.sources[name={source.name}].{field}"


def _check_subscription_types(source: SourceSettings, catalog: _Catalog) -> None:
    """The three event types of a subscriptions source exist, with the roles labels look for."""
    sub = source.subscriptions
    for kind in ("purchase", "renewal", "cancellation"):
        name = getattr(sub, kind)
        key = _key(source, f"subscriptions.{kind}")
        if name not in catalog.names:
            raise IngestError(f"source {source.name!r}: {key} is {name!r}, not a catalog type; use one of "
                              f"{catalog.names} (or add a type with role {kind} to the catalog)")
        if catalog.roles is not None and catalog.roles[name] != kind:
            raise IngestError(f"source {source.name!r}: {key} is {name!r}, whose role is {catalog.roles[name]!r}, "
                              f"not {kind!r}: the labels would not see these events; give the type role {kind} "
                              "or name another type")


def _check_mapping(source: SourceSettings, catalog: Sequence[str] | _Catalog) -> None:
    if isinstance(catalog, _Catalog):
        if source.kind == "subscriptions":
            _check_subscription_types(source, catalog)
        catalog = catalog.names
    bad = {raw: tp for raw, tp in source.touchpoints.items() if tp not in catalog}
    if bad:
        pairs = ", ".join(f"{raw!r} -> {tp!r}" for raw, tp in bad.items())
        raise IngestError(
            f"source {source.name!r}: {_key(source, 'touchpoints')} maps to type(s) not in the catalog: {pairs}. "
            f"Use one of the catalog types {list(catalog)} (or add the type to the catalog)."
        )


def _check_columns(raw: pd.DataFrame, source: SourceSettings) -> None:
    missing = {canon: col for canon, col in source.columns.items() if col not in raw.columns}
    if missing:
        mapped = ", ".join(f"{canon}: {col!r}" for canon, col in missing.items())
        hint = ""
        if source.reader == "csv" and len(raw.columns) == 1:
            header = str(raw.columns[0])
            found = [d for d in (";", "\t", "|", ",") if d in header and d != source.delimiter]
            if found:
                hint = (f" The header looks {found[0]!r}-separated: set {_key(source, 'delimiter')}: "
                        f"{found[0]!r}.")
        raise IngestError(
            f"source {source.name!r}: mapped column(s) {sorted(set(missing.values()))} not found ({mapped}). "
            f"The source has columns {[str(c) for c in raw.columns]}. "
            f"Fix {_key(source, 'columns')} (canonical -> raw column name) or the export.{hint}"
        )


@dataclass(frozen=True)
class _Catalog:
    names: list[str]
    refund: np.ndarray  # bool per type: amounts may be negative (stored as the amount given back)
    roles: dict[str, str] | None = None  # type -> role, when the catalog itself was given


def _catalog(touchpoints: Iterable[str] | Mapping[str, Touchpoint]) -> _Catalog:
    names = [str(t) for t in touchpoints]
    if not names:
        raise IngestError("the touchpoint catalog is empty")
    refund = np.zeros(len(names), dtype=bool)
    roles = None
    if isinstance(touchpoints, Mapping):
        refund = np.array([getattr(touchpoints[n], "role", None) == "refund" for n in names], dtype=bool)
        roles = {n: str(getattr(touchpoints[n], "role", "")) for n in names}
    return _Catalog(names, refund, roles)


@dataclass(frozen=True)
class _Rules:
    """The row rules that do not depend on the source: placeholders, ``as_of``, raw columns in rejects."""

    as_of: pd.Timestamp
    placeholder_ids: frozenset[str]
    placeholder_dates: tuple[dt.date, ...]
    raw_columns: bool = False

    @classmethod
    def make(cls, as_of: pd.Timestamp, placeholder_ids: Iterable[str], placeholder_dates: Iterable,
             raw_columns: bool = False) -> _Rules:
        dates = tuple(pd.Timestamp(d).date() for d in placeholder_dates)
        return cls(as_of, frozenset(str(p).strip().lower() for p in placeholder_ids), dates, raw_columns)


# --------------------------------------------------------------------------------------------
# column parsing (vectorized; every helper returns numpy arrays aligned with the raw rows)


def _as_text(col: pd.Series) -> pd.Series:
    """Stripped text with missing and blank values as NA (``str`` dtype, positional index)."""
    col = col.reset_index(drop=True)
    if pd.api.types.is_float_dtype(col.dtype):
        finite = col.dropna()
        if len(finite) and bool(np.all(np.isfinite(finite)) and np.all(finite == np.round(finite))
                                and np.all(np.abs(finite) < 2**53)):
            col = col.astype("Int64")  # 123.0 -> "123": integer ids stored as floats because of nulls
    text = col.astype("str").str.strip()
    return text.mask(text == "")


def _arrow(text: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(text.array) if text.array.dtype.storage == "pyarrow" else pa.array(text.to_numpy(dtype=object), pa.large_string())


def _regex(text: pd.Series, pattern: str) -> np.ndarray:
    """Boolean mask of non-null values matching ``pattern`` (RE2 through pyarrow: fast on millions of rows)."""
    return np.asarray(pc.match_substring_regex(_arrow(text), pattern).fill_null(False), dtype=bool)


def _naive_to_ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Naive datetimes of any unit -> (int64 ns with _NAT, in-range mask)."""
    ok = (values.notna() & (values >= _TS_MIN) & (values < _TS_MAX)).to_numpy()
    ns = np.full(len(values), _NAT, dtype=np.int64)
    if ok.any():
        ns[ok] = values[ok].astype("datetime64[ns]").to_numpy().view(np.int64)
    return ns, ok


def _parse_text(values: pd.Series, fmt: str | None, *, utc: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parse text with ``fmt`` (or ISO 8601); ``utc=True`` for aware text. Returns (ns, ok)."""
    parsed = pd.to_datetime(values, format=fmt or "ISO8601", errors="coerce", utc=utc)
    if utc:
        parsed = parsed.dt.tz_convert(None)
    return _naive_to_ns(parsed)


def _parse_naive_text(values: pd.Series, fmt: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse text believed naive. Returns (ns, ok, aware); ``aware`` marks values that had an offset after all."""
    aware = np.zeros(len(values), dtype=bool)
    try:
        ns, ok = _parse_text(values, fmt, utc=False)
        return ns, ok, aware
    except ValueError:
        pass  # pandas found offsets the pattern did not recognise: sort the distinct values one by one
    codes, uniques = pd.factorize(values)
    unique_aware = np.zeros(len(uniques), dtype=bool)
    for i, text in enumerate(uniques):
        with contextlib.suppress(ValueError, TypeError):  # unparseable: stays naive, fails below
            unique_aware[i] = pd.to_datetime(text, format=fmt or "ISO8601").tzinfo is not None
    aware = np.where(codes >= 0, unique_aware[codes], False)
    ns = np.full(len(values), _NAT, dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    for mask, is_utc in ((~aware, False), (aware, True)):
        if mask.any():
            ns[mask], ok[mask] = _parse_text(values[mask], fmt, utc=is_utc)
    return ns, ok, aware


def _has_tz_directive(fmt: str) -> bool:
    return "%z" in fmt or "%Z" in fmt


def _swapped(fmt: str) -> str | None:
    """``fmt`` with day and month exchanged (None when it does not hold both)."""
    if "%d" not in fmt or "%m" not in fmt:
        return None
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _check_day_month(text: pd.Series, fmt: str, ok: np.ndarray, tried: np.ndarray, source: SourceSettings) -> None:
    """Fail when ``fmt`` reads day and month the wrong way round.

    Evidence: some rows fail with ``fmt`` but parse with day and month exchanged, and every row
    that parses with ``fmt`` also parses the other way (true when the data are in the swapped
    order; false as soon as one real day above 12 is present).
    """
    swapped = _swapped(fmt)
    failed = np.flatnonzero(tried & ~ok)
    if swapped is None or not len(failed):
        return
    _, only_swapped = _parse_text(text.iloc[failed], swapped, utc=False)
    if not only_swapped.any():
        return
    parsed = np.flatnonzero(tried & ok)
    if len(parsed):
        _, both = _parse_text(text.iloc[parsed], swapped, utc=False)
        if not both.all():
            return
    example = text.iloc[failed[np.flatnonzero(only_swapped)[0]]]
    raise IngestError(
        f"source {source.name!r}: {_key(source, 'ts_format')} {fmt!r} looks day/month swapped: "
        f"{int(only_swapped.sum()):,} of {int(tried.sum()):,} timestamps only parse as {swapped!r} "
        f"(e.g. {example!r}), and every other one parses that way too (so those up to the 12th would be "
        f"misread silently). Set ts_format: {swapped!r}"
    )


def _parse_ts(col: pd.Series, source: SourceSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps -> (UTC ns with _NAT, status: _OK / _BAD_TS / _NONEXISTENT / _AMBIGUOUS, wall-clock ns).

    The wall-clock ns are the times as written (naive values before localisation; aware values
    in UTC); the placeholder-date check uses them.
    """
    n = len(col)
    ns = np.full(n, _NAT, dtype=np.int64)
    naive = np.zeros(n, dtype=bool)  # values that are wall-clock times in source.timezone
    ok = np.zeros(n, dtype=bool)
    col = col.reset_index(drop=True)
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        ns, ok = _naive_to_ns(col.dt.tz_convert(None))
    elif pd.api.types.is_datetime64_dtype(col.dtype):
        ns, ok = _naive_to_ns(col)
        naive = ok.copy()
    else:
        text = _as_text(col)
        todo = text.notna().to_numpy(copy=True)
        aware = _regex(text, _AWARE_RE)
        fmt = source.ts_format
        if fmt and _has_tz_directive(fmt):
            idx = np.flatnonzero(todo)
            ns[idx], ok[idx] = _parse_text(text.iloc[idx], fmt, utc=True)
        elif fmt:
            tried = todo & ~aware
            idx = np.flatnonzero(tried)
            ns[idx], ok[idx], _ = _parse_naive_text(text.iloc[idx], fmt)
            naive[idx] = ok[idx]
            _check_day_month(text, fmt, ok, tried, source)
        todo &= ~ok
        # ISO 8601: the fallback for every source (and the only format when ts_format is null)
        idx = np.flatnonzero(todo & ~aware)
        if len(idx):
            sub_ns, sub_ok, sub_aware = _parse_naive_text(text.iloc[idx], None)
            ns[idx], ok[idx] = sub_ns, sub_ok
            naive[idx] = sub_ok & ~sub_aware
        idx = np.flatnonzero(todo & aware)
        if len(idx):
            ns[idx], ok[idx] = _parse_text(text.iloc[idx], None, utc=True)
    status = np.where(ok, _OK, _BAD_TS).astype(np.int8)
    wall = ns.copy()
    if naive.any() and source.timezone != "UTC":
        idx = np.flatnonzero(naive)
        utc_ns, local_status = _localize(ns[idx], source.timezone)
        ns[idx] = utc_ns
        status[idx] = local_status
    return ns, status, wall


def _placeholder_dates(utc_ns: np.ndarray, wall_ns: np.ndarray, parsed: np.ndarray,
                       dates: Sequence[dt.date]) -> np.ndarray:
    """Rows whose time falls on a placeholder date, as written or in UTC."""
    out = np.zeros(len(utc_ns), dtype=bool)
    if not dates:
        return out
    last = max(pd.Timestamp(d) for d in dates).value + 2 * 86_400 * 10**9
    early = np.flatnonzero(parsed & ((wall_ns < last) | (utc_ns < last)))  # placeholders are old dates: few rows
    for d in dates:
        lo = pd.Timestamp(d).value
        hi = lo + 86_400 * 10**9
        for stamps in (wall_ns[early], utc_ns[early]):
            out[early] |= (stamps >= lo) & (stamps < hi)
    return out


def _localize(wall_ns: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock ns in ``timezone`` -> (UTC ns, status) with DST gaps and overlaps flagged."""
    wall = pd.Series(wall_ns.view("datetime64[ns]"))
    local = wall.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    status = np.zeros(len(wall_ns), dtype=np.int8)
    out = local.dt.tz_convert(None).to_numpy().view(np.int64).copy()
    bad = local.isna().to_numpy()
    if bad.any():
        sub = wall[bad]
        # resolving every overlap as summer time leaves NaT only where the wall time does not exist
        probe = sub.dt.tz_localize(timezone, ambiguous=np.ones(len(sub), dtype=bool), nonexistent="NaT")
        status[bad] = np.where(probe.isna().to_numpy(), _NONEXISTENT, _AMBIGUOUS)
        out[bad] = _NAT
    return out, status


def _parse_value(col: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Values -> (float64, status: _OK / _BAD_VALUE / _OUT_OF_RANGE). Missing is 0; the sign is checked later."""
    status = np.zeros(n, dtype=np.int8)
    if col is None:
        return np.zeros(n), status
    col = col.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.astype("float64").to_numpy(copy=True)
        missing = np.isnan(values)
        bad = np.isinf(values)
    else:
        text = _as_text(col)
        missing = text.isna().to_numpy()
        number = _regex(text, _NUMBER_RE)
        values = np.full(n, np.nan)
        if number.any():
            try:
                values[number] = np.asarray(pc.cast(_arrow(text[number]), pa.float64()), dtype=np.float64)
            except pa.ArrowInvalid:  # not expected for strings the pattern accepts; stay safe anyway
                values[number] = pd.to_numeric(text[number], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~missing & (~number | ~np.isfinite(values))  # "1e999" overflows to inf: not a usable amount
    values[missing] = 0.0
    values += 0.0  # "-0" -> 0.0
    status[bad] = _BAD_VALUE
    with np.errstate(invalid="ignore"):
        status[~bad & (np.abs(values) > MAX_ABS_VALUE)] = _OUT_OF_RANGE
    values[bad] = np.nan
    return values, status


def _touchpoint_codes(col: pd.Series, source: SourceSettings, catalog: Sequence[str]) -> np.ndarray:
    """Activity names -> catalog codes (-1 when unknown), via the distinct names only."""
    text = _as_text(col)
    codes, uniques = pd.factorize(text)
    mapping = {str(raw).strip(): tp for raw, tp in source.touchpoints.items()}
    position = {name: i for i, name in enumerate(catalog)}
    lookup = np.array([position.get(mapping.get(name, name), -1) for name in uniques] + [-1], dtype=np.int32)
    return lookup[codes]  # code -1 (null) takes the trailing -1


# --------------------------------------------------------------------------------------------
# one source


def _shown(col: pd.Series | None, rows: np.ndarray) -> pd.Series:
    """``'raw text'`` of ``col`` at positions ``rows`` (80 characters at most), ``""`` where missing."""
    if col is None:
        return pd.Series([""] * len(rows), dtype="str")
    sub = _as_text(col.iloc[rows])
    return ("'" + sub.str.slice(0, 80) + "'").fillna("").astype("str")


def _details(reason: np.ndarray, idx: np.ndarray, *, raw_id: pd.Series, raw_ts: pd.Series, raw_tp: pd.Series,
             raw_value: pd.Series | None, ts_ns: np.ndarray,
             source: SourceSettings, as_of: pd.Timestamp) -> pd.Series:
    """Plain-words detail for the rejected rows ``idx`` (vectorized per reason)."""
    out = pd.Series([""] * len(idx), dtype="str")
    reasons = reason[idx]
    fmt = f"ts_format {source.ts_format!r} nor as ISO 8601" if source.ts_format else "ISO 8601"
    tz = source.timezone
    for code in np.unique(reasons):
        where = np.flatnonzero(reasons == code)
        rows = idx[where]
        if code == _MISSING_ID:
            text = pd.Series(["customer_id is missing or blank"] * len(rows), dtype="str")
        elif code == _PLACEHOLDER_ID:
            text = "customer_id " + _shown(raw_id, rows) + " is a placeholder for a missing id (ingest.placeholder_ids)"
        elif code == _BAD_TS:
            shown = _shown(raw_ts, rows)
            text = ("ts " + shown + f" is not parseable with {fmt}, or is outside 1678-2261").where(
                shown != "", "ts is missing or blank"
            )
        elif code == _PLACEHOLDER_TS:
            text = "ts " + _shown(raw_ts, rows) + " falls on a placeholder date for a missing date (ingest.placeholder_dates)"
        elif code == _NONEXISTENT:
            text = "local time " + _shown(raw_ts, rows) + f" does not exist in {tz} (clocks jump forward: DST gap)"
        elif code == _AMBIGUOUS:
            text = ("local time " + _shown(raw_ts, rows)
                    + f" happened twice in {tz} (clocks go back: DST overlap); export it with a UTC offset")
        elif code == _UNKNOWN_TP:
            shown = _shown(raw_tp, rows)
            text = ("activity " + shown + f" is not mapped in {_key(source, 'touchpoints')}").where(
                shown != "", "activity name is missing or blank"
            )
        elif code == _BAD_VALUE:
            text = "value " + _shown(raw_value, rows) + " is not a finite decimal number"
        elif code == _OUT_OF_RANGE:
            text = "value " + _shown(raw_value, rows) + f" is larger than {MAX_ABS_VALUE:g}: not a real amount"
        elif code == _NEGATIVE:
            text = ("value " + _shown(raw_value, rows)
                    + " is negative (a refund or credit note? map it to a catalog type with role refund)")
        else:  # _FUTURE
            stamps = pd.Series(ts_ns[rows].view("datetime64[ns]")).dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("str")
            text = "ts " + stamps + f" is after as_of {as_of.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        out.iloc[where] = text.to_numpy()
    return out


def _raw_json(raw: pd.DataFrame, idx: np.ndarray) -> list[str]:
    if len(idx) == 0:
        return []
    lines = raw.iloc[idx].to_json(orient="records", lines=True, force_ascii=False, date_format="iso",
                                  default_handler=str)
    return lines.split("\n")[: len(idx)]


def _cells(raw: pd.DataFrame, column: str | None, idx: np.ndarray) -> pd.Series:
    """The raw cells of ``column`` at ``idx`` as text ("" when missing or when the column is not mapped)."""
    if column is None or len(idx) == 0:
        return pd.Series([""] * len(idx), dtype="str")
    cells = raw[column].iloc[idx].reset_index(drop=True)
    missing = cells.isna().to_numpy()
    if isinstance(cells.dtype, pd.DatetimeTZDtype):  # typed instants: ISO 8601 in UTC (astype(str) is slow)
        utc = cells.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        text = pd.Series(np.char.add(np.datetime_as_string(utc, unit="auto"), "Z"), dtype="str")
    elif pd.api.types.is_datetime64_dtype(cells.dtype):
        text = pd.Series(np.datetime_as_string(cells.to_numpy(dtype="datetime64[ns]"), unit="auto"), dtype="str")
    else:
        text = cells.astype("str")
    return text.mask(missing, "") if missing.any() else text


def _rejects_frame(raw: pd.DataFrame, source: SourceSettings, idx: np.ndarray, reason: np.ndarray,
                   detail: pd.Series, raw_columns: bool) -> pd.DataFrame:
    cols = source.columns
    frame = {
        "source": pd.Series([source.name] * len(idx), dtype="str"),
        "row": idx.astype(np.int64),
        "line": lines_of(raw, source)(idx).astype(np.int64),
        "reason": pd.Series(np.asarray(REASONS, dtype=object)[reason[idx] - 1], dtype="str"),
        "detail": detail,
    }
    for canon in ("customer_id", "ts", "touchpoint", "value", "event_id"):
        frame[canon] = _cells(raw, cols.get(canon), idx)
    if raw_columns:
        frame["raw"] = pd.Series(_raw_json(raw, idx), dtype="str")
    return pd.DataFrame(frame)


def _used_only(cat: pd.Categorical) -> pd.Categorical:
    """``cat`` without the categories no row uses (a bincount, much faster than ``remove_unused_categories``)."""
    codes = cat.codes
    used = np.bincount(codes[codes >= 0], minlength=len(cat.categories)) > 0
    if used.all():
        return cat
    remap = (np.cumsum(used) - 1).astype(codes.dtype)
    new_codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1).astype(codes.dtype)
    return pd.Categorical.from_codes(new_codes, categories=cat.categories[used])


def _map(raw: pd.DataFrame, source: SourceSettings, catalog: _Catalog, rules: _Rules):
    """The vectorized core of :func:`map_source`; returns (accepted columns as arrays, rejects frame)."""
    _check_mapping(source, catalog.names)
    _check_columns(raw, source)
    n = len(raw)
    cols = source.columns
    customer = pd.Categorical(normalize_ids(raw[cols[CUSTOMER_ID]].reset_index(drop=True)))
    cats = customer.categories
    placeholder_cats = np.asarray(cats.str.lower().isin(rules.placeholder_ids), dtype=bool) if len(cats) else \
        np.zeros(0, dtype=bool)
    codes = customer.codes
    ts_ns, ts_status, wall_ns = _parse_ts(raw[cols[TS]], source)
    tp_code = _touchpoint_codes(raw[cols[TOUCHPOINT]], source, catalog.names)
    value_col = raw[cols[VALUE]] if VALUE in cols else None
    values, value_status = _parse_value(value_col, n)
    refund = np.where(tp_code >= 0, catalog.refund[np.maximum(tp_code, 0)], False)
    if refund.any():
        values[refund] = np.abs(values[refund])  # the amount given back, whatever sign the export uses

    reason = np.zeros(n, dtype=np.int8)

    def flag(mask: np.ndarray, code: int) -> None:
        reason[(reason == _OK) & mask] = code

    flag(codes < 0, _MISSING_ID)
    if placeholder_cats.any():
        flag(np.where(codes >= 0, placeholder_cats[np.maximum(codes, 0)], False), _PLACEHOLDER_ID)
    flag(ts_status == _BAD_TS, _BAD_TS)
    flag(_placeholder_dates(ts_ns, wall_ns, ts_status != _BAD_TS, rules.placeholder_dates), _PLACEHOLDER_TS)
    flag(ts_status == _NONEXISTENT, _NONEXISTENT)
    flag(ts_status == _AMBIGUOUS, _AMBIGUOUS)
    flag(tp_code < 0, _UNKNOWN_TP)
    flag(value_status == _BAD_VALUE, _BAD_VALUE)
    flag(value_status == _OUT_OF_RANGE, _OUT_OF_RANGE)
    with np.errstate(invalid="ignore"):
        flag(values < 0, _NEGATIVE)
    flag(ts_ns > rules.as_of.value, _FUTURE)

    good = reason == _OK
    rows = np.flatnonzero(good)
    accepted = {
        "row": rows,
        CUSTOMER_ID: _used_only(customer[good]),
        TS: ts_ns[good],
        TOUCHPOINT: tp_code[good],
        VALUE: values[good],
        EVENT_ID: (normalize_ids(raw[cols[EVENT_ID]].iloc[rows].reset_index(drop=True)).to_numpy(dtype=object)
                   if EVENT_ID in cols else None),
    }
    idx = np.flatnonzero(~good)
    detail = _details(reason, idx, raw_id=raw[cols[CUSTOMER_ID]], raw_ts=raw[cols[TS]], raw_tp=raw[cols[TOUCHPOINT]],
                      raw_value=value_col, ts_ns=ts_ns, source=source, as_of=rules.as_of)
    rejects = _rejects_frame(raw, source, idx, reason, detail, rules.raw_columns)
    return accepted, rejects


def _map_subscriptions(raw: pd.DataFrame, source: SourceSettings, catalog: _Catalog, rules: _Rules):
    """A subscriptions source -> (its contract events as accepted columns, rejects frame, accepted rows).

    :func:`signals.subscriptions.contracts_from_subscriptions` does the work; each event's ``row`` is
    the first subscription row it comes from.
    """
    from signals.subscriptions import contracts_from_subscriptions

    sub = source.subscriptions
    missing = {canon: col for canon, col in source.columns.items() if col not in raw.columns}
    if missing:
        raise IngestError(
            f"source {source.name!r}: mapped column(s) {sorted(set(missing.values()))} not found "
            f"({', '.join(f'{c}: {col!r}' for c, col in missing.items())}). The source has columns "
            f"{[str(c) for c in raw.columns]}. Fix {_key(source, 'columns')} (canonical -> raw column name)."
        )
    out = contracts_from_subscriptions(
        raw, columns=source.columns, gap_days=sub.gap_days, term_months=sub.term_months,
        end_inclusive=sub.end_inclusive, as_of=rules.as_of, timezone=source.timezone, ts_format=source.ts_format,
        statuses=sub.statuses, touchpoints={k: getattr(sub, k) for k in ("purchase", "renewal", "cancellation")},
        source=source.name, placeholder_ids=rules.placeholder_ids, placeholder_dates=rules.placeholder_dates,
    )
    events = out.events
    position = {name: i for i, name in enumerate(catalog.names)}
    kinds = events[TOUCHPOINT].cat
    lookup = np.array([position[str(t)] for t in kinds.categories], dtype=np.int32)
    accepted = {
        "row": out.event_rows,
        CUSTOMER_ID: _used_only(events[CUSTOMER_ID].array),
        TS: events[TS].to_numpy(dtype="datetime64[ns]").view(np.int64),
        TOUCHPOINT: lookup[kinds.codes.to_numpy()] if len(events) else np.zeros(0, dtype=np.int32),
        VALUE: events[VALUE].to_numpy(dtype=np.float64),
        EVENT_ID: None,
    }
    idx = out.rejects["row"].to_numpy(dtype=np.int64)
    cols = source.columns
    frame = {
        "source": pd.Series([source.name] * len(idx), dtype="str"),
        "row": idx,
        "line": lines_of(raw, source)(idx).astype(np.int64),
        "reason": out.rejects["reason"].astype("str").reset_index(drop=True),
        "detail": out.rejects["detail"].astype("str").reset_index(drop=True),
        "customer_id": _cells(raw, cols.get("customer_id"), idx),
        "ts": _cells(raw, cols.get("start"), idx),
        "touchpoint": pd.Series([""] * len(idx), dtype="str"),
        "value": _cells(raw, cols.get("value"), idx),
        "event_id": pd.Series([""] * len(idx), dtype="str"),
    }
    if rules.raw_columns:
        frame["raw"] = pd.Series(_raw_json(raw, idx), dtype="str")
    return accepted, pd.DataFrame(frame), out.accepted


def _events_frame(customer: pd.Series | pd.Categorical, ts_ns: np.ndarray, tp_code: np.ndarray,
                  values: np.ndarray, source_code: np.ndarray, catalog: Sequence[str],
                  sources: Sequence[str]) -> pd.DataFrame:
    """The canonical frame; ``source`` categories are the names present, sorted (as ``astype("category")`` would)."""
    customer_cat = customer if isinstance(customer, pd.Categorical) else pd.Categorical(customer)
    if customer_cat.categories.dtype != "str":  # an empty union of categoricals falls back to object
        customer_cat = pd.Categorical.from_codes(customer_cat.codes, categories=customer_cat.categories.astype("str"))
    used = np.flatnonzero(np.bincount(source_code, minlength=len(sources)) > 0)
    names = sorted(sources[i] for i in used)
    recode = np.full(len(sources), -1, dtype=np.int16)
    recode[used] = [names.index(sources[i]) for i in used]
    return pd.DataFrame({
        CUSTOMER_ID: customer_cat,
        TS: pd.Series(ts_ns.view("datetime64[ns]")).dt.tz_localize("UTC"),
        TOUCHPOINT: pd.Categorical.from_codes(tp_code, categories=list(catalog)),
        VALUE: np.asarray(values, dtype=np.float64),
        SOURCE: pd.Categorical.from_codes(recode[source_code], categories=pd.Index(names, dtype="str")),
    }, columns=list(EVENT_COLUMNS))


def map_source(raw: pd.DataFrame, source: SourceSettings, *, touchpoints: Iterable[str] | Mapping[str, Touchpoint],
               as_of: dt.datetime | pd.Timestamp | str | None = None, timezone: str | None = None,
               placeholder_ids: Iterable[str] = PLACEHOLDER_IDS,
               placeholder_dates: Iterable[dt.date] = PLACEHOLDER_DATES,
               rejects_raw_columns: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map one source's raw rows onto canonical events; validate every row.

    Pure: no I/O, ``raw`` is not modified.

    Parameters
    ----------
    raw : DataFrame
        The source's rows as read (text from CSV, typed from Parquet or SQL).
    source : SourceSettings
        Column mapping (canonical -> raw column), activity names (raw -> catalog type), the time
        zone of naive timestamps and an optional ``ts_format``.
    touchpoints : iterable of str, or the catalog mapping
        The catalog's type names, in catalog order; pass the catalog itself (``settings.catalog``)
        to let types with role ``refund`` carry negative amounts.
    as_of : datetime, optional
        Events after this instant are rejected as ``future_ts``; ``None`` is now. A naive value is a
        wall-clock time in ``timezone`` (refused without one).
    timezone : str, optional
        The business time zone of a naive ``as_of`` (``settings.timezone``).
    placeholder_ids, placeholder_dates : iterable
        Ids (any letter case) and dates that mean "missing" (``ingest.placeholder_ids`` /
        ``ingest.placeholder_dates``).
    rejects_raw_columns : bool
        Also copy every raw column (as JSON) into the rejects' ``raw`` column.

    Returns
    -------
    accepted : DataFrame
        Canonical event columns (see :mod:`signals.schemas`) in raw row order, not deduplicated;
        the index is the 0-based row number in the source.
    rejects : DataFrame
        :data:`REJECT_COLUMNS` for every other row (see the module docstring).

    Raises
    ------
    IngestError
        A mapped column is missing, ``source.touchpoints`` maps to a type not in the catalog, or
        ``ts_format`` has day and month swapped.

    Examples
    --------
    >>> from signals.settings import SourceSettings
    >>> src = SourceSettings(name="sfa", kind="csv", path="sfa.csv", timezone="Asia/Tokyo",
    ...                      columns={"customer_id": "Account", "ts": "Date", "touchpoint": "Type"},
    ...                      touchpoints={"訪問": "sales_visit", "資料請求": "doc_request"})
    >>> raw = pd.DataFrame({"Account": ["00042", "00042", " ", "#N/A"],
    ...                     "Date": ["2025-04-01 10:00:00", "2025-04-02T09:00:00Z", "2025-04-03", "2025-04-03"],
    ...                     "Type": ["訪問", "資料請求", "訪問", "訪問"]})
    >>> accepted, rejects = map_source(raw, src, touchpoints=["sales_visit", "doc_request"],
    ...                                as_of="2026-01-01T00:00:00Z")
    >>> accepted[["customer_id", "ts", "touchpoint"]]  # doctest: +NORMALIZE_WHITESPACE
        customer_id                        ts   touchpoint
    row
    0         00042 2025-04-01 01:00:00+00:00  sales_visit
    1         00042 2025-04-02 09:00:00+00:00  doc_request
    >>> rejects[["row", "line", "reason"]]  # line: in a CSV file with its header on line 1
       row  line                   reason
    0    2     4      missing_customer_id
    1    3     5  placeholder_customer_id
    >>> rejects["customer_id"].tolist()  # the raw cells of the mapped columns, as text
    [' ', '#N/A']
    """
    catalog = _catalog(touchpoints)
    rules = _Rules.make(resolve_as_of(as_of, timezone), placeholder_ids, placeholder_dates, rejects_raw_columns)
    accepted, rejects = _map(raw, source, catalog, rules)
    n = len(accepted["row"])
    events = _events_frame(accepted[CUSTOMER_ID], accepted[TS], accepted[TOUCHPOINT], accepted[VALUE],
                           np.zeros(n, dtype=np.int8), catalog.names, [source.name])
    events.index = pd.Index(accepted["row"], name="row")
    return events, rejects


# --------------------------------------------------------------------------------------------
# unification


def _sort_order(customer_code: np.ndarray, ts_ns: np.ndarray, tp_code: np.ndarray, n_types: int) -> np.ndarray:
    """Stable argsort by (customer, ts, touchpoint); ts and touchpoint share one key when it fits in int64."""
    if len(ts_ns) == 0:
        return np.zeros(0, dtype=np.int64)
    t0 = int(ts_ns.min())
    span = int(ts_ns.max()) - t0
    if (span + 1) * n_types < 2**62:  # any history shorter than ~10 years with a 13-type catalog
        return np.lexsort(((ts_ns - t0) * n_types + tp_code, customer_code))
    return np.lexsort((tp_code, ts_ns, customer_code))


def _cluster_heads(g: np.ndarray, t: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Cluster heads of rows sorted by (group, ts): a cluster starts at a head and holds every later
    row of its group at most ``tolerance_ns`` after the head; the next row beyond starts a new one.
    """
    n = len(t)
    same_group = np.zeros(n, dtype=bool)
    same_group[1:] = g[1:] == g[:-1]
    close = same_group.copy()
    close[1:] &= (t[1:] - t[:-1]) <= tolerance_ns
    # A run: consecutive rows of one group, each within the tolerance of the one before. A row
    # starting a run is more than the tolerance after every earlier row of its group: always a head.
    head = ~close
    run = np.cumsum(head) - 1
    head_idx = np.flatnonzero(head)
    end_idx = np.append(head_idx[1:], n) - 1
    span = t[end_idx] - t[head_idx]
    short = span[run] <= tolerance_ns  # whole run within the tolerance of its first row: one cluster
    heads = head.copy()
    long_rows = np.flatnonzero(~short)
    if len(long_rows):
        heads[long_rows] = _keep_chain(run[long_rows], t[long_rows], head[long_rows], tolerance_ns)
    return heads


def _match(idx: np.ndarray, group: np.ndarray, src: np.ndarray, ts: np.ndarray,
           eid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dedupe rule on candidate rows ``idx`` (global positions, ascending) already put in groups.

    ``group`` holds the cross-source group of each candidate (same customer, touchpoint and value,
    and the same instant or tolerance cluster). Returns ``(dup, partner, kind)`` per candidate:
    ``partner`` is the global position of the kept row it duplicates, ``kind`` 1 for a repeat
    within its source, 2 for a cross-source duplicate.
    """
    m = len(idx)
    dup = np.zeros(m, dtype=bool)
    partner = np.full(m, -1, dtype=np.int64)
    kind = np.zeros(m, dtype=np.int8)
    if m < 2:
        return dup, partner, kind
    o = np.lexsort((idx, eid, ts, src, group))  # (group, source, ts, event id, row)
    g, s, t, e = group[o], src[o], ts[o], eid[o]
    # 1. within a source: an exact repeat of an earlier row (same instant and event id) in the group
    repeat = np.zeros(m, dtype=bool)
    repeat[1:] = (g[1:] == g[:-1]) & (s[1:] == s[:-1]) & (t[1:] == t[:-1]) & (e[1:] == e[:-1])
    first_of = np.flatnonzero(~repeat)[np.cumsum(~repeat) - 1]  # sorted position of the row each repeat repeats
    # 2. across sources: the k-th distinct event of a source (in (ts, row) order) matches the k-th
    # of the sources before it
    first = np.flatnonzero(~repeat)
    first = first[np.lexsort((idx[o][first], t[first], s[first], g[first]))]  # (group, source, ts, row)
    gv, sv = g[first], s[first]
    starts_mask = np.ones(len(first), dtype=bool)
    starts_mask[1:] = (gv[1:] != gv[:-1]) | (sv[1:] != sv[:-1])
    run = np.cumsum(starts_mask) - 1
    starts = np.flatnonzero(starts_mask)
    lengths = np.diff(np.append(starts, len(first)))
    rank = np.arange(len(first)) - starts[run]
    new_group = np.ones(len(starts), dtype=bool)
    new_group[1:] = gv[starts[1:]] != gv[starts[:-1]]
    gi = np.cumsum(new_group) - 1
    big = int(lengths.max()) + 1
    inclusive = np.maximum.accumulate(gi * big + lengths) - gi * big  # most events any source so far holds
    exclusive = np.zeros(len(starts), dtype=np.int64)
    exclusive[1:] = np.where(new_group[1:], 0, inclusive[:-1])
    cross = rank < exclusive[run]
    key = gi * big + inclusive  # nondecreasing: the first run of the group holding more than rank events
    holder = np.searchsorted(key, gi[run[cross]] * big + rank[cross], side="right")
    cross_pos = first[cross]
    kept_pos = first[starts[holder] + rank[cross]]
    final = np.arange(m)
    final[cross_pos] = kept_pos
    sorted_dup = repeat.copy()
    sorted_dup[cross_pos] = True
    sorted_kind = np.where(repeat, 1, 0).astype(np.int8)
    sorted_kind[cross_pos] = 2
    sorted_partner = np.full(m, -1, dtype=np.int64)
    sorted_partner[cross_pos] = kept_pos
    rep = np.flatnonzero(repeat)
    sorted_partner[rep] = final[first_of[rep]]  # a repeat of a cross-source duplicate points at the kept row
    dup[o] = sorted_dup
    kind[o] = sorted_kind
    partner[o] = np.where(sorted_partner >= 0, idx[o][np.maximum(sorted_partner, 0)], -1)
    return dup, partner, kind


def _dedupe(customer: np.ndarray, ts: np.ndarray, tp: np.ndarray, values: np.ndarray, src: np.ndarray,
            eid: np.ndarray | None, order: np.ndarray,
            tolerance_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Duplicates under the rule of the module docstring: ``(dup, partner, kind)`` per row.

    Rows come in (source, row) order; ``order`` sorts them by (customer, ts, touchpoint), stably.
    Only rows that share a customer, touchpoint and instant (or tolerance window) with another
    row can be duplicates: they are found with one pass over a sort, then resolved by :func:`_match`.
    """
    n = len(ts)
    dup = np.zeros(n, dtype=bool)
    partner = np.full(n, -1, dtype=np.int64)
    kind = np.zeros(n, dtype=np.int8)
    if n < 2:
        return dup, partner, kind
    vbits = values.view(np.int64)  # exact equality of amounts (-0.0 was made 0.0)
    if tolerance_ns == 0:
        c, t, k = customer[order], ts[order], tp[order]
        same = np.zeros(n, dtype=bool)
        same[1:] = (c[1:] == c[:-1]) & (t[1:] == t[:-1]) & (k[1:] == k[:-1])
        member = same.copy()
        member[:-1] |= same[1:]
        if not member.any():
            return dup, partner, kind
        block = (np.cumsum(~same) - 1)[member]
        cand = order[member]
        o = np.argsort(cand, kind="stable")  # back to (source, row) order
        cand, block = cand[o], block[o]
        by_value = np.lexsort((vbits[cand], block))
        bv, vv = block[by_value], vbits[cand][by_value]
        change = np.ones(len(cand), dtype=bool)
        change[1:] = (bv[1:] != bv[:-1]) | (vv[1:] != vv[:-1])
        group = np.empty(len(cand), dtype=np.int64)
        group[by_value] = np.cumsum(change) - 1
    else:
        o2 = np.lexsort((ts, vbits, tp, customer))  # stable: ties stay in (source, row) order
        c, k, v, t = customer[o2], tp[o2], vbits[o2], ts[o2]
        same_key = np.zeros(n, dtype=bool)
        same_key[1:] = (c[1:] == c[:-1]) & (k[1:] == k[:-1]) & (v[1:] == v[:-1])
        near = same_key.copy()
        near[1:] &= (t[1:] - t[:-1]) <= tolerance_ns
        member = near.copy()
        member[:-1] |= near[1:]
        if not member.any():
            return dup, partner, kind
        key_id = (np.cumsum(~same_key) - 1)[member]
        sub_t = t[member]
        heads = _cluster_heads(key_id, sub_t, tolerance_ns)
        cluster = np.cumsum(heads) - 1
        cand = o2[member]
        o = np.argsort(cand, kind="stable")
        cand, group = cand[o], cluster[o]
    if eid is None:
        eid_code = np.full(len(cand), -1, dtype=np.int64)
    else:
        eid_code, _ = pd.factorize(pd.Series(eid[cand], dtype=object), use_na_sentinel=True)
        eid_code = eid_code.astype(np.int64)
    d, p, kd = _match(cand, group, src[cand], ts[cand], eid_code)
    dup[cand], partner[cand], kind[cand] = d, p, kd
    return dup, partner, kind


def _keep_chain(run: np.ndarray, t: np.ndarray, head: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Resolve runs longer than the tolerance: follow "next event beyond last kept + tolerance" pointers.

    ``run`` and ``t`` are sorted (by run, then time). For each event, ``nxt`` is the first event of its
    run with ``t > t_event + tolerance`` (found for all events at once by merging the queries into the
    sorted keys); the kept events are the chains that start at the run heads. Iterations: the largest
    number of events kept in one run; each is vectorized over all runs.
    """
    m = len(t)
    local = t - np.repeat(t[head], np.diff(np.append(np.flatnonzero(head), m)))  # time since the run head
    keys_run = np.concatenate([run, run])
    keys_t = np.concatenate([local, local + tolerance_ns])
    is_query = np.concatenate([np.zeros(m, dtype=np.int8), np.ones(m, dtype=np.int8)])
    merged = np.lexsort((is_query, keys_t, keys_run))  # data before an equal query: side="right"
    data_before = np.cumsum(is_query[merged] == 0)
    nxt = np.empty(m, dtype=np.int64)
    query_pos = np.flatnonzero(is_query[merged] == 1)
    nxt[merged[query_pos] - m] = data_before[query_pos]
    valid = nxt < m
    valid[valid] = run[nxt[valid]] == run[valid]
    nxt[~valid] = -1
    keep = np.zeros(m, dtype=bool)
    frontier = np.flatnonzero(head)
    while len(frontier):
        keep[frontier] = True
        frontier = nxt[frontier]
        frontier = frontier[frontier >= 0]
    return keep


def _empty_rejects(raw_columns: bool = False) -> pd.DataFrame:
    frame = {c: pd.Series([], dtype=np.int64 if c in ("row", "line") else "str") for c in REJECT_COLUMNS}
    if raw_columns:
        frame["raw"] = pd.Series([], dtype="str")
    return pd.DataFrame(frame)


def _duplicates_frame(dup: np.ndarray, partner: np.ndarray, kind: np.ndarray, *, names: list[str],
                      source_code: np.ndarray, rows: np.ndarray, lines: list, customer: pd.Categorical,
                      ts_ns: np.ndarray, tp_code: np.ndarray, values: np.ndarray, eid: np.ndarray | None,
                      catalog: Sequence[str]) -> pd.DataFrame:
    """One row per dropped duplicate with the row it duplicates (ordered by source, then row)."""
    at = np.flatnonzero(dup)  # global positions are in (source, row) order already
    kept = partner[at]

    def lines_of(positions: np.ndarray) -> np.ndarray:
        out = np.empty(len(positions), dtype=np.int64)
        for i in np.unique(source_code[positions]):
            mine = source_code[positions] == i
            out[mine] = lines[i](rows[positions[mine]])
        return out

    def stamps(positions: np.ndarray) -> pd.Series:
        ns = ts_ns[positions]
        unit = "s" if not (ns % 1_000_000_000).any() else "ns"
        return pd.Series(np.char.add(np.datetime_as_string(ns.view("datetime64[ns]"), unit=unit), "Z"), dtype="str")

    source_names = np.asarray(names, dtype=object)
    return pd.DataFrame({
        "source": pd.Series(source_names[source_code[at]], dtype="str"),
        "row": rows[at].astype(np.int64),
        "line": lines_of(at),
        "kind": pd.Series(np.where(kind[at] == 1, "repeated_row", "cross_source"), dtype="str"),
        "customer_id": pd.Series(np.asarray(customer.categories)[customer.codes[at]], dtype="str"),
        "ts": stamps(at),
        "touchpoint": pd.Series(np.asarray(catalog, dtype=object)[tp_code[at]], dtype="str"),
        "value": values[at].astype(np.float64),
        "event_id": pd.Series(eid[at] if eid is not None else [None] * len(at), dtype="str").fillna(""),
        "kept_source": pd.Series(source_names[source_code[kept]], dtype="str"),
        "kept_row": rows[kept].astype(np.int64),
        "kept_line": lines_of(kept),
        "kept_ts": stamps(kept),
    }, columns=list(DUPLICATE_COLUMNS))


def ingest(
    sources: Sequence[SourceSettings],
    *,
    touchpoints: Iterable[str] | Mapping[str, Touchpoint],
    as_of: dt.datetime | pd.Timestamp | str | None = None,
    timezone: str | None = None,
    dedupe_tolerance_seconds: float = 0,
    strict: bool = False,
    max_reject_fraction: float = 0.5,
    placeholder_ids: Iterable[str] = PLACEHOLDER_IDS,
    placeholder_dates: Iterable[dt.date] = PLACEHOLDER_DATES,
    rejects_raw_columns: bool = False,
    reader: Callable[[SourceSettings], pd.DataFrame] = read_source,
) -> IngestResult:
    """Read, map, validate and unify ``sources`` into one canonical event table.

    The job (``signals ingest``) calls exactly this with the settings (``ingest.*``, ``catalog``,
    ``timezone``), so a notebook passing the same values gets the same events to the nanosecond.

    Parameters
    ----------
    sources : sequence of SourceSettings
        In priority order: on a tie, duplicates keep the event of the earlier source.
    touchpoints : iterable of str, or the catalog mapping
        The catalog's type names in catalog order (the ``touchpoint`` categories); pass the catalog
        itself (``settings.catalog``) so types with role ``refund`` may carry negative amounts.
    as_of : datetime, optional
        Events after this instant are rejected as ``future_ts``; ``None`` is now. A naive value is
        a wall-clock time in ``timezone``, and refused without one.
    timezone : str, optional
        The business time zone of a naive ``as_of`` (``settings.timezone``, as the job passes).
    dedupe_tolerance_seconds : float
        Clock tolerance of cross-source duplicates (see "Deduplication" in the module docstring).
    strict : bool
        Raise :class:`IngestError` (counts by reason, ``.result`` set) if any row was rejected.
    max_reject_fraction : float
        Raise :class:`IngestError` (``.result`` set) when more than this share of one source's rows
        is rejected (a source's own ``max_reject_fraction`` wins); 1 never raises.
    placeholder_ids, placeholder_dates : iterable
        Ids (any letter case) and dates that mean "missing": such rows are rejects.
    rejects_raw_columns : bool
        Also copy every raw column (unmapped personal data too) into the rejects' ``raw`` column.
    reader : callable
        ``SourceSettings -> raw DataFrame``; :func:`signals.io.sources.read_source` by default.

    Raises
    ------
    IngestError
        No sources, a source cannot be read or has no rows, a mapped column is missing, a mapping
        targets a non-catalog type, ``ts_format`` has day and month swapped, a source is named
        ``"total"``, too many rows of a source were rejected, or (``strict``) any row was rejected.
    """
    catalog = _catalog(touchpoints)
    if not sources:
        raise IngestError("no sources configured: add ingest.sources to the config (see configs/demo.yaml)")
    if dedupe_tolerance_seconds < 0:
        raise IngestError(f"dedupe_tolerance_seconds must be >= 0, got {dedupe_tolerance_seconds}")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise IngestError(f"source names must be unique, got {names}")
    if TOTAL in names:
        raise IngestError(f"source name {TOTAL!r} is reserved for the report's total row; rename it in ingest.sources")
    for source in sources:  # configuration mistakes first, before any (slow) read
        _check_mapping(source, catalog)
    rules = _Rules.make(resolve_as_of(as_of, timezone), placeholder_ids, placeholder_dates, rejects_raw_columns)

    reads: list[int] = []
    parts: list[dict] = []
    reject_parts: list[pd.DataFrame] = []
    lines: list = []
    subscription_rows: dict[int, int] = {}  # source position -> accepted subscription rows
    for position, source in enumerate(sources):
        raw = reader(source)
        if len(raw) == 0:
            raise IngestError(
                f"source {source.name!r} has no rows ({source.kind}: {_location(source)}); "
                f"check {_key(source, 'path' if source.reader != 'sql' else 'query')}"
            )
        if source.kind == "subscriptions":
            accepted, rejects, subscription_rows[position] = _map_subscriptions(raw, source, catalog, rules)
        else:
            accepted, rejects = _map(raw, source, catalog, rules)
        reads.append(len(raw))
        parts.append(accepted)
        reject_parts.append(rejects)
        lines.append(lines_of(raw, source))
        del raw

    counts = [len(p["row"]) for p in parts]
    source_code = np.repeat(np.arange(len(sources), dtype=np.int16), counts)
    rows = np.concatenate([p["row"] for p in parts]).astype(np.int64)
    customer = pd.api.types.union_categoricals([p[CUSTOMER_ID] for p in parts], sort_categories=True)
    customer_code = customer.codes  # sorted categories: code order = text order (int32 sorts faster)
    ts_ns = np.concatenate([p[TS] for p in parts])
    tp_code = np.concatenate([p[TOUCHPOINT] for p in parts]).astype(np.int32)
    values = np.concatenate([p[VALUE] for p in parts])
    eid = None
    if any(p[EVENT_ID] is not None for p in parts):
        eid = np.concatenate([p[EVENT_ID] if p[EVENT_ID] is not None else np.full(len(p["row"]), None, dtype=object)
                              for p in parts])
    del parts

    tolerance_ns = int(round(float(dedupe_tolerance_seconds) * 1e9))
    order = _sort_order(customer_code, ts_ns, tp_code, len(catalog.names))  # stable: ties stay in (source, row) order
    derived = np.isin(source_code, list(subscription_rows))
    if derived.any():  # contract events are derived from subscription rows, not recorded contacts: never duplicates
        recorded = np.flatnonzero(~derived)
        dup = np.zeros(len(ts_ns), dtype=bool)
        partner = np.full(len(ts_ns), -1, dtype=np.int64)
        kind = np.zeros(len(ts_ns), dtype=np.int8)
        sub_order = np.argsort(np.argsort(order, kind="stable")[recorded], kind="stable")  # the same order, restricted
        d, p, k = _dedupe(customer_code[recorded], ts_ns[recorded], tp_code[recorded], values[recorded],
                          source_code[recorded], None if eid is None else eid[recorded], sub_order, tolerance_ns)
        dup[recorded], kind[recorded] = d, k
        partner[recorded] = np.where(p >= 0, recorded[np.maximum(p, 0)], -1)
    else:
        dup, partner, kind = _dedupe(customer_code, ts_ns, tp_code, values, source_code, eid, order, tolerance_ns)
    if dup.any():
        order = order[~dup[order]]
    events = _events_frame(
        pd.Categorical.from_codes(customer.codes[order], categories=customer.categories),
        ts_ns[order], tp_code[order], values[order], source_code[order], catalog.names, names,
    )
    duplicates = _duplicates_frame(dup, partner, kind, names=names, source_code=source_code, rows=rows, lines=lines,
                                   customer=customer, ts_ns=ts_ns, tp_code=tp_code, values=values, eid=eid,
                                   catalog=catalog.names)

    nonempty = [r for r in reject_parts if len(r)]
    rejects = pd.concat(nonempty, ignore_index=True) if nonempty else _empty_rejects(rejects_raw_columns)
    kept = np.bincount(source_code[~dup], minlength=len(names))
    accepted_rows = kept.copy()
    for position, n_rows in subscription_rows.items():
        accepted_rows[position] = n_rows  # rows that became contract events (kept counts events)
    report = _report(names, reads, rejects, accepted_rows, np.bincount(source_code[dup], minlength=len(names)), kept,
                     subscriptions=bool(subscription_rows))
    result = IngestResult(events=events, rejects=rejects, report=report, as_of=rules.as_of, duplicates=duplicates)
    check_reject_rates(result, sources, max_reject_fraction)
    if strict:
        check_strict(result)
    return result


def _location(source: SourceSettings) -> str:
    return str(source.path) if source.reader != "sql" else str(source.query)


def _report(names: list[str], reads: list[int], rejects: pd.DataFrame, accepted: np.ndarray,
            duplicates: np.ndarray, events: np.ndarray, *, subscriptions: bool = False) -> pd.DataFrame:
    reasons = list(REASONS)
    if subscriptions:
        from signals.subscriptions import REASONS as SUBSCRIPTION_REASONS

        reasons += [r for r in SUBSCRIPTION_REASONS if r not in REASONS]
    by_reason = np.zeros((len(names), len(reasons)), dtype=np.int64)
    np.add.at(by_reason, (pd.Categorical(rejects["source"], categories=names).codes,
                          pd.Categorical(rejects["reason"], categories=reasons).codes), 1)
    report = pd.DataFrame(
        {"read": reads, "accepted": accepted, "rejected": by_reason.sum(axis=1), "duplicates": duplicates,
         "events": events},
        index=pd.Index(names, name="source"),
    ).astype(np.int64)
    report = report.join(pd.DataFrame(by_reason, index=report.index, columns=reasons))
    report.loc[TOTAL] = report.sum(axis=0)
    report = report.astype(np.int64)
    balance = report["read"] - report["accepted"] - report["rejected"] - report["duplicates"]
    if (balance != 0).any():  # an explicit check, not `assert`: it must hold under python -O too
        raise AssertionError(f"ingest row accounting broken (read != accepted + rejected + duplicates):\n{report}")
    return report


class _CallableModule(types.ModuleType):
    """``signals.ingest`` names both this module and its :func:`ingest` function.

    Once the module has been imported, Python binds the package attribute ``signals.ingest`` to
    the module, hiding the function that ``signals.__init__`` exports under the same name. A
    module that can be called keeps ``signals.ingest(sources, ...)`` working in every session.
    """

    def __call__(self, *args, **kwargs) -> IngestResult:
        return ingest(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
