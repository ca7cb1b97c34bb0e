"""Sources -> one canonical event table, plus the rows that could not be used and why.

This is the article's first hard part (顧客接点温度, seed 002): the touchpoints of one customer live in
many systems (SFA exports, marketing automation, a support database), each with its own column
names, activity names ("Webinar attended", "資料請求") and clock. Ingestion maps every source onto
the canonical events contract (:mod:`signals.schemas`), validates it row by row, and removes the
events that several systems recorded twice.

Three steps, each usable on its own:

* :func:`signals.io.sources.read_source` reads one source's raw rows (CSV as text, Parquet as stored,
  SQL through SQLAlchemy). It is the only step that does I/O.
* :func:`map_source` is a pure function ``raw rows -> (accepted, rejects)``: column mapping, activity
  names, timestamps, values. Every raw row ends up in exactly one of the two outputs.
* :func:`ingest` reads and maps every source, then unifies: one table, deduplicated across sources,
  sorted by ``(customer_id, ts, touchpoint)``, with a report that always satisfies
  ``read = accepted + rejected + duplicates`` per source and in total.

Row checks (the first failing one wins, in this order)
------------------------------------------------------
=========================  ============================================================================
reason                     the row is rejected when
=========================  ============================================================================
``missing_customer_id``    the customer id is null or blank after stripping spaces
``unparseable_ts``         the timestamp is null, blank, not parseable with the source's ``ts_format``
                           nor as ISO 8601, or outside the range pandas can hold in nanoseconds
                           (1678-01-01 .. 2261-12-31)
``nonexistent_local_time`` a naive timestamp falls in the spring-forward gap of ``source.timezone``
``ambiguous_local_time``   a naive timestamp falls in the autumn overlap of ``source.timezone`` (it
                           happened twice; an export with UTC offsets removes the doubt)
``unknown_touchpoint``     the activity name is null, blank, or neither mapped in ``source.touchpoints``
                           nor already a catalog type name
``unparseable_value``      the value is not a finite decimal number (``"1,000"``, ``"abc"``, ``"inf"``)
``negative_value``         the value is below zero
``future_ts``              the timestamp is after ``as_of`` (``ts > as_of``)
=========================  ============================================================================

Timestamps: naive values are wall-clock times in ``source.timezone``; values with an offset or ``Z``
(and tz-aware Parquet / SQL columns) are instants and are converted to UTC as they are. One text
column may mix both. Customer ids are stripped text (``"00001"`` keeps its zeros). A missing value
is 0. Activity names are stripped before the lookup.

A mapping to a type that is not in the catalog is a **configuration error**, not a row problem: it
raises :class:`IngestError` before any row is read, naming the source and the mapping to fix (every
row of that activity would otherwise be rejected, silently hiding a typo in the config).

Deduplication
-------------
Two accepted events are the same contact when they have the same customer, the same touchpoint, and
timestamps at most ``dedupe_tolerance_seconds`` apart, under this precise rule: events of one
``(customer_id, touchpoint)`` are taken in ``(ts, source order, row order)`` order; the first is kept;
each following event is a duplicate when ``ts - ts_of_last_kept_event <= tolerance``, otherwise it is
kept and becomes the new reference. So with a 60 s tolerance, events at 0 s, 50 s and 100 s keep 0 s
and 100 s (100 s is compared with the last *kept* event at 0 s, not with the dropped one at 50 s).
With the default tolerance 0 this is exact deduplication on ``(customer_id, ts, touchpoint)``; ties
keep the event of the earliest source in the config, then the earliest row. The value of a dropped
duplicate is not added to the kept one. Duplicates are counted per source (the source of the dropped
row) and are not rejects: they do not appear in the rejects table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from signals.errors import IngestError
from signals.io.sources import read_source
from signals.schemas import CUSTOMER_ID, EVENT_COLUMNS, SOURCE, TOUCHPOINT, TS, VALUE
from signals.settings import SourceSettings

__all__ = [
    "REASONS",
    "REJECT_COLUMNS",
    "REPORT_COLUMNS",
    "IngestError",
    "IngestResult",
    "check_strict",
    "ingest",
    "map_source",
    "resolve_as_of",
]

#: Reject reason codes, in the order the checks run (the first failing check names the reason).
REASONS = (
    "missing_customer_id",
    "unparseable_ts",
    "nonexistent_local_time",
    "ambiguous_local_time",
    "unknown_touchpoint",
    "unparseable_value",
    "negative_value",
    "future_ts",
)
#: Columns of the rejects table.
REJECT_COLUMNS = ("source", "row", "reason", "detail", "raw")
#: Count columns of the report (then one column per reason code).
REPORT_COLUMNS = ("read", "accepted", "rejected", "duplicates")
TOTAL = "total"

_NAT = np.iinfo(np.int64).min
# pandas holds nanoseconds between 1677-09-21 and 2262-04-11; whole years inside keep local-time
# shifts and comparisons clear of the edges.
_TS_MIN = pd.Timestamp("1678-01-01")
_TS_MAX = pd.Timestamp("2262-01-01")
# An explicit UTC offset (or Z) after a time of day: "...T10:00:00+09:00", "... 10:00Z", "...T1000-0500".
# A date alone ("2024-01-05") never matches, so its "-05" is not mistaken for an offset.
_AWARE_RE = r"[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?\s?(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_NUMBER_RE = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"  # plain decimals: no "1,000", no "inf"

_OK, _MISSING_ID, _BAD_TS, _NONEXISTENT, _AMBIGUOUS, _UNKNOWN_TP, _BAD_VALUE, _NEGATIVE, _FUTURE = range(9)


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
        One row per rejected raw row: ``source``, ``row`` (0-based row number in its source),
        ``reason`` (a code of :data:`REASONS`), ``detail`` (plain words) and ``raw`` (the raw row as
        JSON), ordered by source (config order) then row.
    report : DataFrame
        Indexed by source name (config order) plus a final ``"total"`` row; columns ``read``,
        ``accepted``, ``rejected``, ``duplicates`` and one count per reason code.
        ``read == accepted + rejected + duplicates`` on every row.
    as_of : Timestamp
        The UTC instant after which events were rejected as ``future_ts``.
    """

    events: pd.DataFrame
    rejects: pd.DataFrame
    report: pd.DataFrame
    as_of: pd.Timestamp

    @property
    def n_rejected(self) -> int:
        return int(self.report.loc[TOTAL, "rejected"])

    def rejected_by_reason(self, source: str = TOTAL) -> dict[str, int]:
        """Non-zero reject counts by reason code for one source (or the total), most frequent first."""
        row = self.report.loc[source, list(REASONS)]
        counts = {reason: int(n) for reason, n in row.items() if n > 0}
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def resolve_as_of(as_of: dt.datetime | pd.Timestamp | str | None, timezone: str = "UTC") -> pd.Timestamp:
    """The ``as_of`` instant in UTC: ``None`` is now; a naive value is a wall-clock time in ``timezone``.

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


# --------------------------------------------------------------------------------------------
# configuration checks


def _key(source: SourceSettings, field: str) -> str:
    return f"ingest.sources[name={source.name}].{field}"


def _check_mapping(source: SourceSettings, catalog: Sequence[str]) -> None:
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
        raise IngestError(
            f"source {source.name!r}: mapped column(s) {sorted(set(missing.values()))} not found ({mapped}). "
            f"The source has columns {[str(c) for c in raw.columns]}. "
            f"Fix {_key(source, 'columns')} (canonical -> raw column name) or the export."
        )


def _catalog_names(touchpoints: Iterable[str]) -> list[str]:
    names = [str(t) for t in touchpoints]
    if not names:
        raise IngestError("the touchpoint catalog is empty")
    return names


# --------------------------------------------------------------------------------------------
# column parsing (vectorized; every helper returns numpy arrays aligned with the raw rows)


def _as_text(col: pd.Series) -> pd.Series:
    """Stripped text with missing and blank values as NA (``str`` dtype, positional index)."""
    col = col.reset_index(drop=True)
    if pd.api.types.is_float_dtype(col.dtype):
        finite = col.dropna()
        if len(finite) and bool(np.all(np.isfinite(finite)) and np.all(finite == np.round(finite))):
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


def _parse_ts(col: pd.Series, source: SourceSettings) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps -> (UTC ns with _NAT, status: _OK / _BAD_TS / _NONEXISTENT / _AMBIGUOUS)."""
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
            idx = np.flatnonzero(todo & ~aware)
            ns[idx], ok[idx], _ = _parse_naive_text(text.iloc[idx], fmt)
            naive[idx] = ok[idx]
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
    if naive.any() and source.timezone != "UTC":
        idx = np.flatnonzero(naive)
        utc_ns, local_status = _localize(ns[idx], source.timezone)
        ns[idx] = utc_ns
        status[idx] = local_status
    return ns, status


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
    """Values -> (float64, status: _OK / _BAD_VALUE / _NEGATIVE). Missing is 0."""
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
    status[~bad & (values < 0)] = _NEGATIVE
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


