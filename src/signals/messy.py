"""Messy raw exports of a simulated CRM: the test bed of ingestion.

:func:`messy_sources` turns a :class:`~signals.simulate.SimulatedWorld` (or any canonical events
table) into the raw exports of the systems in ``settings.ingest.sources`` (the demo: an SFA CSV, a
marketing Parquet file, a support database) with the defects ingestion has to handle: raw
activity names in two languages, local naive timestamps, text amounts, cross-source duplicates
and bad rows of every reason it plants (:data:`REJECT_REASONS`). Ingesting the frames gives back
the original events exactly (tests check it), so ingestion is measured against a known answer.

The reason codes are ingestion's own (:data:`signals.ingest.REASONS`): this module only chooses
which of them it can plant, it never restates them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from signals.ingest import REASONS as INGEST_REASONS
from signals.schemas import CUSTOMER_ID, SOURCE, TOUCHPOINT, TS, VALUE, check_events
from signals.settings import Settings, SourceSettings
from signals.simulate import SimulatedWorld

__all__ = ["REJECT_REASONS", "messy_sources"]

#: The defects :func:`messy_sources` knows how to plant (ingestion's local-time reasons
#: ``nonexistent_local_time`` / ``ambiguous_local_time`` are never planted: the exports keep
#: every instant exactly).
_PLANTABLE = frozenset({"missing_customer_id", "unparseable_ts", "unknown_touchpoint",
                        "unparseable_value", "negative_value", "future_ts"})
#: Reject reasons :func:`messy_sources` plants, in the order ingestion checks them.
REJECT_REASONS: tuple[str, ...] = tuple(reason for reason in INGEST_REASONS if reason in _PLANTABLE)
if set(REJECT_REASONS) != _PLANTABLE:  # pragma: no cover - ingestion renamed a reason code
    raise ImportError(f"signals.ingest.REASONS lacks planted reason(s) {sorted(_PLANTABLE - set(REJECT_REASONS))}")

_UNKNOWN_NAMES = ("Trade show booth", "展示会", "Lunch meeting", "Survey answered", "Chat", "その他")
_BAD_VALUES = ("12,0a", "1O000", "7.5.0", "abc円")
_BAD_TS_TEXT = ("not recorded", "yesterday", "2024-13-45", "31.12.2024 25:61")


def _inverse_mapping(src: SourceSettings) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw, canonical in src.touchpoints.items():
        out.setdefault(canonical, []).append(raw)
    return out


def _ts_style(src: SourceSettings) -> str:
    if src.ts_format is not None:
        return "format"
    return "datetime" if src.kind == "parquet" else "iso"


def _format_ts(ts: pd.Series, src: SourceSettings, business_tz: str) -> pd.Series:
    """Raw timestamps for ``src``: naive local strings, tz-aware datetimes or naive ISO strings."""
    style = _ts_style(src)
    if style == "datetime":
        return ts.dt.tz_convert(business_tz)
    local = ts.dt.tz_convert(src.timezone).dt.tz_localize(None)
    fmt = src.ts_format if style == "format" else "%Y-%m-%d %H:%M:%S"
    text = local.dt.strftime(fmt)
    # the export promises the exact instant back: check the format keeps seconds and no local
    # time is ambiguous or nonexistent in the source's zone
    back = pd.to_datetime(text, format=fmt, errors="coerce").dt.tz_localize(
        src.timezone, ambiguous="NaT", nonexistent="NaT")
    lost = ~(back.dt.tz_convert("UTC") == ts).fillna(False).to_numpy(dtype=bool)
    if lost.any():
        raise ValueError(
            f"source {src.name!r}: {int(lost.sum())} event time(s) do not survive the raw format "
            f"(ts_format {fmt!r}, time zone {src.timezone}: ambiguous/nonexistent local times or no seconds)")
    return text.astype(object)


def _format_values(values: np.ndarray, kind: str) -> np.ndarray:
    if kind == "text":
        return np.array(["" if v == 0 else (str(int(v)) if float(v).is_integer() else repr(float(v)))
                         for v in values], dtype=object)
    return values.astype(float)


def messy_sources(world_or_events: SimulatedWorld | pd.DataFrame, settings: Settings, *, seed: int,
                  duplicate_fraction: float = 0.3,
                  bad_rows_per_reason: int = 4) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Turn a world into the raw exports of the systems in ``settings.ingest.sources`` (no I/O).

    Every event goes to the source named by its ``source`` column, with that source's raw
    column names, a random raw activity name among those its mapping sends to the event's
    touchpoint, and its timestamp in the source's style: naive local strings in ``ts_format`` and
    ``timezone`` when a format is given (the demo's SFA CSV), tz-aware datetimes in
    ``settings.timezone`` for Parquet (marketing), naive ISO strings (``%Y-%m-%d %H:%M:%S``) in
    the source's time zone otherwise (the support database). Text amounts are integers (or the
    shortest exact decimal) and empty for events of value 0, so values round-trip exactly.

    Messes added:

    * cross-source duplicates: ``duplicate_fraction`` of the events whose touchpoint another
      source can also name (the demo: seminars, also logged in SFA as "Seminar attended") are
      copied into that source at the same instant;
    * ``bad_rows_per_reason`` bad rows for each of :data:`REJECT_REASONS`, each a copy of a clean
      row with exactly one defect, spread over the sources that can hold the defect
      (``unparseable_ts`` needs a text time column, ``unparseable_value`` a text value column,
      ``negative_value`` any value column).

    Ingesting the frames (checks in the order missing_customer_id, unparseable_ts, local time,
    unknown_touchpoint, unparseable_value, negative_value, future_ts; dedupe on
    ``(customer_id, ts, touchpoint)`` keeping the first source in config order) gives back the
    original events exactly, except that ``manifest["source_changes"]`` events carry the source
    of their duplicate (the one earlier in config order).

    Parameters
    ----------
    world_or_events : SimulatedWorld or pandas.DataFrame
        The world, or a canonical events table whose ``source`` values name configured sources.
    settings : Settings
        Needs ``ingest.sources`` (e.g. ``configs/demo.yaml``) and ``ingest.as_of`` (a naive value
        is a wall-clock time in ``settings.timezone``; future rows are placed after it; every
        clean event must be at or before it).
    seed : int
        Seed of the raw names, duplicates, bad rows and row order.

    Returns
    -------
    frames : dict of str to pandas.DataFrame
        One raw frame per configured source, keyed by source name.
    manifest : dict
        JSON-serialisable counts: ``events``, per-source ``rows`` / ``clean_rows`` /
        ``duplicate_rows`` / ``bad_rows`` / ``bad_rows_by_reason``, total ``bad_rows`` per reason
        (every reason listed), ``cross_source_duplicates``, ``duplicates`` (by touchpoint and
        sources), ``source_changes`` and ``expected`` (events, rejects, duplicates dropped).

    Raises
    ------
    ValueError
        No sources or no ``as_of`` configured, an event's source is not configured, a source
        cannot name one of its touchpoints or hold its values, an event lies after ``as_of``, or
        an event time does not survive a source's time format.
    """
    events = world_or_events.events if isinstance(world_or_events, SimulatedWorld) else \
        check_events(world_or_events, settings.catalog)
    sources = {s.name: s for s in settings.ingest.sources}
    if not sources:
        raise ValueError("messy_sources needs ingest.sources (see configs/demo.yaml)")
    if settings.ingest.as_of is None:
        raise ValueError("messy_sources needs ingest.as_of: future rows are placed after it")
    if not 0 <= duplicate_fraction <= 1:
        raise ValueError("duplicate_fraction must lie in [0, 1]")
    if bad_rows_per_reason < 0:
        raise ValueError("bad_rows_per_reason must be >= 0")
    as_of = pd.Timestamp(settings.ingest.as_of)  # naive: wall-clock time in settings.timezone
    as_of = (as_of.tz_localize(settings.timezone) if as_of.tzinfo is None else as_of).tz_convert("UTC")
    order = list(sources)
    unknown = sorted(set(events[SOURCE].astype(str).unique()) - set(order))
    if unknown:
        raise ValueError(f"events come from source(s) {unknown} that ingest.sources does not define ({order})")
    if len(events) and events[TS].max() > as_of:
        raise ValueError(f"events run until {events[TS].max()}, after ingest.as_of {as_of}: they would be rejected")
    rng = np.random.default_rng(seed)
    inverse = {name: _inverse_mapping(src) for name, src in sources.items()}

    src_of_event = events[SOURCE].astype(str).to_numpy()
    tp_of_event = events[TOUCHPOINT].astype(str).to_numpy()
    # rows per target source: (event index, is_duplicate)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in order}
    dup_rows: dict[str, list[np.ndarray]] = {name: [] for name in order}
    kept_rank = np.array([order.index(s) for s in src_of_event], dtype=np.int64) if len(events) else np.empty(0, np.int64)
    original_rank = kept_rank.copy()
    duplicates = []
    for name in order:
        mine = np.flatnonzero(src_of_event == name)
        missing = sorted(set(tp_of_event[mine]) - set(inverse[name]))
        if missing:
            raise ValueError(f"source {name!r} has no raw activity name for touchpoint(s) {missing}; add them to its touchpoints mapping")
        rows[name].append(mine)
    for name in order:
        for tp in sorted(set(tp_of_event[src_of_event == name])):
            for other in order:
                if other == name or tp not in inverse[other]:
                    continue
                pool = np.flatnonzero((src_of_event == name) & (tp_of_event == tp))
                chosen = np.sort(pool[rng.random(len(pool)) < duplicate_fraction])
                if not len(chosen):
                    continue
                dup_rows[other].append(chosen)
                kept_rank[chosen] = np.minimum(kept_rank[chosen], order.index(other))
                duplicates.append({"touchpoint": tp, "original_source": name, "copy_source": other,
                                   "rows": len(chosen)})

    frames: dict[str, pd.DataFrame] = {}
    per_source: dict[str, dict[str, Any]] = {}
    clean_frames: dict[str, pd.DataFrame] = {}
    for name in order:
        src = sources[name]
        idx_clean = np.concatenate(rows[name])
        idx_dup = np.concatenate(dup_rows[name]) if dup_rows[name] else np.empty(0, dtype=np.int64)
        idx = np.concatenate([idx_clean, idx_dup])
        sub = events.iloc[idx]
        raw_names = np.empty(len(idx), dtype=object)
        tps = tp_of_event[idx]
        u = rng.random(len(idx))
        for tp in np.unique(tps):
            names = inverse[name][tp]
            at = tps == tp
            raw_names[at] = np.array(names, dtype=object)[np.minimum((u[at] * len(names)).astype(int), len(names) - 1)]
        cols = src.columns
        frame = pd.DataFrame({
            cols["customer_id"]: sub[CUSTOMER_ID].astype(str).to_numpy(dtype=object),
            cols["ts"]: _format_ts(sub[TS].reset_index(drop=True), src, settings.timezone).array,
            cols["touchpoint"]: raw_names,
        })
        if "value" in cols:
            frame[cols["value"]] = _format_values(sub[VALUE].to_numpy(), "text" if src.kind == "csv" else "number")
        elif (sub[VALUE] != 0).any():
            raise ValueError(f"source {name!r} has events with values but no value column mapping")
        frame["_order"] = sub[TS].array.asi8
        clean_frames[name] = frame
        per_source[name] = {"kind": src.kind, "clean_rows": int(len(idx_clean)), "duplicate_rows": int(len(idx_dup))}

    # bad rows, one defect each, spread round-robin over the sources that can hold the defect
    def can_hold(name: str, reason: str) -> bool:
        src = sources[name]
        if len(clean_frames[name]) == 0:
            return False
        if reason == "unparseable_ts":
            return _ts_style(src) != "datetime"
        if reason == "unparseable_value":
            return "value" in src.columns and src.kind == "csv"
        if reason == "negative_value":
            return "value" in src.columns
        return True

    bad_by_source = {name: dict.fromkeys(REJECT_REASONS, 0) for name in order}
    bad_frames: dict[str, list[pd.DataFrame]] = {name: [] for name in order}
    for reason in REJECT_REASONS:
        holders = [name for name in order if can_hold(name, reason)]
        for i in range(bad_rows_per_reason if holders else 0):
            name = holders[i % len(holders)]
            src, clean = sources[name], clean_frames[name]
            cols = src.columns
            if reason in ("negative_value", "unparseable_value"):
                has_value = np.flatnonzero(events[VALUE].to_numpy()[np.concatenate(rows[name])] > 0)
                pick = int(has_value[rng.integers(len(has_value))]) if len(has_value) else int(rng.integers(len(clean)))
            else:
                pick = int(rng.integers(len(clean)))
            row = clean.iloc[[pick]].copy()
            if reason == "missing_customer_id":
                row[cols["customer_id"]] = None
            elif reason == "unparseable_ts":
                row[cols["ts"]] = _BAD_TS_TEXT[int(rng.integers(len(_BAD_TS_TEXT)))]
            elif reason == "unknown_touchpoint":
                choices = [x for x in _UNKNOWN_NAMES if x not in src.touchpoints]
                row[cols["touchpoint"]] = choices[int(rng.integers(len(choices)))]
            elif reason == "future_ts":
                later = as_of + pd.Timedelta(seconds=int(rng.integers(3600, 90 * 86_400)))
                row[cols["ts"]] = _format_ts(pd.Series([later]).astype("datetime64[ns, UTC]"), src, settings.timezone).array
            elif reason == "negative_value":
                amount = float(events[VALUE].to_numpy()[np.concatenate(rows[name])[pick]]) or 5_000.0
                row[cols["value"]] = _format_values(np.array([-amount]), "text" if src.kind == "csv" else "number")
            elif reason == "unparseable_value":
                row[cols["value"]] = _BAD_VALUES[int(rng.integers(len(_BAD_VALUES)))]
            bad_frames[name].append(row)
            bad_by_source[name][reason] += 1

    for name in order:
        clean = clean_frames[name]
        bad = pd.concat(bad_frames[name], ignore_index=True) if bad_frames[name] else clean.iloc[:0]
        if len(bad):
            lo, hi = int(clean["_order"].min()), int(clean["_order"].max()) + 1
            bad["_order"] = rng.integers(lo, hi, len(bad))
        frame = pd.concat([clean, bad], ignore_index=True)
        frame = frame.iloc[np.argsort(frame["_order"].to_numpy(), kind="stable")].drop(columns="_order")
        frames[name] = frame.reset_index(drop=True)
        per_source[name].update(rows=len(frame), bad_rows=int(sum(bad_by_source[name].values())),
                                bad_rows_by_reason=bad_by_source[name])

    bad_total = {reason: sum(bad_by_source[n][reason] for n in order) for reason in REJECT_REASONS}
    n_dup = sum(d["rows"] for d in duplicates)
    manifest = {
        "seed": seed,
        "as_of": as_of.isoformat(),
        "events": len(events),
        "sources": per_source,
        "bad_rows": bad_total,
        "cross_source_duplicates": n_dup,
        "duplicates": duplicates,
        "source_changes": int((kept_rank != original_rank).sum()),
        "expected": {"events": len(events), "rejects": int(sum(bad_total.values())), "duplicates_dropped": n_dup},
    }
    return frames, manifest
