"""Exact TreeSHAP for boosters of small trees, vectorised over rows (what LightGBM's ``pred_contrib`` computes).

LightGBM's ``pred_contrib`` walks every tree for every row in C++ and costs about 3 µs per tree
and row here: a million customers and a few hundred trees take many minutes. The models of this
package use small trees (``num_leaves: 7`` by default), and for a small tree the path-dependent
TreeSHAP values of a row depend only on which way the row goes at each of the tree's splits: its
*signature*, one bit per split (at most ``2**6`` signatures for 7 leaves). So, per tree:

1. for every signature and every subset ``S`` of the tree's features, the path-dependent
   expectation ``v(S)`` (follow the row where the split's feature is in ``S``, else average the
   children by their training counts), then the exact Shapley values of ``v`` (features the tree
   does not use are dummies and do not change them): a small table, signature x feature;
2. for the rows, the signature from vectorised comparisons (LightGBM's own decision rules:
   missing values, zero, categorical splits) and one table lookup per feature of the tree.

The result equals ``pred_contrib`` up to floating-point rounding; :meth:`TreeShap.contributions`
checks that on a sample of rows every call and falls back to ``pred_contrib`` if it ever does not.
Boosters whose trees have more than ``max_splits`` splits use ``pred_contrib`` directly.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["TreeShap"]

_ZERO = 1e-35  # LightGBM's kZeroThreshold


@dataclass
class _Split:
    feature: int
    categorical: bool
    threshold: float
    categories: np.ndarray | None
    default_left: bool
    missing: str  # None | Zero | NaN


@dataclass
class _Tree:
    splits: list[_Split]
    features: np.ndarray  # the distinct features of the tree (global indices)
    table: np.ndarray     # (2 ** n_splits, n_features) Shapley values per signature
    expected: float       # the tree's expected value (the bias part)
    direction: dict       # feature -> sum over its splits of cover x (E[right] - E[left])


def _parse(node: dict, splits: list, children: list) -> int:
    """DFS-number the splits; returns the node id (>= 0 split, < 0 leaf as ~index into leaves)."""
    if "split_index" not in node:
        children.append(("leaf", float(node["leaf_value"]), float(node["leaf_count"])))
        return ~(len(children) - 1)
    j = len(splits)
    categorical = node["decision_type"] == "=="
    cats = None
    threshold = math.nan
    if categorical:
        cats = np.array([int(c) for c in str(node["threshold"]).split("||")], dtype=np.int64)
    else:
        threshold = float(node["threshold"])
    splits.append([_Split(int(node["split_feature"]), categorical, threshold, cats, bool(node["default_left"]),
                          str(node["missing_type"])), float(node["internal_count"]), None, None])
    splits[j][2] = _parse(node["left_child"], splits, children)
    splits[j][3] = _parse(node["right_child"], splits, children)
    return j


def _table(structure: dict) -> _Tree:
    raw: list = []
    leaves: list = []
    root = _parse(structure, raw, leaves)
    n_splits = len(raw)
    splits = [r[0] for r in raw]
    features = np.array(sorted({s.feature for s in splits}), dtype=np.int64)
    local = {int(f): m for m, f in enumerate(features)}
    n_feat = len(features)
    sigs = np.arange(2 ** n_splits, dtype=np.int64)
    subsets = np.arange(2 ** n_feat, dtype=np.int64)

    def count(node: int) -> float:
        return raw[node][1] if node >= 0 else leaves[~node][2]

    def value(node: int) -> np.ndarray:
        if node < 0:
            return np.full((len(sigs), len(subsets)), leaves[~node][1])
        split, cover, left, right = raw[node]
        vl, vr = value(left), value(right)
        cl, cr = count(left), count(right)
        in_s = ((subsets >> local[split.feature]) & 1).astype(bool)
        goes_left = ((sigs >> node) & 1).astype(bool)
        follow = np.where(goes_left[:, None], vl, vr)
        average = (cl * vl + cr * vr) / (cl + cr)
        return np.where(in_s[None, :], follow, average)

    def mean(node: int) -> float:  # cover-weighted expectation of a subtree
        if node < 0:
            return leaves[~node][1]
        _, _, left, right = raw[node]
        return (count(left) * mean(left) + count(right) * mean(right)) / (count(left) + count(right))

    direction = {}
    for split, cover, left, right in raw:
        if not split.categorical:  # higher values go right: does the right side score higher?
            direction[split.feature] = direction.get(split.feature, 0.0) + cover * (mean(right) - mean(left))

    v = value(root)
    table = np.zeros((len(sigs), n_feat))
    if n_feat:
        size = np.array([bin(s).count("1") for s in subsets])
        weight = np.array([math.factorial(s) * math.factorial(n_feat - s - 1) / math.factorial(n_feat)
                           for s in range(n_feat)])
        for m in range(n_feat):
            without = subsets[((subsets >> m) & 1) == 0]
            table[:, m] = (v[:, without | (1 << m)] - v[:, without]) @ weight[size[without]]
    expected = float(v[0, 0]) if n_feat else float(v[0, 0])
    return _Tree(splits, features, table, expected, direction)


def _goes_left(split: _Split, x: np.ndarray, nan: np.ndarray) -> np.ndarray:
    """LightGBM's decision at one split for a column of values (tree.h NumericalDecision /
    CategoricalDecision)."""
    if split.categorical:
        if split.missing == "NaN":
            ok = ~nan
            values = np.where(nan, -1, x)
        else:
            values = np.where(nan, 0.0, x)
            ok = np.ones(len(x), dtype=bool)
        as_int = values.astype(np.int64)
        return ok & (as_int >= 0) & np.isin(as_int, split.categories)
    if split.missing == "NaN":
        return (x <= split.threshold) | (nan & split.default_left)
    x0 = np.where(nan, 0.0, x) if nan.any() else x
    if split.missing == "Zero":
        zero = np.abs(x0) <= _ZERO
        return np.where(zero, split.default_left, x0 <= split.threshold)
    return x0 <= split.threshold


class TreeShap:
    """Per-row TreeSHAP contributions of a LightGBM booster (see the module docstring).

    Parameters
    ----------
    booster : lightgbm.Booster
    num_iteration : int, optional
        Trees to use (as in ``Booster.predict``).
    max_splits : int
        Trees with more splits than this make the booster use ``pred_contrib`` instead.
    """

    def __init__(self, booster, num_iteration: int | None = None, max_splits: int = 8) -> None:
        self.booster = booster
        self.num_iteration = num_iteration
        dump = booster.dump_model(num_iteration=num_iteration or -1)
        self.feature_names = list(dump["feature_names"])
        self.pandas_categorical = dump.get("pandas_categorical")
        infos = dump["tree_info"]
        self.fast = dump.get("num_tree_per_iteration", 1) == 1 and all(
            t["num_leaves"] - 1 <= max_splits for t in infos)
        self.trees = [_table(t["tree_structure"]) for t in infos] if self.fast else []
        self.checked = 0
        direction = np.zeros(len(self.feature_names))
        for tree in self.trees:
            for f, d in tree.direction.items():
                direction[f] += d
        #: per feature: +1 when higher values raise the score overall, -1 when they lower it, 0 unknown
        self.direction = np.sign(direction)

    def matrix(self, X: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
        """The float64 matrix LightGBM itself predicts from (categoricals as its codes, as
        ``lightgbm.basic._data_from_pandas`` makes them), column by column in Fortran order.

        ``rows`` (positions) takes those rows only, without copying the frame first.
        ``booster.predict`` on it gives the same scores as on ``X``; pass it to
        :meth:`map_chunks` to convert a frame once for both.
        """
        n = len(X) if rows is None else len(rows)
        out = np.empty((n, len(self.feature_names)), order="F")
        categories = iter(self.pandas_categorical or [])
        for j, name in enumerate(self.feature_names):
            column = X[name]
            if isinstance(column.dtype, pd.CategoricalDtype):  # every categorical column, in order
                wanted = next(categories)
                if list(column.cat.categories) != list(wanted):
                    column = column.cat.set_categories(wanted)
                codes = column.cat.codes.to_numpy()
                codes = codes if rows is None else codes[rows]
                values = codes.astype(np.float64)
                values[codes < 0] = np.nan
            else:
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
                values = values if rows is None else values[rows]
            out[:, j] = values
        return out

    def _fast(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        data = np.asfortranarray(X if isinstance(X, np.ndarray) else self.matrix(X), dtype=np.float64)
        n = len(data)
        out = np.zeros((n, len(self.feature_names)), order="F")
        nan = np.isnan(data)
        for tree in self.trees:
            sig = np.zeros(n, dtype=np.int64)
            for j, split in enumerate(tree.splits):
                col = split.feature
                sig |= _goes_left(split, data[:, col], nan[:, col]).astype(np.int64) << j
            for m, f in enumerate(tree.features):
                out[:, f] += tree.table[:, m][sig]
        return out

    def _reference(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        data = X if isinstance(X, np.ndarray) else X[self.feature_names]
        values = self.booster.predict(data, pred_contrib=True, num_iteration=self.num_iteration)
        return np.asarray(values)[:, :len(self.feature_names)]

    def _verified(self, X: pd.DataFrame | np.ndarray, check_rows: int) -> bool:
        """Compare the fast path with ``pred_contrib`` on the first rows; switch to it on a difference."""
        if not self.fast:
            return False
        head = X[:check_rows] if isinstance(X, np.ndarray) else X.iloc[:check_rows]
        if not np.allclose(self._fast(head), self._reference(head), rtol=1e-7, atol=1e-9):
            warnings.warn("fast TreeSHAP differs from LightGBM's pred_contrib on this booster: using pred_contrib",
                          RuntimeWarning, stacklevel=3)
            self.fast = False
            return False
        self.checked += len(head)
        return True

    def map_chunks(self, X: pd.DataFrame | np.ndarray, fn: Callable[[int, np.ndarray], None], *,
                   chunk_rows: int = 100_000,
                   threads: int | None = None, check_rows: int = 64) -> None:
        """Call ``fn(start, contributions)`` for each chunk of ``chunk_rows`` rows of ``X``
        (a frame, or its :meth:`matrix`).

        ``contributions`` is the chunk's ``(rows, n_features)`` log-odds contributions (no bias
        column). Chunks run in ``threads`` threads (NumPy releases the GIL), so ``fn`` must only
        write its own rows. The first ``check_rows`` rows are compared with LightGBM's
        ``pred_contrib`` first; on a difference every chunk uses ``pred_contrib`` (and it warns).
        """
        n = len(X)
        fast = n > 0 and self._verified(X, check_rows)
        compute = self._fast if fast else self._reference

        def one(start: int) -> None:
            part = X[start:start + chunk_rows] if isinstance(X, np.ndarray) else X.iloc[start:start + chunk_rows]
            fn(start, compute(part))

        starts = list(range(0, n, chunk_rows))
        workers = max(1, min(threads or os.cpu_count() or 1, len(starts)))
        if workers == 1:
            for start in starts:
                one(start)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(one, starts))

    def contributions(self, X: pd.DataFrame, *, chunk_rows: int = 100_000, threads: int | None = None,
                      check_rows: int = 64) -> np.ndarray:
        """``(n, n_features)`` log-odds contributions (no bias column), rows in ``X``'s order
        (see :meth:`map_chunks`)."""
        out = np.empty((len(X), len(self.feature_names)))

        def keep(start: int, values: np.ndarray) -> None:
            out[start:start + len(values)] = values

        self.map_chunks(X, keep, chunk_rows=chunk_rows, threads=threads, check_rows=check_rows)
        return out
