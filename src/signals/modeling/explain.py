"""Reasons in words a sales rep understands: which touches push a customer's score up, and the evidence.

Per-row LightGBM contributions (TreeSHAP, in log-odds) are summed by the touchpoint slot of the
feature name (``freq__webinar__30d``, ``recency__webinar__days`` and ``temp__webinar__hl30d`` all
belong to ``webinar``; the all-touch families to ``overall``; account attributes to their
column). The groups that raise the score most (for churn: the risk) are the reasons, strongest
first; a group that lowers the score is never a reason.

Each reason is worded from the customer's own touches, in counts and days, never from a
feature's internals (no temperatures, no half-lives). The strongest feature of the group decides
which evidence is shown:

- a count, a temperature or a value: ``"3 webinars in the last 30 days (usually 0.2 a month)"``
  (``usually``: the customer's own rate before that window, per 30 days), or when there was none
  in the window, ``"no sales visit for 140 days (usually 1 a month)"``;
- a recency: ``"document request 2 days ago"``, ``"sales visit yesterday"``, ``"no sales visit
  for 140 days"``, ``"no seminar yet"``;
- all touches together: ``"12 touches in the last 30 days (usually 3 a month)"``, ``"no touch for
  75 days"``, ``"5 touches in the last 90 days (21 in the 90 days before)"``, ``"first touch 40 days ago"``;
- an attribute: ``"segment is Enterprise"``.

Days are whole days, rounded down; a rate has one decimal (``0.25`` -> ``0.2``, ``1.0`` -> ``1``).

>>> from signals.settings import load_settings
>>> catalog = load_settings().catalog
>>> word_count("webinar", 3, 30, 0.04, catalog=catalog)
'3 webinars in the last 30 days (usually 0 a month)'
>>> word_recency("doc_request", 2.7, catalog=catalog)
'document request 2 days ago'
>>> word_recency("sales_visit", 140.2, catalog=catalog, usual=1.0)
'no sales visit for 140 days (usually 1 a month)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from signals.features.names import parse_feature_name
from signals.schemas import CUSTOMER_ID, CUTOFF
from signals.settings import Touchpoint, load_settings  # noqa: F401  (load_settings: doctest)

__all__ = [
    "OVERALL",
    "grouped_contributions",
    "group_of",
    "reasons",
    "word_count",
    "word_recency",
]

OVERALL = "overall"
_ALL_SLOTS = {"all", "customer", "company", "prior", "learned"}
_MAX_KEY = (1 << 17) - 1

# evidence forms
_COUNT, _NONE_FOR, _NONE_YET, _AGO, _FALLING, _TENURE, _ATTRIBUTE, _GROUP_COUNT, _FEW = range(9)


def group_of(feature: str) -> str:
    """The reason group of a feature: its touchpoint, ``overall`` for the all-touch families,
    or ``attribute:<column>`` for static attributes."""
    name = parse_feature_name(feature)
    if name.family == "static":
        return f"attribute:{name.touchpoint}"
    if name.touchpoint in _ALL_SLOTS:
        return OVERALL
    return name.touchpoint


# --------------------------------------------------------------------------------------------
# wording (one function per evidence form; the vectorised path calls them once per distinct text)


def _noun(touchpoint: str | None, count: float, catalog: Mapping[str, Touchpoint]) -> str:
    if touchpoint is None:
        return "touch" if count == 1 else "touches"
    tp = catalog.get(touchpoint)
    if tp is not None:
        return tp.noun(touchpoint, count)
    word = touchpoint.replace("_", " ")
    return word if count == 1 else word + "s"


def _rate(per_month: float) -> str:
    """One decimal, without a trailing ``.0``: 0.04 -> '0', 0.25 -> '0.2', 1.0 -> '1', 12.34 -> '12.3'."""
    text = f"{math.floor(per_month * 10 + 0.5) / 10:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _usual(usual: float | None) -> str:
    return "" if usual is None or not math.isfinite(usual) else f" (usually {_rate(usual)} a month)"


def word_count(touchpoint: str | None, count: int, window_days: int, usual: float | None = None, *,
               catalog: Mapping[str, Touchpoint]) -> str:
    """``"3 webinars in the last 30 days (usually 0.2 a month)"``; ``touchpoint=None`` for all touches."""
    return f"{count} {_noun(touchpoint, count, catalog)} in the last {window_days} days{_usual(usual)}"


def word_recency(touchpoint: str | None, days: float | None, *, catalog: Mapping[str, Touchpoint],
                 usual: float | None = None, recent_days: int = 14) -> str:
    """``"document request 2 days ago"`` up to ``recent_days``, else ``"no sales visit for 140 days"``;
    ``"no seminar yet"`` when there never was one (``days`` None or NaN)."""
    noun = _noun(touchpoint, 1, catalog)
    if days is None or not math.isfinite(days):
        return f"no {noun} yet"
    whole = int(math.floor(days))
    if whole <= recent_days:
        when = "today" if whole == 0 else "yesterday" if whole == 1 else f"{whole} days ago"
        return f"{'last touch' if touchpoint is None else noun} {when}"
    return f"no {noun} for {whole} days{_usual(usual)}"


# --------------------------------------------------------------------------------------------
# contributions


def grouped_contributions(
    model,
    X: pd.DataFrame,
    groups: list[str],
    *,
    chunk_rows: int = 100_000,
    threads: int | None = None,
    matrix: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-row contributions summed by group, and the strongest feature of each group.

    The booster's per-row TreeSHAP contributions (:class:`signals.modeling.shap.TreeShap`,
    equal to LightGBM's ``pred_contrib``) are computed in chunks of ``chunk_rows`` rows,
    ``threads`` chunks at a time, and reduced to groups at once (never an ``n x features``
    matrix). Returns ``by_group`` ``(n, G)`` float32, ``strongest`` ``(n, G)`` int16 (the
    feature index of the member with the largest contribution) and the group names (``G``,
    sorted).
    """
    features = list(model.feature_names_)
    names, code = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(code, kind="stable")
    starts = np.searchsorted(code[order], np.arange(len(names)))
    ends = np.append(starts[1:], len(features))
    n = len(matrix) if matrix is not None else len(X)
    by_group = np.zeros((n, len(names)), dtype=np.float32)
    strongest = np.zeros((n, len(names)), dtype=np.int16)

    def reduce(start: int, contrib: np.ndarray) -> None:
        stop = start + len(contrib)
        permuted = contrib[:, order]
        by_group[start:stop] = np.add.reduceat(permuted, starts, axis=1)
        for g, (s, e) in enumerate(zip(starts, ends, strict=True)):
            strongest[start:stop, g] = order[s + np.argmax(permuted[:, s:e], axis=1)]

    source = matrix if matrix is not None else X[features]
    model.tree_shap().map_chunks(source, reduce, chunk_rows=chunk_rows, threads=threads)
    return by_group, strongest, list(names)


