"""Benchmark ingestion: ~2M raw rows from three messy sources -> one canonical event table.

Generates (numpy, seeded, in a temporary folder) the three kinds of export of configs/demo.yaml:

* ``sfa.csv``: Tokyo wall-clock times in ``%Y/%m/%d %H:%M:%S``, Japanese and English activity
  names, zero-padded account ids, amounts as text;
* ``marketing.parquet``: tz-aware timestamps, English and Japanese event names; it repeats a share of
  the SFA seminars at the same instant (cross-source duplicates);
* ``web.csv``: ISO 8601 text mixing ``Z``, ``+09:00`` and naive values in one column.

About 1% of the rows are bad (one of the reject reasons each) and ~1.5% are duplicates. Then it
times :func:`signals.ingest.ingest` in a fresh process (median of 3 runs; reading, mapping and
unification timed separately) and prints JSON with rows/s and the peak RSS of that process.

With ``--reference-src OTHER/src`` it also times another version of the package (e.g. an older
checkout: ``git archive <commit> | tar -x -C /tmp/ref``) on the same files, alternating the two
child processes, and reports the ratio of the medians (this version / reference): the machine is
shared, so only a ratio measured in one run means something.

    python benchmarks/bench_ingest.py [--rows 2000000] [--reference-src /tmp/ref/src --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20260101
SHARES = {"sfa": 0.35, "marketing": 0.45, "web": 0.20}
BAD_SHARE = 0.01
DUP_SHARE = 0.015
START = np.datetime64("2023-01-01T00:00:00", "s")
SPAN_S = 3 * 365 * 86_400
AS_OF = "2026-01-01T00:00:00+09:00"

SFA_NAMES = {"Sales visit": "sales_visit", "訪問": "sales_visit", "Phone call": "call", "電話": "call",
             "Seminar attended": "seminar", "Order": "purchase", "受注": "purchase",
             "Contract renewal": "renewal", "契約更新": "renewal", "Cancellation": "cancellation", "解約": "cancellation"}
MKT_NAMES = {"Seminar attended": "seminar", "セミナー参加": "seminar", "Webinar attended": "webinar",
             "ウェビナー参加": "webinar", "Document request": "doc_request", "資料請求": "doc_request",
             "Page view: pricing": "web_visit", "Email opened": "email_open", "Email clicked": "email_click",
             "Newsletter sent": "newsletter"}
WEB_NAMES = {"pricing_view": "web_visit", "doc_download": "doc_request", "contact_form": "inquiry"}


def _sources(folder: Path) -> list:
    from signals.settings import SourceSettings

    return [
        SourceSettings(name="sfa", kind="csv", path=folder / "sfa.csv", timezone="Asia/Tokyo",
                       ts_format="%Y/%m/%d %H:%M:%S", touchpoints=SFA_NAMES,
                       columns={"customer_id": "AccountId", "ts": "ActivityDate", "touchpoint": "ActivityType",
                                "value": "Amount"}),
        SourceSettings(name="marketing", kind="parquet", path=folder / "marketing.parquet", touchpoints=MKT_NAMES,
                       columns={"customer_id": "contact_account", "ts": "event_time", "touchpoint": "event_name"}),
        SourceSettings(name="web", kind="csv", path=folder / "web.csv", timezone="Asia/Tokyo", touchpoints=WEB_NAMES,
                       columns={"customer_id": "visitor_account", "ts": "occurred_at", "touchpoint": "action"}),
    ]


def _ids(rng: np.random.Generator, n: int, n_customers: int) -> np.ndarray:
    # skewed activity: a few customers touch a lot
    return np.char.zfill((rng.zipf(1.3, n) % n_customers).astype(str), 6).astype(object)


def _bad(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows = rng.choice(n, int(n * BAD_SHARE), replace=False)
    return rows, rng.integers(0, 6, len(rows))  # which field to break


def generate(folder: Path, total_rows: int) -> dict:
    rng = np.random.default_rng(SEED)
    n_customers = max(1000, total_rows // 40)
    n_sfa, n_mkt = int(total_rows * SHARES["sfa"]), int(total_rows * SHARES["marketing"])
    n_web = total_rows - n_sfa - n_mkt
    n_sfa_dup = int(n_sfa * DUP_SHARE / 3)  # the SFA export repeats some of its own rows
    n_sfa, n_sfa_total = n_sfa - n_sfa_dup, n_sfa

    # --- sfa.csv: Tokyo wall-clock text
    secs = rng.integers(0, SPAN_S, n_sfa)
    names = np.array(list(SFA_NAMES), dtype=object)[rng.integers(0, len(SFA_NAMES), n_sfa)]
    is_order = np.isin(names, ["Order", "受注", "Contract renewal", "契約更新"])
    amount = np.where(is_order, np.round(rng.gamma(2.0, 50_000, n_sfa)).astype(np.int64).astype(str), "").astype(object)
    ts_text = pd.Series(pd.to_datetime(START + secs.astype("m8[s]"))).dt.strftime("%Y/%m/%d %H:%M:%S").to_numpy(object)
    ids = _ids(rng, n_sfa, n_customers)
    rows, kind = _bad(rng, n_sfa)
    ids[rows[kind == 0]] = " "
    ts_text[rows[kind == 1]] = "2024/13/45 25:61:00"
    names[rows[kind == 2]] = "Trade show"
    amount[rows[kind == 3]] = "1,000"
    amount[rows[kind == 4]] = "-500"
    ts_text[rows[kind == 5]] = "2031/01/01 09:00:00"
    sfa = pd.DataFrame({"AccountId": ids, "ActivityDate": ts_text, "ActivityType": names, "Amount": amount})
    sfa = pd.concat([sfa, sfa.iloc[rng.choice(n_sfa, n_sfa_dup, replace=False)]], ignore_index=True)
    sfa.to_csv(folder / "sfa.csv", index=False)

    # --- marketing.parquet: tz-aware instants; repeats SFA seminars at the same instant
    seminars = np.flatnonzero((sfa["ActivityType"] == "Seminar attended").to_numpy()
                              & (sfa["AccountId"] != " ").to_numpy()
                              & ~sfa["ActivityDate"].isin(["2024/13/45 25:61:00", "2031/01/01 09:00:00"]).to_numpy())
    n_copy = min(len(seminars), int(n_mkt * DUP_SHARE))
    copied = rng.choice(seminars, n_copy, replace=False)
    utc = pd.to_datetime(START + rng.integers(0, SPAN_S, n_mkt - n_copy).astype("m8[s]")).tz_localize("UTC")
    copy_ts = pd.to_datetime(sfa["ActivityDate"].iloc[copied], format="%Y/%m/%d %H:%M:%S").dt.tz_localize("Asia/Tokyo")
    mkt_names = np.array(list(MKT_NAMES), dtype=object)[rng.integers(0, len(MKT_NAMES), n_mkt - n_copy)]
    mkt = pd.DataFrame({
        "contact_account": np.concatenate([_ids(rng, n_mkt - n_copy, n_customers), sfa["AccountId"].iloc[copied].to_numpy(object)]),
        "event_time": pd.concat([pd.Series(utc).dt.tz_convert("Asia/Tokyo"), copy_ts.reset_index(drop=True)], ignore_index=True),
        "event_name": np.concatenate([mkt_names, np.full(n_copy, "セミナー参加", dtype=object)]),
    }).sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    rows, kind = _bad(rng, n_mkt)
    mkt.loc[rows[kind < 2], "contact_account"] = None
    mkt.loc[rows[kind >= 2], "event_name"] = "Unsubscribed"
    mkt.to_parquet(folder / "marketing.parquet", index=False)

    # --- web.csv: ISO text, a mix of Z, +09:00 and naive (Tokyo) in one column
    stamps = pd.Series(pd.to_datetime(START + rng.integers(0, SPAN_S, n_web).astype("m8[s]")))
    style = rng.integers(0, 3, n_web)
    web_ts = np.where(style == 0, stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      np.where(style == 1, stamps.dt.strftime("%Y-%m-%dT%H:%M:%S+09:00"),
                               stamps.dt.strftime("%Y-%m-%d %H:%M:%S"))).astype(object)
    web_names = np.array(list(WEB_NAMES), dtype=object)[rng.integers(0, len(WEB_NAMES), n_web)]
    rows, kind = _bad(rng, n_web)
    web_ts[rows[kind < 3]] = "not a date"
    web_names[rows[kind >= 3]] = "scroll"
    pd.DataFrame({"visitor_account": _ids(rng, n_web, n_customers), "occurred_at": web_ts, "action": web_names}) \
        .to_csv(folder / "web.csv", index=False)
    return {"sfa": n_sfa_total, "marketing": n_mkt, "web": n_web}


class _TimedReader:
    """Wraps a reader and adds up the seconds spent in it."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.seconds = 0.0

    def __call__(self, source):
        t0 = time.perf_counter()
        try:
            return self.reader(source)
        finally:
            self.seconds += time.perf_counter() - t0


