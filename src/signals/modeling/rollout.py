"""Long-horizon purchase probabilities from a short-horizon model, rolled along the no-purchase path.

A model of the *hazard* ``h(x) = P(a purchase in [T, T + s) | features x at T)`` for a short step
``s`` (a week) can be trained on cutoffs right up to the end of the data, where a long-horizon
label (13 or 39 weeks) would leave no recent cutoff to train on. It answers long questions exactly
by the chain rule:

.. math::

    P(\\text{no purchase in } [T, T + n s)) = \\prod_{k=0}^{n-1}
        \\big(1 - h(x_k)\\big), \\qquad x_k = \\text{features at } T + k s
        \\text{ given no purchase in } [T, T + k s)

and the condition makes ``x_k`` known at ``T``: without a purchase in between, the customer's
history at ``T + k s`` is its history at ``T`` (recency and tenure grow, windows slide, the
temperatures cool). So ``x_k`` is built from the events with ``ts < T`` only, at the instant
``T + k s``: :func:`purchase_probability_by_rollout` never looks past a row's cutoff.

What the customer does *not* buy in the step matters through the features only (a Markov
assumption on the feature vector); events of other types between ``T`` and ``T + k s`` are assumed
absent too, which is exact for purchase-only data such as retail orders.

>>> import numpy as np, pandas as pd
>>> from signals.settings import load_settings
>>> from signals.features.spec import FeatureSpec
>>> events = pd.DataFrame({"customer_id": ["a", "a", "b"], "touchpoint": "purchase",
...                        "ts": pd.to_datetime(["2025-01-06", "2025-02-03", "2025-01-20"], utc=True)})
>>> cutoffs = pd.DataFrame({"customer_id": ["a", "b"], "cutoff": pd.Timestamp("2025-03-03", tz="UTC")})
>>> spec = FeatureSpec.from_settings(load_settings())
>>> weekly = lambda X: np.where(X["recency__purchase__days"] < 40, 0.2, 0.1)   # a toy hazard
>>> p = purchase_probability_by_rollout(weekly, events, cutoffs, spec, step_days=7, horizons_days={"4w": 28})
>>> p["4w"].round(4).tolist()   # a: 28, 35, 42, 49 days since its last purchase (1 - .8²·.9²); b: 42 .. 63
[0.4816, 0.3439]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from signals.features.matrix import build_features
from signals.features.spec import FeatureSpec
from signals.schemas import CUSTOMER_ID, CUTOFF, TS, check_cutoffs, check_events

__all__ = ["purchase_probability_by_rollout", "rollout_steps"]


def rollout_steps(horizons_days: Mapping[str, float], step_days: float) -> dict[str, int]:
    """Steps of ``step_days`` in each horizon; every horizon must be a whole number of steps.

    >>> rollout_steps({"a": 91, "b": 273}, 7)
    {'a': 13, 'b': 39}
    """
    if not step_days > 0:
        raise ValueError(f"step_days must be > 0, got {step_days}")
    if not horizons_days:
        raise ValueError("give at least one horizon")
    steps = {}
    for key, days in horizons_days.items():
        n = days / step_days
        if not days > 0 or abs(n - round(n)) > 1e-9:
            raise ValueError(f"horizon {key!r} ({days} days) is not a positive whole number of "
                             f"{step_days}-day steps")
        steps[key] = int(round(n))
    return steps


def purchase_probability_by_rollout(
    hazard: Callable[[pd.DataFrame], np.ndarray],
    events: pd.DataFrame,
    cutoffs: pd.DataFrame,
    spec: FeatureSpec,
    *,
    step_days: float,
    horizons_days: Mapping[str, float],
    customers: pd.DataFrame | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> pd.DataFrame:
    """P(at least one purchase in ``[cutoff, cutoff + horizon)``) for each row and each horizon.

    Parameters
    ----------
    hazard
        Maps a feature matrix (``build_features`` output) to ``P(a purchase within step_days)``
        per row, e.g. the ``probability`` of a :class:`~signals.modeling.estimators.SignalModel`
        trained with ``labels.purchase.horizon_days = step_days`` and ``quiet_days = 0``.
    events, cutoffs, spec, customers
        As for :func:`~signals.features.matrix.build_features`. Each row only sees the events
        of its customer with ``ts < cutoff``, at every step.
    step_days
        The hazard's horizon; every horizon must be a whole number of steps.
    horizons_days
        ``{name: days}``; the result has one column per name.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``cutoff`` (the rows of ``cutoffs``, in order) and one probability
        column per horizon.
    """
    steps = rollout_steps(horizons_days, step_days)
    n_steps = max(steps.values())
    events = check_events(events, spec.touchpoints)
    cutoffs = check_cutoffs(cutoffs)
    out = pd.DataFrame({CUSTOMER_ID: cutoffs[CUSTOMER_ID].to_numpy(), CUTOFF: cutoffs[CUTOFF].to_numpy()})
    for key in steps:
        out[key] = np.nan
    for origin, rows in cutoffs.groupby(CUTOFF, sort=True):
        known = events[(events[TS] < origin).to_numpy()]          # the history at the row's cutoff
        log_none = np.zeros(len(rows))                            # log P(no purchase so far)
        for k in range(n_steps):
            at = rows[[CUSTOMER_ID]].assign(**{CUTOFF: origin + pd.Timedelta(days=step_days * k)})
            X = build_features(known, at.reset_index(drop=True), spec, customers=customers)
            h = np.asarray(hazard(X), dtype=np.float64)
            if h.shape != (len(rows),) or not np.all((h >= 0) & (h <= 1)):
                raise ValueError("hazard must return one probability in [0, 1] per row")
            log_none += np.log1p(-np.minimum(h, 1.0 - 1e-12))
            for key, n in steps.items():
                if n == k + 1:
                    out.loc[rows.index, key] = -np.expm1(log_none)
            progress(f"rollout from {origin:%Y-%m-%d}: step {k + 1}/{n_steps}")
    return out
