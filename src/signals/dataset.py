"""Training sets: features at each cutoff joined with the label that follows it."""

from __future__ import annotations

import pandas as pd

from signals.features.matrix import build_features
from signals.features.spec import FeatureSpec
from signals.features.window import EventIndex
from signals.labels import label_cutoffs
from signals.schemas import CUSTOMER_ID, CUTOFF, check_cutoffs, check_events
from signals.settings import LabelSettings

__all__ = ["LABEL", "build_training_set"]

LABEL = "label"


def build_training_set(
    events: pd.DataFrame,
    cutoffs: pd.DataFrame,
    spec: FeatureSpec,
    *,
    task: str,
    labels: LabelSettings,
    customers: pd.DataFrame | None = None,
    index: EventIndex | None = None,
) -> pd.DataFrame:
    """Features and labels of ``task`` for the eligible ``(customer_id, cutoff)`` rows.

    Labels are computed first (:func:`signals.labels.label_cutoffs`), ineligible rows dropped,
    then features are built for the rest. The result has ``customer_id``, ``cutoff``, the
    features and ``label`` (0/1 int8), sorted by cutoff then customer.
    """
    events = check_events(events, spec.touchpoints)
    cutoffs = check_cutoffs(cutoffs)
    labelled = label_cutoffs(events, cutoffs, task, labels=labels, catalog=spec.catalog)
    labelled = labelled[labelled["eligible"]].sort_values([CUTOFF, CUSTOMER_ID], kind="stable").reset_index(drop=True)
    features = build_features(events, labelled[[CUSTOMER_ID, CUTOFF]], spec, customers=customers,
                              index=index, validate=False)
    label = pd.DataFrame({LABEL: labelled[LABEL].astype("int8").to_numpy()}, index=features.index)
    return pd.concat([features, label], axis=1)