# --------------------------------------------------------------------------------------------
# reasons


class _Evidence:
    """Counts and days per row, read (once per column) from the feature matrix, for the wording."""

    def __init__(self, X: pd.DataFrame, positions: np.ndarray | None = None) -> None:
        self.X = X
        self.positions = positions  # reason row r is row positions[r] of X (all rows when None)
        self._cache: dict[str, np.ndarray | None] = {}
        windows = sorted({int(c[11:-1]) for c in X.columns
                          if c.startswith("freq__all__") and c.endswith("d") and c[11:-1].isdigit()})
        self.recent = min(windows, key=lambda w: (abs(w - 30), w)) if windows else None
        self.longest = max(windows) if windows else None
        tenure = self.col("tenure__all__days")
        self.baseline_days = None
        if self.recent is not None and self.longest is not None and self.longest > self.recent and tenure is not None:
            self.baseline_days = np.clip(np.nan_to_num(tenure - self.recent, nan=0.0), 30.0,
                                         self.longest - self.recent)

    def col(self, name: str) -> np.ndarray | None:
        if name not in self._cache:
            values = self.X[name].to_numpy(dtype=np.float64) if name in self.X.columns else None
            self._cache[name] = values if values is None or self.positions is None else values[self.positions]
        return self._cache[name]

    def rows_of(self, rows: np.ndarray) -> np.ndarray:
        """Positions in ``X`` of reason rows ``rows``."""
        return rows if self.positions is None else self.positions[rows]

    def count(self, slot: str, window: int | None, rows: np.ndarray) -> np.ndarray | None:
        col = self.col(f"freq__{slot}__{window}d") if window is not None else None
        return None if col is None else col[rows]

    def usual(self, slot: str, rows: np.ndarray) -> np.ndarray | None:
        """Touches per 30 days in ``[T - longest, T - recent)``, per day the customer existed."""
        if self.baseline_days is None:
            return None
        longest, recent = self.count(slot, self.longest, rows), self.count(slot, self.recent, rows)
        if longest is None or recent is None:
            return None
        return (longest - recent) / self.baseline_days[rows] * 30.0

    def recency(self, slot: str, rows: np.ndarray) -> np.ndarray | None:
        col = self.col(f"recency__{slot}__days")
        return None if col is None else col[rows]


def _key_part(values: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(values, nan=_MAX_KEY), 0, _MAX_KEY).astype(np.int64)


