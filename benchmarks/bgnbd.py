"""BG/NBD on CDNOW: the published 1/10 sample and the full cohort (JSON on stdout).

The model is :mod:`signals.modeling.bgnbd`; this script only fits it and reports:

- the fit on the published calibration summary (``cdnow_customers_summary.csv``) next to the
  paper's estimates (Fader, Hardie & Lee 2005: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
  log-likelihood -9582.4);
- for the 2,357-customer sample and the 23,570-customer cohort, each fitted on weeks 1-39 from the
  raw transactions: the holdout (weeks 40-78) purchase days it expects against the actual ones,
  and how well its expected purchases and the classic RFM score rank "buys in the holdout" (ROC
  AUC and top-decile lift from :mod:`signals.modeling.metrics`).

Run from the repository root::

    python benchmarks/bgnbd.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals.modeling.baselines import rfm_summary_score  # noqa: E402
from signals.modeling.bgnbd import BGNBD, count_purchase_days, rfm_summary  # noqa: E402
from signals.modeling.metrics import roc_auc, top_decile_lift  # noqa: E402

__all__ = ["cohort_report", "main"]

# weeks 1-39 of the paper end with 1997-09-30 (included); weeks 40-78 end with 1998-06-30
CALIBRATION_END, HOLDOUT_END = "1997-10-01", "1998-07-01"
PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}


def cohort_report(events: pd.DataFrame, calibration_end: str, holdout_end: str) -> dict[str, Any]:
    """Fit on ``[first purchase, calibration_end)``, score the holdout ``[calibration_end, holdout_end)``."""
    t0 = time.perf_counter()
    summary = rfm_summary(events, calibration_end)
    t1 = time.perf_counter()
    model = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    t2 = time.perf_counter()
    weeks = (pd.Timestamp(holdout_end) - pd.Timestamp(calibration_end)) / pd.Timedelta(days=7)
    expected = model.conditional_expected_number_of_purchases_up_to_time(
        weeks, summary["frequency"], summary["recency"], summary["T"]
    )
    actual = count_purchase_days(events, calibration_end, holdout_end).reindex(summary.index, fill_value=0)
    y = (actual.to_numpy() > 0).astype(np.int8)
    rfm = rfm_summary_score(summary)["rfm"].to_numpy().astype("float64")
    zero = summary["frequency"].to_numpy() == 0
    return {
        "customers": len(summary),
        "calibration_end": calibration_end,
        "holdout_end": holdout_end,
        "params": {k: round(float(v), 6) for k, v in model.params_.items()},
        "log_likelihood": round(model.log_likelihood_, 3),
        "seconds": {"rfm_summary": round(t1 - t0, 4), "fit": round(t2 - t1, 4)},
        "holdout_repeat_purchase_days": {"actual": int(actual.sum()), "expected": round(float(expected.sum()), 1)},
        "zero_class_mean_holdout": {
            "customers": int(zero.sum()),
            "actual": round(float(actual.to_numpy()[zero].mean()), 4),
            "expected": round(float(expected[zero].mean()), 4),
        },
        "corr_expected_vs_actual": round(float(np.corrcoef(expected, actual.to_numpy())[0, 1]), 4),
        "any_holdout_purchase": {
            "rate": round(float(y.mean()), 4),
            "auc": {"bgnbd": round(roc_auc(y, expected), 4), "rfm": round(roc_auc(y, rfm), 4)},
            "top_decile_lift": {"bgnbd": round(top_decile_lift(y, expected), 3),
                                "rfm": round(top_decile_lift(y, rfm), 3)},
        },
    }


def main() -> dict[str, Any]:
    """Fit the published summary, the sample and the full cohort; print and return the JSON report."""
    from signals.io.cdnow import cdnow_customers_summary_path, read_cdnow, read_cdnow_sample_ids

    published = pd.read_csv(cdnow_customers_summary_path())
    t0 = time.perf_counter()
    model = BGNBD().fit(published["frequency"], published["recency"], published["T"])
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    events = read_cdnow()
    read_seconds = time.perf_counter() - t0
    sample_ids = set(read_cdnow_sample_ids()["customer_id"])
    sample = events[events["customer_id"].astype(str).isin(sample_ids)]
    report = {
        "published_summary_fit": {
            "customers": len(published),
            "params": {k: round(float(v), 6) for k, v in model.params_.items()},
            "log_likelihood": round(model.log_likelihood_, 3),
            "paper": PAPER,
            "fit_seconds": round(fit_seconds, 4),
        },
        "read_cdnow": {"rows": len(events), "seconds": round(read_seconds, 4)},
        "sample_2357": cohort_report(sample, CALIBRATION_END, HOLDOUT_END),
        "full_23570": cohort_report(events, CALIBRATION_END, HOLDOUT_END),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
