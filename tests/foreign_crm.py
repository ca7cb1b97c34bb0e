"""A foreign SaaS CRM export, for end-to-end tests of "your own CRM from config alone".

Not the simulator's format: what a Japanese SaaS vendor's CRM hands over, in its own words.

``activities.csv`` (UTF-8)
    ``活動ID`` (activity id), ``取引先ID`` (account id, zero-padded: ``0000042``), ``活動日`` (a date,
    ``YYYY/MM/DD``, Tokyo; many activities of one type on one day), ``活動種別`` (27 activity
    names in Japanese), ``金額`` (deal size in yen on quotes, won and lost deals; blank otherwise).
``subscriptions.csv`` (UTF-8)
    ``契約ID``, ``取引先ID``, ``プラン`` (ライト / スタンダード / プレミアム), ``開始日``, ``終了日`` (the
    last active day, inclusive; blank while a monthly plan runs), ``月額`` (MRR, yen), ``状態``
    (契約中 active, 更新済 renewed, 変更済 changed plan, 停止 suspended, 解約済 cancelled),
    ``解約日`` (the cancellation date of a mid-term cancellation).

The world: accounts are customers (a subscription started up to two years before the activity
log begins) or prospects. Customers churn with a hazard that falls with their engagement; in the
60 days before a churn their logins and feature use fade, support tickets and incident reports
rise and a cancellation consultation (解約相談) is likely. Annual contracts end at a term end, or
mid-term with a 解約日. Prospects convert with a hazard that rises with engagement; before they
buy they request documents, attend webinars, view prices, start a trial, get a demo, a quote
and a won deal (with its value), and a subscription row starts. Monthly customers upgrade plans
(a new row) and lapse for a few days (a short gap). A few rows are broken on purpose (blank ids,
an unmapped activity name, impossible dates, repeated rows, an unknown status), so ingestion has
rejects and duplicates to report.

Run ``python tests/foreign_crm.py data/saas`` to write the files (``--accounts``, ``--seed``);
``configs/saas_example.yaml`` reads them.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: canonical type -> (activity name in the export, channel, initiated by, prior points)
ACTIVITY_TYPES: dict[str, tuple[str, str, str, float]] = {
    "webinar": ("ウェビナー参加", "online_event", "customer", 8),
    "seminar": ("セミナー参加", "event", "customer", 10),
    "trade_show": ("展示会来場", "event", "customer", 6),
    "user_group": ("ユーザー会参加", "event", "customer", 8),
    "doc_request": ("資料請求", "web", "customer", 5),
    "web_visit": ("Webサイト訪問", "web", "customer", 1),
    "pricing_view": ("料金ページ閲覧", "web", "customer", 3),
    "trial_signup": ("無料トライアル登録", "web", "customer", 12),
    "email_open": ("メール開封", "email", "customer", 1),
    "email_click": ("メールクリック", "email", "customer", 2),
    "newsletter": ("メルマガ配信", "email", "company", 0),
    "survey": ("アンケート回答", "email", "customer", 2),
    "inquiry": ("問い合わせ", "support", "customer", 6),
    "support_ticket": ("サポートチケット", "support", "customer", 2),
    "incident_report": ("障害報告", "support", "customer", -3),
    "cancel_consult": ("解約相談", "support", "customer", -15),
    "login": ("ログイン", "product", "customer", 1),
    "feature_use": ("機能利用", "product", "customer", 1),
    "onboarding": ("導入支援", "success", "company", 5),
    "qbr": ("定例会", "success", "company", 6),
    "call": ("電話", "phone", "company", 3),
    "sales_visit": ("訪問", "field_sales", "company", 13),
    "online_meeting": ("オンライン商談", "field_sales", "company", 10),
    "demo": ("製品デモ", "field_sales", "company", 12),
    "quote": ("見積提出", "field_sales", "company", 10),
    "deal_won": ("商談成立", "field_sales", "customer", 20),
    "deal_lost": ("商談失注", "field_sales", "customer", -5),
}
#: activities whose rows carry an amount (金額)
VALUED_ACTIVITIES = ("quote", "deal_won", "deal_lost")
PLANS = {"ライト": 30_000, "スタンダード": 80_000, "プレミアム": 200_000}
STATUS = {"active": "契約中", "renewed": "更新済", "changed": "変更済", "suspended": "停止", "cancelled": "解約済"}
UNMAPPED_ACTIVITY = "その他"
UNKNOWN_STATUS = "保留"
TIMEZONE = "Asia/Tokyo"

# daily rates by state: prospect, customer, former customer
_BASE = {
    "webinar": (0.004, 0.004, 0.002), "seminar": (0.002, 0.002, 0.001), "trade_show": (0.002, 0.0005, 0.001),
    "user_group": (0.0, 0.003, 0.0), "doc_request": (0.003, 0.001, 0.002), "web_visit": (0.03, 0.02, 0.015),
    "pricing_view": (0.004, 0.002, 0.003), "trial_signup": (0.0005, 0.0, 0.0003), "email_open": (0.04, 0.05, 0.03),
    "email_click": (0.01, 0.015, 0.006), "newsletter": (0.033, 0.033, 0.033), "survey": (0.001, 0.004, 0.0005),
    "inquiry": (0.002, 0.01, 0.001), "support_ticket": (0.0, 0.02, 0.0), "incident_report": (0.0, 0.005, 0.0),
    "cancel_consult": (0.0, 0.0005, 0.0), "login": (0.0, 1.2, 0.0), "feature_use": (0.0, 0.6, 0.0),
    "onboarding": (0.0, 0.0, 0.0), "qbr": (0.0, 0.012, 0.0), "call": (0.008, 0.01, 0.006),
    "sales_visit": (0.002, 0.004, 0.001), "online_meeting": (0.002, 0.005, 0.001), "demo": (0.0005, 0.0005, 0.0003),
    "quote": (0.0005, 0.0008, 0.0003), "deal_won": (0.0, 0.0, 0.0), "deal_lost": (0.0002, 0.0001, 0.0001),
}
# (extra daily rate, days before the event it starts) before a conversion
_BUYING = {"doc_request": (0.03, 60), "webinar": (0.02, 60), "pricing_view": (0.05, 45), "web_visit": (0.12, 60),
           "trial_signup": (0.025, 40), "demo": (0.04, 30), "online_meeting": (0.05, 30), "quote": (0.06, 20),
           "email_click": (0.03, 45), "sales_visit": (0.02, 30)}


@dataclass(frozen=True)
class ForeignCrm:
    """Paths of the written export and the truth behind it (one row per account)."""

    activities: Path
    subscriptions: Path
    truth: pd.DataFrame
    start: dt.date
    end: dt.date


def _day(start: dt.date, offset) -> str:
    return (pd.Timestamp(start) + pd.to_timedelta(offset, unit="D")).strftime("%Y/%m/%d")


def _dates(start: dt.date, offsets: np.ndarray) -> np.ndarray:
    return (pd.Timestamp(start) + pd.to_timedelta(offsets, unit="D")).strftime("%Y/%m/%d").to_numpy(dtype=object)


def generate(folder: str | Path, *, n_accounts: int = 600, start: dt.date = dt.date(2025, 3, 1), months: int = 9,
             seed: int = 0) -> ForeignCrm:
    """Write ``activities.csv`` and ``subscriptions.csv`` into ``folder`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    end = (pd.Timestamp(start) + pd.DateOffset(months=months)).date()
    n_days = (end - start).days
    ids = np.array([f"{i:07d}" for i in rng.choice(np.arange(1, 10 * n_accounts), n_accounts, replace=False)])
    engagement = rng.normal(size=n_accounts)
    plan_level = rng.choice(3, size=n_accounts, p=[0.5, 0.35, 0.15])
    customer0 = rng.random(n_accounts) < 0.6
    annual = rng.random(n_accounts) < 0.4
    contract_start = np.where(customer0, -rng.integers(30, 730, n_accounts), 10**6)  # day offsets

    # churn: a hazard that falls with engagement and plan size; a plan ends at the end of a term:
    # an annual contract at a term end (or mid-term, with a cancellation date), a monthly plan at the
    # next monthly anniversary of its start (it is not renewed)
    hazard = 0.0018 * np.exp(-0.9 * engagement - 0.3 * plan_level)
    decided = 1 + rng.exponential(1 / hazard)
    term_end = contract_start + 365 * np.ceil((decided - contract_start) / 365 + 1e-9)
    month_end = np.array([_next_anniversary(start, int(c), d) for c, d in zip(contract_start, decided, strict=True)])
    mid_term = annual & (rng.random(n_accounts) < 0.25)
    churn = np.where(annual, np.where(mid_term, decided, term_end), month_end).astype(np.int64)
    churn = np.where(customer0 & (churn < n_days), churn, 10**6)
    # prospects convert with a hazard that rises with engagement
    convert = rng.exponential(1 / (0.0015 * np.exp(0.9 * engagement))).astype(np.int64) + 20
    convert = np.where(~customer0 & (convert < n_days), convert, 10**6)
    # win-backs, upgrades and short lapses
    winback = np.where((churn < n_days) & (rng.random(n_accounts) < 0.1), churn + rng.integers(20, 80, n_accounts), 10**6)
    winback = np.where(winback < n_days, winback, 10**6)
    monthly_customer = customer0 & ~annual
    upgrade = np.where(monthly_customer & (plan_level < 2) & (rng.random(n_accounts) < 0.15),
                       rng.integers(10, n_days - 10, n_accounts), 10**6)
    upgrade = np.where(upgrade < churn - 15, upgrade, 10**6)
    lapse = np.where(monthly_customer & (rng.random(n_accounts) < 0.08), rng.integers(10, n_days - 20, n_accounts),
                     10**6)
    lapse = np.where((lapse < churn - 20) & (np.abs(lapse - upgrade) > 15), lapse, 10**6)
    lapse_days = rng.integers(3, 11, n_accounts)

    # the state each day: 0 prospect, 1 customer, 2 former customer
    day = np.arange(n_days)[None, :]
    active = (customer0[:, None] & (day < churn[:, None])) | (day >= np.minimum(convert, winback)[:, None])
    state = np.where(active, 1, np.where(customer0[:, None] | (day >= convert[:, None]), 2, 0))
    to_churn = churn[:, None] - day  # days until the churn (> 0 before it)
    to_convert = np.minimum(convert, winback)[:, None] - day
    since_start = day - np.where(customer0, contract_start, np.minimum(convert, winback))[:, None]

    rows: list[pd.DataFrame] = []
    for name, (label, _, initiated_by, _) in ACTIVITY_TYPES.items():
        rate = np.asarray(_BASE[name])[state]
        rate = rate * np.exp((0.45 if initiated_by == "customer" else 0.1) * engagement)[:, None]
        fading = (to_churn > 0) & (to_churn <= 60)
        if name in ("login", "feature_use"):
            rate = np.where(fading, rate * (0.2 + 0.8 * to_churn / 60), rate)
        if name in ("support_ticket", "incident_report"):
            rate = np.where(fading, rate * 3.0, rate)
        if name == "cancel_consult":
            rate = np.where((to_churn > 0) & (to_churn <= 45), rate + 0.03, rate)
        if name == "onboarding":
            rate = np.where(active & (since_start >= 0) & (since_start < 60), 0.06, rate)
        if name in _BUYING:
            extra, lead = _BUYING[name]
            rate = np.where((to_convert > 0) & (to_convert <= lead), rate + extra, rate)
        counts = rng.poisson(rate)
        if name == "deal_won":  # the day before the subscription starts
            counts = ((to_convert == 1) & (np.minimum(convert, winback)[:, None] < n_days)).astype(np.int64)
        acc, days = np.nonzero(counts)
        reps = counts[acc, days]
        acc, days = np.repeat(acc, reps), np.repeat(days, reps)
        amount = np.full(len(acc), "", dtype=object)
        if name in VALUED_ACTIVITIES:
            mrr = np.array(list(PLANS.values()))[plan_level[acc]]
            size = {"quote": rng.uniform(0.8, 1.2, len(acc)), "deal_won": np.ones(len(acc)),
                    "deal_lost": rng.uniform(0.5, 1.5, len(acc))}[name]
            amount = np.round(12 * mrr * size, -3).astype(np.int64).astype(str).astype(object)
        rows.append(pd.DataFrame({"acc": acc, "day": days, "活動種別": label, "金額": amount}))
    log = pd.concat(rows, ignore_index=True).sort_values(["day", "acc"], kind="stable").reset_index(drop=True)
    activities = pd.DataFrame({
        "活動ID": [f"A{i:08d}" for i in range(len(log))],
        "取引先ID": ids[log["acc"].to_numpy()],
        "活動日": _dates(start, log["day"].to_numpy()),
        "活動種別": log["活動種別"].to_numpy(),
        "金額": log["金額"].to_numpy(),
    })
    activities = _break_activities(activities, rng, n_days=n_days, start=start)
    activities.to_csv(folder / "activities.csv", index=False, encoding="utf-8")

    subscriptions = _subscriptions(ids, rng, start=start, n_days=n_days, customer0=customer0, annual=annual,
                                   plan_level=plan_level, contract_start=contract_start, churn=churn,
                                   mid_term=mid_term, convert=convert, winback=winback, upgrade=upgrade,
                                   lapse=lapse, lapse_days=lapse_days)
    subscriptions.to_csv(folder / "subscriptions.csv", index=False, encoding="utf-8")

    def when(offsets: np.ndarray) -> pd.Series:
        stamps = pd.Series(pd.Timestamp(start) + pd.to_timedelta(np.where(offsets < 10**6, offsets, 0), unit="D"))
        return stamps.where(offsets < 10**6).dt.tz_localize(TIMEZONE).dt.tz_convert("UTC").astype("datetime64[ns, UTC]")

    truth = pd.DataFrame({
        "customer_id": ids, "engagement": engagement, "plan": np.array(list(PLANS))[plan_level],
        "customer_at_start": customer0, "annual": annual, "churn": when(churn), "mid_term": mid_term & (churn < 10**6),
        "convert": when(convert), "winback": when(winback),
    })
    return ForeignCrm(folder / "activities.csv", folder / "subscriptions.csv", truth, start, end)


def _next_anniversary(start: dt.date, contract_start: int, after: float) -> int:
    """Day offset of the first monthly anniversary of ``contract_start`` at or after day ``after``."""
    if contract_start >= 10**6:
        return 10**6
    first = pd.Timestamp(start) + pd.Timedelta(days=contract_start)
    k = max(int((after - contract_start) // 31), 1)
    while True:
        day = ((first + pd.DateOffset(months=k)) - pd.Timestamp(start)).days
        if day >= after:
            return int(day)
        k += 1


def _break_activities(frame: pd.DataFrame, rng: np.random.Generator, *, n_days: int, start: dt.date) -> pd.DataFrame:
    """Blank ids, an unmapped activity name, impossible dates and repeated rows, as real exports have."""
    n = len(frame)
    frame = frame.copy()
    pick = rng.permutation(n)
    k = max(1, n // 400)
    frame.loc[pick[:k], "取引先ID"] = ""                       # missing_customer_id
    frame.loc[pick[k:2 * k], "活動種別"] = UNMAPPED_ACTIVITY   # unknown_touchpoint
    frame.loc[pick[2 * k:2 * k + max(1, k // 3)], "活動日"] = "2025/02/30"  # unparseable_ts
    repeated = frame.iloc[pick[3 * k:3 * k + 2 * k]]          # duplicates: the same activity exported twice
    return pd.concat([frame, repeated], ignore_index=True)


def _subscriptions(ids, rng, *, start, n_days, customer0, annual, plan_level, contract_start, churn, mid_term,
                   convert, winback, upgrade, lapse, lapse_days) -> pd.DataFrame:
    """The subscription rows of every account (inclusive end dates), with three broken rows."""
    plans = list(PLANS)
    out: list[tuple] = []

    def add(i: int, plan: int, first: int, last: int | None, status: str, cancelled: int | None = None) -> None:
        out.append((ids[i], plans[plan], _day(start, first), "" if last is None else _day(start, last),
                    str(PLANS[plans[plan]]), STATUS[status], "" if cancelled is None else _day(start, cancelled)))

    for i in range(len(ids)):
        spells = []
        if customer0[i]:
            spells.append((int(contract_start[i]), int(churn[i])))
        begin = int(min(convert[i], winback[i]))
        if begin < n_days:
            spells.append((begin, 10**6))
        for first, stop in spells:
            if annual[i] and first == contract_start[i]:
                term = first
                while term <= n_days:
                    term_stop = term + 365
                    if stop <= term_stop:  # the churn falls in this term
                        if mid_term[i]:
                            add(i, plan_level[i], term, term_stop - 1, "cancelled", cancelled=stop)
                        else:
                            add(i, plan_level[i], term, term_stop - 1, "cancelled")
                        break
                    add(i, plan_level[i], term, term_stop - 1, "renewed" if term_stop <= n_days else "active")
                    term = term_stop
                continue
            cuts = sorted(c for c in (upgrade[i], lapse[i]) if first < c < min(stop, n_days))
            level, begin_row = int(plan_level[i]), first
            for cut in cuts:
                if cut == upgrade[i]:
                    add(i, level, begin_row, cut - 1, "changed")
                    level, begin_row = min(level + 1, 2), cut
                else:
                    add(i, level, begin_row, cut - 1, "suspended")
                    begin_row = cut + int(lapse_days[i])
            if stop < n_days:
                add(i, level, begin_row, stop - 1, "cancelled")
            else:
                add(i, level, begin_row, None, "active")
    frame = pd.DataFrame(out, columns=["取引先ID", "プラン", "開始日", "終了日", "月額", "状態", "解約日"])
    frame.insert(0, "契約ID", [f"C-{i:06d}" for i in range(len(frame))])
    broken = frame.sample(3, random_state=int(rng.integers(1 << 31))).copy()
    broken["契約ID"] = [f"C-X{i}" for i in range(3)]
    broken.iloc[0, frame.columns.get_loc("開始日")] = ""                   # unparseable_start
    broken.iloc[1, frame.columns.get_loc("状態")] = UNKNOWN_STATUS         # unknown_status
    broken.iloc[2, frame.columns.get_loc("終了日")] = "2020/01/01"         # end_not_after_start
    return pd.concat([frame, broken], ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a foreign SaaS CRM export (activities.csv, subscriptions.csv).")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--accounts", type=int, default=600)
    parser.add_argument("--months", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    crm = generate(args.folder, n_accounts=args.accounts, months=args.months, seed=args.seed)
    print(f"wrote {crm.activities} and {crm.subscriptions} ({crm.start} .. {crm.end})")


if __name__ == "__main__":
    main()