def _evidence_codes(feature: str, group: str, direction: float, rows: np.ndarray,
                    ev: _Evidence) -> tuple[np.ndarray, ...]:
    """``(form, a, b, c)`` per row for reasons whose strongest feature is ``feature``.

    ``direction`` is the model's overall direction for the feature (+1: higher values raise the
    score). a / b / c are whole counts or days, or rates x 10 (``_MAX_KEY``: unknown / not shown).
    """
    family, slot, window = parse_feature_name(feature)
    m = len(rows)
    unknown = np.full(m, _MAX_KEY, dtype=np.int64)
    if family == "static":
        codes, _ = pd.factorize(ev.X[feature].iloc[ev.rows_of(rows)].astype(str), sort=True)
        return np.full(m, _ATTRIBUTE), codes.astype(np.int64), unknown, unknown
    target = slot if group != OVERALL else "all"
    usual = ev.usual(target, rows)
    usual_code = unknown if usual is None else _key_part(np.floor(usual * 10 + 0.5))

    def absence_or_ago(prefer_absence: bool) -> tuple[np.ndarray, ...]:
        days = ev.recency(target, rows)
        if days is None:
            return np.full(m, _NONE_YET), unknown, unknown, unknown
        whole = _key_part(np.floor(days))
        if prefer_absence:  # long ago raises the score: "no sales visit for 140 days (usually 1 a month)"
            form = np.where(np.isnan(days), _NONE_YET, _NONE_FOR)
            shown = np.where(usual_code > 0, usual_code, _MAX_KEY)
            return form, whole, shown, unknown
        return np.where(np.isnan(days), _NONE_YET, _AGO), whole, unknown, unknown

    if family == "tenure":
        days = ev.col("tenure__all__days")[rows]
        return np.full(m, _TENURE), _key_part(np.floor(days)), unknown, unknown
    if family in ("recency", "overdue"):
        return absence_or_ago(direction > 0)
    if family in ("freq_change", "freq_ratio") and group == OVERALL:
        f = int(window[:-1])
        last = ev.count("all", f, rows)
        change = ev.col(f"freq_change__all__{window}")
        if last is not None and change is not None:
            return np.full(m, _FALLING), _key_part(last), _key_part(last - change[rows]), np.full(m, f)
    if family == "freq" and slot in ("customer", "company"):
        count = ev.col(feature)[rows]
        return (np.full(m, _GROUP_COUNT), _key_part(count), np.full(m, int(window[:-1])),
                np.full(m, 0 if slot == "customer" else 1))
    span = (int(window[:-1]) if family in ("freq", "value", "value_mean", "value_last") and window[:-1].isdigit()
            else ev.recent)
    count = ev.count(target, span, rows)
    if count is None:
        return absence_or_ago(direction < 0)
    none_form, none_a, none_b, _ = absence_or_ago(prefer_absence=True)
    zero = count == 0
    if direction < 0:  # fewer raises the score: "only 1 sales visit in the last 30 days (usually 3 a month)"
        few = np.where(usual_code > _key_part(count * 10), usual_code, _MAX_KEY)
        return (np.where(zero, none_form, _FEW), np.where(zero, none_a, _key_part(count)),
                np.where(zero, none_b, span), np.where(zero, unknown, few))
    return (np.where(zero, none_form, _COUNT), np.where(zero, none_a, _key_part(count)),
            np.where(zero, none_b, span), np.where(zero, unknown, usual_code))


def _word(form: int, slot: str | None, a: int, b: int, c: int, *, catalog, attribute=None) -> str:
    if form in (_COUNT, _FEW):
        text = word_count(slot, a, b, None if c == _MAX_KEY else c / 10, catalog=catalog)
        return "only " + text if form == _FEW else text
    if form == _AGO:
        return word_recency(slot, a, catalog=catalog, recent_days=10**9)
    if form == _NONE_FOR:
        noun = _noun(slot, 1, catalog)
        return f"no {noun} for {a} days{_usual(None if b == _MAX_KEY else b / 10)}"
    if form == _NONE_YET:
        return f"no {_noun(slot, 1, catalog)} yet"
    if form == _FALLING:
        return f"{a} {_noun(None, a, catalog)} in the last {c} days ({b} in the {c} days before)"
    if form == _TENURE:
        return "no touch yet" if a == _MAX_KEY else f"first touch {a} days ago"
    if form == _GROUP_COUNT:
        who = "from the customer" if c == 0 else "by us"
        return f"{a} {_noun(None, a, catalog)} {who} in the last {b} days"
    return f"{attribute[0].replace('_', ' ')} is {attribute[1][a]}"


