"""Time-ordered splits by cutoff: train, then validation, then test, at several origins.

A split mimics deployment. Standing at the first test cutoff ``T0``, only labels whose window
has closed are known, so with the embargo (``"full"``, the default) a cutoff ``T`` is used for
fitting only if ``T + horizon <= T0``, and for training only if ``T + horizon <=`` the first
validation cutoff. ``"test"`` keeps only the first rule (training labels may overlap the
validation period, never the test period); ``"none"`` drops both (not an honest test).

>>> import pandas as pd
>>> cutoffs = pd.date_range("2025-01-01", periods=10, freq="MS", tz="UTC")
>>> split = time_split(cutoffs, n_validation=1, n_test=2, horizon_days=60)
>>> [t.strftime("%m") for t in split.train], [t.strftime("%m") for t in split.validation], [t.strftime("%m") for t in split.test]
(['01', '02', '03', '04', '05'], ['07'], ['09', '10'])

A rolling-origin backtest repeats the split at ``n_origins`` test origins, each stepping back by
``n_test`` cutoffs, each with its own embargoed train and validation cutoffs:

>>> origins = rolling_origins(cutoffs, n_origins=2, n_validation=1, n_test=1, horizon_days=60)
>>> [(len(s.train), s.validation[0].strftime("%m"), s.test[0].strftime("%m")) for s in origins]
[(5, '07', '09'), (6, '08', '10')]

When a history is too short for the configured split, :func:`plan_split` finds the largest
honest split that fits (``--auto-split``) and :func:`split_advice` says which settings would make
the configured one fit, with numbers for the data at hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from signals.cutoffs import cutoff_grid
from signals.errors import DataError
from signals.schemas import CUTOFF

__all__ = [
    "EMBARGO_MODES",
    "SplitPlan",
    "TimeSplit",
    "embargo_mode",
    "plan_split",
    "rolling_origins",
    "split_advice",
    "split_fits",
    "time_split",
    "training_grid",
]

EMBARGO_MODES = ("full", "test", "none")


def embargo_mode(embargo: bool | str) -> str:
    """``"full"``, ``"test"`` or ``"none"`` (``True`` / ``False`` are read as full / none)."""
    if isinstance(embargo, bool | np.bool_):
        return "full" if embargo else "none"
    if embargo not in EMBARGO_MODES:
        raise ValueError(f"embargo must be one of {list(EMBARGO_MODES)} (or true / false), got {embargo!r}")
    return str(embargo)


@dataclass(frozen=True)
class TimeSplit:
    """Which cutoffs train, validate (early stopping, calibration, half-life) and test.

    ``embargo``: fitting labels close before the first test cutoff; ``validation_embargo``:
    training labels close before the first validation cutoff (defaults to ``embargo``).
    """

    train: tuple[pd.Timestamp, ...]
    validation: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]
    horizon_days: float
    embargo: bool
    validation_embargo: bool | None = field(default=None)
    key: str = CUTOFF  # the column the parts are read from: ``cutoff``, or ``period`` for custom cutoffs

    def __post_init__(self) -> None:
        if self.validation_embargo is None:
            object.__setattr__(self, "validation_embargo", bool(self.embargo))

    @property
    def mode(self) -> str:
        """The embargo as ``"full"``, ``"test"`` or ``"none"``."""
        if self.embargo:
            return "full" if self.validation_embargo else "test"
        return "none"

    @property
    def origin(self) -> pd.Timestamp:
        """The first test cutoff (names the origin)."""
        return self.test[0]

    def masks(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boolean row masks (train, validation, test) of a frame with a ``cutoff`` (or ``key``) column."""
        cut = frame[self.key]
        return (cut.isin(self.train).to_numpy(), cut.isin(self.validation).to_numpy(), cut.isin(self.test).to_numpy())

    def describe(self) -> dict[str, str]:
        fmt = lambda ts: f"{ts[0]:%Y-%m-%d}..{ts[-1]:%Y-%m-%d} ({len(ts)})"  # noqa: E731
        embargo = {"full": f"{self.horizon_days:g} days before validation and before test",
                   "test": f"{self.horizon_days:g} days before test only",
                   "none": "none"}[self.mode]
        return {"train": fmt(self.train), "validation": fmt(self.validation), "test": fmt(self.test),
                "embargo": embargo}


def _unique(cutoffs) -> list[pd.Timestamp]:
    return sorted(pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(cutoffs))))