def run(folder: Path, repeats: int) -> dict:
    """Time ingest in this (fresh) process; stage times from a timed reader and a separate map pass."""
    from signals.ingest import ingest, map_source
    from signals.io.sources import read_source
    from signals.settings import Settings

    sources = _sources(folder)
    catalog = list(Settings().catalog)
    totals, reads = [], []
    result = None
    for _ in range(repeats):
        reader = _TimedReader(read_source)
        result = None  # free the previous run's tables before the next
        t0 = time.perf_counter()
        result = ingest(sources, touchpoints=catalog, as_of=AS_OF, reader=reader)
        totals.append(time.perf_counter() - t0)
        reads.append(reader.seconds)
    raws = [read_source(s) for s in sources]
    t0 = time.perf_counter()
    for raw, source in zip(raws, sources, strict=True):
        map_source(raw, source, touchpoints=catalog, as_of=AS_OF)
    map_s = time.perf_counter() - t0
    del raws
    total = statistics.median(totals)
    read_med = statistics.median(reads)
    report = result.report
    return {
        "seconds_median": round(total, 3),
        "seconds_runs": [round(t, 3) for t in totals],
        "rows_per_second": int(report.loc["total", "read"] / total),
        "stages_seconds": {
            "read": round(read_med, 3),
            "map_and_validate": round(map_s, 3),
            "unify_dedupe_sort": round(max(total - read_med - map_s, 0.0), 3),
        },
        "report": {name: {k: int(v) for k, v in row.items() if v} for name, row in report.iterrows()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="raw rows over the three sources")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-src", type=Path, help="another version's src/ folder to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="with --reference-src: alternating child runs per version")
    parser.add_argument("--run-in", type=Path, help=argparse.SUPPRESS)  # the timed child process
    args = parser.parse_args()
    if args.run_in is not None:
        print(json.dumps(run(args.run_in, args.repeats)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        sizes = generate(folder, args.rows)
        generate_s = time.perf_counter() - t0
        files_mb = {p.name: round(p.stat().st_size / 1e6, 1) for p in sorted(folder.iterdir())}

        def child(src: Path | None) -> dict:
            env = dict(os.environ)
            if src is not None:
                env["PYTHONPATH"] = str(src.resolve()) + os.pathsep + env.get("PYTHONPATH", "")
            done = subprocess.run(
                [sys.executable, __file__, "--run-in", str(folder), "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True, env=env,
            )
            return json.loads(done.stdout)

        if args.reference_src is None:
            timing = child(None)
            comparison = None
        else:
            mine, reference = [], []
            for _ in range(args.rounds):  # alternate, so both see the same share of the machine's load
                mine.append(child(None))
                reference.append(child(args.reference_src))
            timing = min(mine, key=lambda t: abs(t["seconds_median"] - statistics.median(
                m["seconds_median"] for m in mine)))
            this_s = statistics.median(t for m in mine for t in m["seconds_runs"])
            ref_s = statistics.median(t for r in reference for t in r["seconds_runs"])
            comparison = {
                "reference_src": str(args.reference_src),
                "seconds_median_this": round(this_s, 3),
                "seconds_median_reference": round(ref_s, 3),
                "ratio_this_over_reference": round(this_s / ref_s, 3),
                # each round runs both versions back to back: the median of the paired ratios is the
                # figure least moved by other load on the machine
                "ratio_median_of_paired_rounds": round(statistics.median(
                    m["seconds_median"] / r["seconds_median"] for m, r in zip(mine, reference, strict=True)), 3),
                "peak_rss_mb_this": max(m["peak_rss_mb"] for m in mine),
                "peak_rss_mb_reference": max(r["peak_rss_mb"] for r in reference),
                "runs_per_version": args.rounds * args.repeats,
            }
    out = {
        "benchmark": "ingest",
        "raw_rows": sum(sizes.values()),
        "rows_by_source": sizes,
        "files_mb": files_mb,
        "generate_seconds": round(generate_s, 1),
        **timing,
        **({"comparison": comparison} if comparison is not None else {}),
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