def reasons(
    model,
    X: pd.DataFrame,
    *,
    catalog: Mapping[str, Touchpoint],
    top: int = 3,
    chunk_rows: int = 100_000,
    threads: int | None = None,
    matrix: np.ndarray | None = None,
    positions: np.ndarray | None = None,
) -> pd.DataFrame:
    """The ``top`` reasons that raise each row's score, strongest first, in plain words.

    ``X`` is the model's feature matrix (``customer_id`` / ``cutoff`` are carried over when
    present). Returns ``reason_1..top`` (text, None when fewer groups raise the score),
    ``reason_group_1..top`` and ``reason_logodds_1..top`` (the group's summed contribution).
    The direction of the evidence ("3 webinars ..." or "only 1 sales visit ...", "document request
    2 days ago" or "no sales visit for 140 days") follows the model: whether higher values of the
    strongest feature raise the score over its trees. Vectorised: each distinct text is formatted once.
    ``matrix`` (``model.tree_shap().matrix(X, positions)``) skips converting ``X`` again;
    ``positions`` explains those rows of ``X`` only (the result has one row per position).
    """
    features = list(model.feature_names_)
    groups = [group_of(f) for f in features]
    by_group, strongest, names = grouped_contributions(model, X, groups, chunk_rows=chunk_rows, threads=threads,
                                                       matrix=matrix)
    direction = model.tree_shap().direction
    if positions is not None and matrix is None:
        matrix = model.tree_shap().matrix(X, positions)
    n = len(positions) if positions is not None else len(X)
    k = min(top, len(names))
    if k < len(names):  # the k largest, then sorted: cheaper than sorting every group
        part = np.argpartition(-by_group, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(part, np.argsort(-np.take_along_axis(by_group, part, axis=1), axis=1,
                                                    kind="stable"), axis=1)
    else:
        order = np.argsort(-by_group, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(n), k)
    picked = order.ravel()
    logodds = by_group[rows, picked]
    valid = logodds > 0
    feature_of = strongest[rows, picked].astype(np.int64)
    ev = _Evidence(X, positions)
    form, a, b, c = (np.zeros(len(rows), dtype=np.int64) for _ in range(4))
    attributes: dict[int, tuple[str, np.ndarray]] = {}
    for f in np.unique(feature_of[valid]):
        sel = np.flatnonzero(valid & (feature_of == f))
        form[sel], a[sel], b[sel], c[sel] = _evidence_codes(features[f], groups[f], direction[f], rows[sel], ev)
        if groups[f].startswith("attribute:"):
            values = X[features[f]].iloc[ev.rows_of(rows[sel])].astype(str)
            attributes[int(f)] = (parse_feature_name(features[f]).touchpoint, np.array(sorted(values.unique())))
    # one key per distinct text: slot (group, or feature for attributes) | form | a | b | c
    slot = np.where(form == _ATTRIBUTE, feature_of + len(names), picked).astype(np.uint64)
    if len(names) + len(features) >= 512:
        raise ValueError("too many features for the reason key (at most 511 groups + features)")
    key = (((((slot << np.uint64(4)) | form.astype(np.uint64)) << np.uint64(17) | a.astype(np.uint64))
            << np.uint64(17) | b.astype(np.uint64)) << np.uint64(17)) | c.astype(np.uint64)
    text = np.full(len(rows), None, dtype=object)
    if valid.any():
        uniques, inverse = np.unique(key[valid], return_inverse=True)
        words = []
        for u in uniques.tolist():
            cc, bb, aa = u & _MAX_KEY, (u >> 17) & _MAX_KEY, (u >> 34) & _MAX_KEY
            ff, sk = (u >> 51) & 15, u >> 55
            if ff == _ATTRIBUTE:
                words.append(_word(ff, None, aa, bb, cc, catalog=catalog, attribute=attributes[sk - len(names)]))
            else:
                group = names[sk]
                words.append(_word(ff, None if group == OVERALL else group, aa, bb, cc, catalog=catalog))
        text[valid] = np.asarray(words, dtype=object)[inverse]
    out: dict[str, object] = {}
    index = X.index if positions is None else pd.RangeIndex(n)
    for name in (CUSTOMER_ID, CUTOFF):
        if name in X.columns:
            out[name] = X[name].array if positions is None else X[name].array[positions]
    text = text.reshape(n, k)
    group_names = np.where(valid, np.asarray(names, dtype=object)[picked], None).reshape(n, k)
    lo = np.where(valid, logodds, 0.0).reshape(n, k)
    empty = np.full(n, None, dtype=object)

    def texts(values: np.ndarray) -> pd.Series:  # object, not inferred as a string dtype (no copy per row)
        return pd.Series(values, index=index, dtype=object, copy=False)

    for r in range(top):
        out[f"reason_{r + 1}"] = texts(text[:, r] if r < k else empty)
        out[f"reason_group_{r + 1}"] = texts(group_names[:, r] if r < k else empty)
        out[f"reason_logodds_{r + 1}"] = lo[:, r] if r < k else np.zeros(n)
    return pd.DataFrame(out, index=index, copy=False)