def _split_at(unique: list[pd.Timestamp], end: int, n_validation: int, n_test: int, horizon: pd.Timedelta,
              mode: str) -> TimeSplit | None:
    """The split whose test block is ``unique[end - n_test:end]``, or None when it does not fit."""
    if end - n_test < 1:
        return None
    test = unique[end - n_test:end]
    fit = [t for t in unique[:end - n_test] if mode == "none" or t + horizon <= test[0]]
    if len(fit) < n_validation + 1:
        return None
    validation = fit[-n_validation:]
    train = [t for t in fit[:-n_validation] if mode != "full" or t + horizon <= validation[0]]
    if not train:
        return None
    return TimeSplit(tuple(train), tuple(validation), tuple(test), horizon.total_seconds() / 86_400,
                     mode != "none", mode == "full")


def rolling_origins(
    cutoffs: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    *,
    n_origins: int,
    n_validation: int,
    n_test: int,
    horizon_days: float,
    embargo: bool | str = True,
) -> list[TimeSplit]:
    """The splits of a rolling-origin backtest, oldest origin first (the last one is the latest).

    Origin ``j`` (0 = latest) tests the ``n_test`` cutoffs that end ``j * n_test`` cutoffs before
    the last one; each origin has its own validation and training cutoffs, embargoed as
    ``embargo`` says. Test blocks do not overlap, so every test cutoff is scored once.

    Raises
    ------
    DataError
        The earliest origin leaves no training cutoff (the message says why in numbers; see
        :func:`split_advice` for what to change).
    """
    mode = embargo_mode(embargo)
    unique = _unique(cutoffs)
    horizon = pd.Timedelta(days=horizon_days)
    splits = []
    for j in range(n_origins):
        split = _split_at(unique, len(unique) - j * n_test, n_validation, n_test, horizon, mode)
        if split is None:
            raise DataError(_too_few(unique, n_origins, n_validation, n_test, horizon_days, mode))
        splits.append(split)
    return splits[::-1]


def time_split(
    cutoffs: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    *,
    n_validation: int,
    n_test: int,
    horizon_days: float,
    embargo: bool | str = True,
) -> TimeSplit:
    """Split distinct cutoffs in time: the latest ``n_test`` test, the ``n_validation`` before them
    validate, the earlier ones train (with an embargo of one label horizon between the parts).

    The one-origin case of :func:`rolling_origins`. Raises :class:`~signals.errors.DataError`
    (a ``ValueError``) when too few cutoffs are left for training.
    """
    return rolling_origins(cutoffs, n_origins=1, n_validation=n_validation, n_test=n_test,
                           horizon_days=horizon_days, embargo=embargo)[0]


def _needed(unique: list[pd.Timestamp], n_origins: int, n_validation: int, n_test: int,
            horizon_days: float, mode: str) -> int:
    """The fewest cutoffs (spaced like ``unique``) that hold the split, for the message."""
    if len(unique) < 2:
        return n_origins * n_test + n_validation + 1
    step = float(np.median(np.diff(pd.DatetimeIndex(unique).asi8))) / 86_400e9
    gap = int(np.ceil(horizon_days / step - 1e-9)) if mode != "none" else 1
    val_gap = gap if mode == "full" else 1
    return n_origins * n_test + (gap - 1) + n_validation + val_gap


def _too_few(unique: list[pd.Timestamp], n_origins: int, n_val: int, n_test: int, horizon: float, mode: str) -> str:
    span = f" ({unique[0]:%Y-%m-%d}..{unique[-1]:%Y-%m-%d})" if unique else ""
    embargo = {"full": f" and the {horizon:g}-day embargo before validation and before test",
               "test": f" and the {horizon:g}-day embargo before test", "none": ""}[mode]
    origins = f"{n_origins} backtest origin(s) of {n_test} test cutoff(s)" if n_origins > 1 else f"{n_test} test cutoff(s)"
    return (f"{len(unique)} cutoffs{span} leave no training cutoff for {origins}, {n_val} validation cutoff(s)"
            f"{embargo}: that needs about {_needed(unique, n_origins, n_val, n_test, horizon, mode)} cutoffs")


# ---------------------------------------------------------------------------------------------
# fitting the split to the history there is