def _details(reason: np.ndarray, idx: np.ndarray, *, raw_ts: pd.Series, raw_tp: pd.Series,
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
        elif code == _BAD_TS:
            shown = _shown(raw_ts, rows)
            text = ("ts " + shown + f" is not parseable with {fmt}, or is outside 1678-2261").where(
                shown != "", "ts is missing or blank"
            )
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
        elif code == _NEGATIVE:
            text = "value " + _shown(raw_value, rows) + " is negative"
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


def _map(raw: pd.DataFrame, source: SourceSettings, catalog: Sequence[str], as_of: pd.Timestamp):
    """The vectorized core of :func:`map_source`; returns (accepted columns as arrays, rejects frame)."""
    _check_mapping(source, catalog)
    _check_columns(raw, source)
    n = len(raw)
    cols = source.columns
    customer = _as_text(raw[cols[CUSTOMER_ID]])
    ts_ns, ts_status = _parse_ts(raw[cols[TS]], source)
    tp_code = _touchpoint_codes(raw[cols[TOUCHPOINT]], source, catalog)
    value_col = raw[cols[VALUE]] if VALUE in cols else None
    values, value_status = _parse_value(value_col, n)

    reason = np.zeros(n, dtype=np.int8)

    def flag(mask: np.ndarray, code: int) -> None:
        reason[(reason == _OK) & mask] = code

    flag(customer.isna().to_numpy(), _MISSING_ID)
    flag(ts_status == _BAD_TS, _BAD_TS)
    flag(ts_status == _NONEXISTENT, _NONEXISTENT)
    flag(ts_status == _AMBIGUOUS, _AMBIGUOUS)
    flag(tp_code < 0, _UNKNOWN_TP)
    flag(value_status == _BAD_VALUE, _BAD_VALUE)
    flag(value_status == _NEGATIVE, _NEGATIVE)
    flag(ts_ns > as_of.value, _FUTURE)

    good = reason == _OK
    accepted = {
        "row": np.flatnonzero(good),
        CUSTOMER_ID: customer[good],
        TS: ts_ns[good],
        TOUCHPOINT: tp_code[good],
        VALUE: values[good],
    }
    idx = np.flatnonzero(~good)
    rejects = pd.DataFrame({
        "source": pd.Series([source.name] * len(idx), dtype="str"),
        "row": idx.astype(np.int64),
        "reason": pd.Series(np.asarray(REASONS, dtype=object)[reason[idx] - 1], dtype="str"),
        "detail": _details(reason, idx, raw_ts=raw[cols[TS]], raw_tp=raw[cols[TOUCHPOINT]], raw_value=value_col,
                           ts_ns=ts_ns, source=source, as_of=as_of),
        "raw": pd.Series(_raw_json(raw, idx), dtype="str"),
    })
    return accepted, rejects


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


def map_source(raw: pd.DataFrame, source: SourceSettings, *, touchpoints: Iterable[str],
               as_of: dt.datetime | pd.Timestamp | str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map one source's raw rows onto canonical events; validate every row.

    Pure: no I/O, ``raw`` is not modified.

    Parameters
    ----------
    raw : DataFrame
        The source's rows as read (text from CSV, typed from Parquet or SQL).
    source : SourceSettings
        Column mapping (canonical -> raw column), activity names (raw -> catalog type), the time
        zone of naive timestamps and an optional ``ts_format``.
    touchpoints : iterable of str
        The catalog's type names, in catalog order (a catalog mapping works too).
    as_of : datetime, optional
        Events after this instant are rejected as ``future_ts``; naive means UTC; ``None`` is now.

    Returns
    -------
    accepted : DataFrame
        Canonical event columns (see :mod:`signals.schemas`) in raw row order, not deduplicated;
        the index is the 0-based row number in the source.
    rejects : DataFrame
        ``source, row, reason, detail, raw`` for every other row (see the module docstring).

    Raises
    ------
    IngestError
        A mapped column is missing, or ``source.touchpoints`` maps to a type not in the catalog.

    Examples
    --------
    >>> from signals.settings import SourceSettings
    >>> src = SourceSettings(name="sfa", kind="csv", path="sfa.csv", timezone="Asia/Tokyo",
    ...                      columns={"customer_id": "Account", "ts": "Date", "touchpoint": "Type"},
    ...                      touchpoints={"訪問": "sales_visit", "資料請求": "doc_request"})
    >>> raw = pd.DataFrame({"Account": ["00042", "00042", " "],
    ...                     "Date": ["2025-04-01 10:00:00", "2025-04-02T09:00:00Z", "2025-04-03"],
    ...                     "Type": ["訪問", "資料請求", "訪問"]})
    >>> accepted, rejects = map_source(raw, src, touchpoints=["sales_visit", "doc_request"],
    ...                                as_of="2026-01-01")
    >>> accepted[["customer_id", "ts", "touchpoint"]]  # doctest: +NORMALIZE_WHITESPACE
        customer_id                        ts   touchpoint
    row
    0         00042 2025-04-01 01:00:00+00:00  sales_visit
    1         00042 2025-04-02 09:00:00+00:00  doc_request
    >>> rejects[["row", "reason"]]
       row               reason
    0    2  missing_customer_id
    """
    catalog = _catalog_names(touchpoints)
    accepted, rejects = _map(raw, source, catalog, resolve_as_of(as_of))
    n = len(accepted["row"])
    events = _events_frame(accepted[CUSTOMER_ID].astype("str").reset_index(drop=True), accepted[TS],
                           accepted[TOUCHPOINT], accepted[VALUE], np.zeros(n, dtype=np.int8), catalog,
                           [source.name])
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


def _duplicates(customer_code: np.ndarray, ts_ns: np.ndarray, tp_code: np.ndarray,
                tolerance_ns: int) -> np.ndarray:
    """Duplicate mask under the rule of the module docstring.

    Rows must come in (source, row) order: stable sorts then break ties by source and row.
    """
    n = len(ts_ns)
    dup = np.zeros(n, dtype=bool)
    if n < 2:
        return dup
    group = customer_code.astype(np.int64) * (int(tp_code.max()) + 1) + tp_code
    order = np.lexsort((ts_ns, group))  # stable: (group, ts), then the incoming (source, row) order
    g, t = group[order], ts_ns[order]
    same_group = np.empty(n, dtype=bool)
    same_group[0] = False
    same_group[1:] = g[1:] == g[:-1]
    close = same_group.copy()
    close[1:] &= (t[1:] - t[:-1]) <= tolerance_ns
    # A run: consecutive events of one group, each within the tolerance of the one before. An event
    # starting a run is more than the tolerance after every earlier event of its group: always kept.
    head = ~close
    run = np.cumsum(head) - 1
    head_idx = np.flatnonzero(head)
    end_idx = np.append(head_idx[1:], n) - 1
    span = t[end_idx] - t[head_idx]
    short = span[run] <= tolerance_ns  # whole run within the tolerance of its head: all but the head go
    dup_sorted = ~head & short
    long_rows = np.flatnonzero(~short)
    if len(long_rows):
        keep = _keep_chain(run[long_rows], t[long_rows], head[long_rows], tolerance_ns)
        dup_sorted[long_rows] = ~keep
    dup[order] = dup_sorted
    return dup


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


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({
        "source": pd.Series([], dtype="str"),
        "row": pd.Series([], dtype=np.int64),
        "reason": pd.Series([], dtype="str"),
        "detail": pd.Series([], dtype="str"),
        "raw": pd.Series([], dtype="str"),
    })


def ingest(
    sources: Sequence[SourceSettings],
    *,
    touchpoints: Iterable[str],
    as_of: dt.datetime | pd.Timestamp | str | None = None,
    dedupe_tolerance_seconds: float = 0,
    strict: bool = False,
    reader: Callable[[SourceSettings], pd.DataFrame] = read_source,
) -> IngestResult:
    """Read, map, validate and unify ``sources`` into one canonical event table.

    Parameters
    ----------
    sources : sequence of SourceSettings
        In priority order: on a tie, duplicates keep the event of the earlier source.
    touchpoints : iterable of str
        The catalog's type names in catalog order (the ``touchpoint`` categories).
    as_of : datetime, optional
        Events after this instant are rejected as ``future_ts``. Naive means UTC (the job passes
        ``settings.ingest.as_of`` through :func:`resolve_as_of` with ``settings.timezone``);
        ``None`` is now.
    dedupe_tolerance_seconds : float
        See "Deduplication" in the module docstring; 0 = exact ``(customer_id, ts, touchpoint)``.
    strict : bool
        Raise :class:`IngestError` (counts by reason, ``.result`` set) if any row was rejected.
    reader : callable
        ``SourceSettings -> raw DataFrame``; :func:`signals.io.sources.read_source` by default.

    Raises
    ------
    IngestError
        No sources, a source cannot be read or has no rows, a mapped column is missing, a mapping
        targets a non-catalog type, a source is named ``"total"``, or (``strict``) rows were rejected.
    """
    catalog = _catalog_names(touchpoints)
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
    as_of_utc = resolve_as_of(as_of)

    reads: list[int] = []
    parts: list[dict] = []
    reject_parts: list[pd.DataFrame] = []
    for source in sources:
        raw = reader(source)
        if len(raw) == 0:
            raise IngestError(
                f"source {source.name!r} has no rows ({source.kind}: {_location(source)}); "
                f"check {_key(source, 'path' if source.kind != 'sql' else 'query')}"
            )
        accepted, rejects = _map(raw, source, catalog, as_of_utc)
        reads.append(len(raw))
        parts.append(accepted)
        reject_parts.append(rejects)
        del raw

    counts = [len(p["row"]) for p in parts]
    source_code = np.repeat(np.arange(len(sources), dtype=np.int16), counts)
    customer = pd.api.types.union_categoricals(
        [pd.Categorical(p[CUSTOMER_ID].astype("str")) for p in parts], sort_categories=True
    )
    customer_code = customer.codes  # sorted categories: code order = text order (int32 sorts faster)
    ts_ns = np.concatenate([p[TS] for p in parts])
    tp_code = np.concatenate([p[TOUCHPOINT] for p in parts]).astype(np.int32)
    values = np.concatenate([p[VALUE] for p in parts])
    del parts

    tolerance_ns = int(round(float(dedupe_tolerance_seconds) * 1e9))
    order = _sort_order(customer_code, ts_ns, tp_code, len(catalog))  # stable: ties stay in (source, row) order
    if tolerance_ns == 0:  # exact duplicates are neighbours in the output order: one sort does both
        c, t, k = customer_code[order], ts_ns[order], tp_code[order]
        dup_sorted = np.zeros(len(order), dtype=bool)
        dup_sorted[1:] = (c[1:] == c[:-1]) & (t[1:] == t[:-1]) & (k[1:] == k[:-1])
        dup = np.zeros(len(order), dtype=bool)
        dup[order] = dup_sorted
        order = order[~dup_sorted]
    else:
        dup = _duplicates(customer_code, ts_ns, tp_code, tolerance_ns)
        order = order[~dup[order]]
    events = _events_frame(
        pd.Categorical.from_codes(customer.codes[order], categories=customer.categories),
        ts_ns[order], tp_code[order], values[order], source_code[order], catalog, names,
    )

    rejects = pd.concat(reject_parts, ignore_index=True) if any(len(r) for r in reject_parts) else _empty_rejects()
    report = _report(names, reads, rejects, np.bincount(source_code[~dup], minlength=len(names)),
                     np.bincount(source_code[dup], minlength=len(names)))
    result = IngestResult(events=events, rejects=rejects, report=report, as_of=as_of_utc)
    if strict:
        check_strict(result)
    return result


def _location(source: SourceSettings) -> str:
    return str(source.path) if source.kind != "sql" else str(source.query)


def _report(names: list[str], reads: list[int], rejects: pd.DataFrame, accepted: np.ndarray,
            duplicates: np.ndarray) -> pd.DataFrame:
    by_reason = np.zeros((len(names), len(REASONS)), dtype=np.int64)
    np.add.at(by_reason, (pd.Categorical(rejects["source"], categories=names).codes,
                          pd.Categorical(rejects["reason"], categories=list(REASONS)).codes), 1)
    report = pd.DataFrame(
        {"read": reads, "accepted": accepted, "rejected": by_reason.sum(axis=1), "duplicates": duplicates},
        index=pd.Index(names, name="source"),
    ).astype(np.int64)
    report = report.join(pd.DataFrame(by_reason, index=report.index, columns=list(REASONS)))
    report.loc[TOTAL] = report.sum(axis=0)
    report = report.astype(np.int64)
    balance = report["read"] - report["accepted"] - report["rejected"] - report["duplicates"]
    if (balance != 0).any():  # an explicit check, not `assert`: it must hold under python -O too
        raise AssertionError(f"ingest row accounting broken (read != accepted + rejected + duplicates):\n{report}")
    return report
