"""The foreign SaaS export (tests/foreign_crm.py): its subscriptions give the generator's own churn and
conversion dates through :func:`signals.contracts_from_subscriptions` (upgrades, short lapses,
annual terms, mid-term cancellations and win-backs included)."""

from __future__ import annotations

import pandas as pd

from signals.subscriptions import contracts_from_subscriptions
from tests.foreign_crm import ACTIVITY_TYPES, STATUS, TIMEZONE, generate

COLUMNS = {"customer_id": "取引先ID", "start": "開始日", "end": "終了日", "product": "プラン", "value": "月額",
           "status": "状態", "cancelled_at": "解約日"}


def test_the_subscriptions_give_the_true_churn_and_conversion_dates(tmp_path):
    crm = generate(tmp_path, n_accounts=300, seed=3)
    raw = pd.read_csv(crm.subscriptions, dtype=str, keep_default_na=False)
    statuses = {STATUS["active"]: "active", **{STATUS[k]: "ended" for k in ("renewed", "changed", "suspended",
                                                                            "cancelled")}}
    out = contracts_from_subscriptions(raw, columns=COLUMNS, ts_format="%Y/%m/%d", end_inclusive=True, gap_days=14,
                                       term_months=1, timezone=TIMEZONE, as_of=str(crm.end), statuses=statuses)
    assert out.rejected_by_reason() == {"unparseable_start": 1, "unknown_status": 1, "end_not_after_start": 1}
    assert out.read == out.accepted + out.rejected == len(raw)
    in_window = out.events[out.events["ts"] >= pd.Timestamp(crm.start, tz=TIMEZONE)]
    truth = crm.truth.set_index("customer_id")

    def dated(kind: str) -> pd.Series:
        rows = in_window[in_window["touchpoint"] == kind]
        return pd.Series(rows["ts"].to_numpy(), index=rows["customer_id"].astype(str)).sort_index()

    churned = truth["churn"].dropna().sort_index()
    assert len(churned) > 20 and truth.loc[churned.index, "mid_term"].any()
    pd.testing.assert_series_equal(dated("cancellation"), churned, check_names=False, check_index_type=False)
    started = pd.concat([truth["convert"].dropna(), truth["winback"].dropna()]).sort_index()
    pd.testing.assert_series_equal(dated("purchase"), started, check_names=False, check_index_type=False)
    assert (out.events["customer_id"].astype(str).str.len() == 7).all()  # zero-padded ids stay text


def test_the_export_looks_foreign(tmp_path):
    crm = generate(tmp_path, n_accounts=100, seed=1)
    raw = pd.read_csv(crm.activities, dtype=str, keep_default_na=False)
    assert list(raw.columns) == ["活動ID", "取引先ID", "活動日", "活動種別", "金額"]
    assert len(ACTIVITY_TYPES) >= 25
    assert raw["活動日"].str.fullmatch(r"\d{4}/\d{2}/\d{2}").mean() > 0.99       # day resolution
    assert raw.duplicated(["取引先ID", "活動日", "活動種別"]).mean() > 0.2          # many touches per type and day
    assert raw["活動ID"].duplicated().any()                                        # rows exported twice
    assert (crm.end - crm.start).days < 300