def training_grid(first_event: pd.Timestamp, data_end: pd.Timestamp, *, horizon_days: float, frequency: str,
                  timezone: str, end=None, n_cutoffs: int | None = None) -> pd.DatetimeIndex:
    """The calendar cutoffs a training grid can use: after the first event, with the label window
    ``[T, T + horizon)`` closed by ``data_end`` (and not after ``end``); the latest ``n_cutoffs``.

    The same rule as :func:`signals.cutoffs.training_cutoffs`, without the customers.
    """
    from signals.cutoffs import as_of_instant

    latest = data_end - pd.Timedelta(days=horizon_days)
    if end is not None:
        latest = min(latest, as_of_instant(end, timezone))
    if latest <= first_event:
        return pd.DatetimeIndex([], tz="UTC")
    grid = cutoff_grid(first_event, latest.tz_convert(timezone), frequency=frequency, timezone=timezone)
    grid = grid[(grid > first_event) & (grid <= latest)]
    return grid if n_cutoffs is None else grid[-n_cutoffs:]


@dataclass(frozen=True)
class SplitPlan:
    """A split configuration: how many cutoffs, origins, validation and test cutoffs, which embargo."""

    n_cutoffs: int
    n_origins: int
    n_validation: int
    n_test: int
    embargo: str
    horizon_days: float
    frequency: str
    margin_days: float = 0.0  # custom cutoffs: the embargo also covers one period (their spread inside it)

    def overrides(self, task: str) -> list[str]:
        """The ``--set`` overrides that give this plan."""
        return [f"cutoffs.n_training={self.n_cutoffs}", f"cutoffs.frequency={self.frequency}",
                f"model.backtest_origins={self.n_origins}", f"model.validation_cutoffs={self.n_validation}",
                f"model.test_cutoffs={self.n_test}", f"model.embargo={self.embargo}",
                f"labels.{task}.horizon_days={self.horizon_days:g}"]

    def describe(self) -> str:
        embargo = {"full": "embargo before validation and test", "test": "embargo before test only",
                   "none": "no embargo"}[self.embargo]
        unit = "period" if self.margin_days else "cutoff"
        margin = (f" (custom cutoffs: the embargo adds {self.margin_days:.0f} days, one period)"
                  if self.margin_days else "")
        return (f"{self.n_cutoffs} {self.frequency} {unit}s, {self.n_origins} origin(s) x {self.n_test} test {unit}(s), "
                f"{self.n_validation} validation {unit}(s), {embargo}, {self.horizon_days:g}-day horizon{margin}")


def split_fits(grid: pd.DatetimeIndex, plan: SplitPlan) -> bool:
    """Whether ``plan`` fits the latest ``plan.n_cutoffs`` cutoffs of ``grid`` (every origin has a training cutoff)."""
    unique = list(grid[-plan.n_cutoffs:])
    horizon = pd.Timedelta(days=plan.horizon_days + plan.margin_days)
    end = len(unique) - (plan.n_origins - 1) * plan.n_test  # the earliest origin is the tightest
    return _split_at(unique, end, plan.n_validation, plan.n_test, horizon, plan.embargo) is not None


def plan_split(grid: pd.DatetimeIndex, wanted: SplitPlan, *, honest_only: bool = True) -> SplitPlan | None:
    """The largest split no bigger than ``wanted`` that fits ``grid`` (None if none does).

    Every cutoff of ``grid`` is used. Then, as long as the split does not fit, it gives up, in
    this order: backtest origins (down to 1), validation cutoffs (down to 1), test cutoffs (down
    to 1), and last the embargo before validation (``full`` -> ``test``). The embargo before the
    test cutoffs is never dropped, so no label window of a fitting cutoff reaches the test period.
    The horizon and the cutoff frequency are the task's definition and are never changed here.
    """
    modes = [wanted.embargo] + (["test"] if wanted.embargo == "full" else [])
    if not honest_only and wanted.embargo != "none":
        modes.append("none")
    for mode in modes:
        for n_test in range(wanted.n_test, 0, -1):
            for n_val in range(wanted.n_validation, 0, -1):
                for k in range(wanted.n_origins, 0, -1):
                    plan = replace(wanted, n_cutoffs=len(grid), n_origins=k, n_validation=n_val, n_test=n_test,
                                   embargo=mode)
                    if split_fits(grid, plan):
                        return plan
    return None


