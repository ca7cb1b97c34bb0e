"""Time-ordered splits by cutoff: train, then validation, then test.

The split mimics deployment. Standing at the first test cutoff ``T0``, only labels whose window
has closed are known, so with the embargo (the default) a cutoff ``T`` is used for fitting only
if ``T + horizon <= T0``, and for training only if ``T + horizon <`` = the first validation cutoff.
Without it, training labels would peek at outcomes that happen during the test period.

>>> import pandas as pd
>>> cutoffs = pd.date_range("2025-01-01", periods=10, freq="MS", tz="UTC")
>>> split = time_split(cutoffs, n_validation=1, n_test=2, horizon_days=60)
>>> [t.strftime("%m") for t in split.train], [t.strftime("%m") for t in split.validation], [t.strftime("%m") for t in split.test]
(['01', '02', '03', '04', '05'], ['07'], ['09', '10'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from signals.schemas import CUTOFF

__all__ = ["TimeSplit", "time_split"]


@dataclass(frozen=True)
class TimeSplit:
    """Which cutoffs train, validate (early stopping, calibration, half-life) and test."""

    train: tuple[pd.Timestamp, ...]
    validation: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]
    horizon_days: float
    embargo: bool

    def masks(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boolean row masks (train, validation, test) of a frame with a ``cutoff`` column."""
        cut = frame[CUTOFF]
        return (cut.isin(self.train).to_numpy(), cut.isin(self.validation).to_numpy(), cut.isin(self.test).to_numpy())

    def describe(self) -> dict[str, str]:
        fmt = lambda ts: f"{ts[0]:%Y-%m-%d}..{ts[-1]:%Y-%m-%d} ({len(ts)})"  # noqa: E731
        return {"train": fmt(self.train), "validation": fmt(self.validation), "test": fmt(self.test),
                "embargo": f"{self.horizon_days:g} days" if self.embargo else "none"}


def time_split(
    cutoffs: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    *,
    n_validation: int,
    n_test: int,
    horizon_days: float,
    embargo: bool = True,
) -> TimeSplit:
    """Split distinct cutoffs in time: the latest ``n_test`` test, the ``n_validation`` before them
    validate, the earlier ones train (with an embargo of one label horizon between the parts).

    Raises ``ValueError`` when too few cutoffs are left for training.
    """
    unique = sorted(pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(cutoffs))))
    horizon = pd.Timedelta(days=horizon_days)
    if len(unique) < n_test + n_validation + 1:
        raise ValueError(f"need at least {n_test + n_validation + 1} cutoffs, got {len(unique)}")
    test = unique[-n_test:]
    fit = [t for t in unique[:-n_test] if not embargo or t + horizon <= test[0]]
    if len(fit) < n_validation + 1:
        raise ValueError(_too_few(len(unique), n_validation, n_test, horizon_days, embargo))
    validation = fit[-n_validation:]
    train = [t for t in fit[:-n_validation] if not embargo or t + horizon <= validation[0]]
    if not train:
        raise ValueError(_too_few(len(unique), n_validation, n_test, horizon_days, embargo))
    return TimeSplit(tuple(train), tuple(validation), tuple(test), float(horizon_days), embargo)


def _too_few(n: int, n_val: int, n_test: int, horizon: float, embargo: bool) -> str:
    return (f"{n} cutoffs leave no training cutoff after {n_test} test and {n_val} validation cutoffs"
            + (f" and the {horizon:g}-day embargo before each" if embargo else "")
            + ": use more cutoffs (cutoffs.n_training) or fewer validation/test cutoffs")