def split_advice(
    first_event: pd.Timestamp,
    data_end: pd.Timestamp,
    wanted: SplitPlan,
    *,
    task: str,
    timezone: str,
    end=None,
) -> str:
    """What would make ``wanted`` fit a history from ``first_event`` to ``data_end``, in numbers.

    Lists every single setting that alone makes the split fit (origins, validation or test
    cutoffs, the embargo, the number of cutoffs, the horizon, weekly cutoffs), then what
    ``--auto-split`` would pick and the ``--set`` overrides that give the same split without it.
    """

    def grid_for(horizon: float, frequency: str, n: int | None) -> pd.DatetimeIndex:
        return training_grid(first_event, data_end, horizon_days=horizon + wanted.margin_days, frequency=frequency,
                             timezone=timezone,
                             end=end, n_cutoffs=n)

    grid = grid_for(wanted.horizon_days, wanted.frequency, wanted.n_cutoffs)
    full_grid = grid_for(wanted.horizon_days, wanted.frequency, None)
    options: list[str] = []
    for name, key, lo in (("n_origins", "model.backtest_origins", 1), ("n_validation", "model.validation_cutoffs", 1),
                          ("n_test", "model.test_cutoffs", 1)):
        for value in range(getattr(wanted, name) - 1, lo - 1, -1):
            if split_fits(grid, replace(wanted, **{name: value})):
                options.append(f"{key}={value}")
                break
    if wanted.embargo == "full" and split_fits(grid, replace(wanted, embargo="test")):
        options.append("model.embargo=test (training labels may then overlap the validation period, never the test)")
    if len(full_grid) > len(grid) and split_fits(full_grid, replace(wanted, n_cutoffs=len(full_grid))):
        needed = next(n for n in range(len(grid) + 1, len(full_grid) + 1)
                      if split_fits(full_grid, replace(wanted, n_cutoffs=n)))
        options.append(f"cutoffs.n_training={needed}")
    horizon = _largest_horizon(lambda h: split_fits(grid_for(h, wanted.frequency, wanted.n_cutoffs),
                                               replace(wanted, horizon_days=h)), wanted.horizon_days)
    if horizon is not None:
        options.append(f"labels.{task}.horizon_days={horizon} (changes what the task predicts)")
    if wanted.frequency != "weekly":
        weekly = grid_for(wanted.horizon_days, "weekly", None)
        for n in range(1, len(weekly) + 1):
            plan = replace(wanted, frequency="weekly", n_cutoffs=n)
            if split_fits(weekly, plan):
                options.append(f"cutoffs.frequency=weekly with cutoffs.n_training={n} or more")
                break
    auto = plan_split(full_grid, wanted)
    history = f"{first_event:%Y-%m-%d}..{data_end:%Y-%m-%d}"
    head = (f"the history {history} gives {len(grid)} {wanted.frequency} cutoff(s)"
            + (f" ({grid[0]:%Y-%m-%d}..{grid[-1]:%Y-%m-%d})" if len(grid) else "")
            + f" whose {wanted.horizon_days:g}-day label window closes in the data; they cannot hold "
            + f"{wanted.n_origins} backtest origin(s) x {wanted.n_test} test cutoff(s) and {wanted.n_validation} "
            + "validation cutoff(s) with the embargo "
            + {"full": "before validation and before test", "test": "before test", "none": "off"}[wanted.embargo])
    parts = [head + "."]
    if options:
        parts.append("Any one of these fits this data: " + "; ".join(f"--set {o}" for o in options) + ".")
    if auto is not None:
        same = [o for o, w in zip(auto.overrides(task), wanted.overrides(task), strict=True) if o != w]
        parts.append(f"--auto-split would train with {auto.describe()}"
                     + ("; without it, the same split is " + " ".join(f"--set {o}" for o in same) if same else "")
                     + ".")
    else:
        minimal = replace(wanted, n_origins=1, n_validation=1, n_test=1, embargo="test")
        horizon = _largest_horizon(lambda h: split_fits(grid_for(h, wanted.frequency, None),
                                                   replace(minimal, horizon_days=h,
                                                           n_cutoffs=len(grid_for(h, wanted.frequency, None)))),
                                   wanted.horizon_days)
        hint = (f" with labels.{task}.horizon_days={horizon} or shorter" if horizon is not None
                else ": the history is too short for any honest split of this task")
        parts.append(f"Even the smallest honest split (1 origin, 1 validation and 1 test cutoff, embargo before "
                     f"test) does not fit; it would{hint} (then run with --auto-split).")
    return " ".join(parts)


def _largest_horizon(fits, current: float) -> int | None:
    """The largest whole-day horizon below ``current`` for which ``fits(h)`` holds (None if none)."""
    lo, hi = 1, int(np.ceil(current)) - 1
    if hi < lo or not fits(lo):
        return None
    while lo < hi:  # fits is monotone: a shorter horizon frees cutoffs
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
