"""Your own CRM from config alone, measured: the foreign SaaS export of ``tests/foreign_crm.py``
(2,490 accounts by default, like the CRM of issue 15) ingested and trained for both tasks with
``configs/saas_example.yaml`` and ``--auto-split``, exactly as ``signals ingest`` / ``signals train``
run them.

Prints one JSON object: the ingestion report per source (rows read, accepted, rejected by reason,
duplicates, events), and per task the split ``--auto-split`` chose, the row counts, the test ROC
AUC (95% interval over origins x customers) of LightGBM and every baseline, the paired AUC
difference against each baseline, and the seconds of each step.

Run from the repository root (``OMP_NUM_THREADS=1`` keeps LightGBM from fighting other processes
for the cores)::

    python benchmarks/own_crm.py [--accounts 2490] [--seed 0] [--set key.path=value ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.foreign_crm import generate  # noqa: E402

from signals.errors import SignalsError  # noqa: E402
from signals.jobs.ingest import run_ingest  # noqa: E402
from signals.jobs.train import run_train  # noqa: E402
from signals.settings import load_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "saas_example.yaml"


def _ingest_figures(result) -> dict:
    report = result.report
    out = {}
    for name in report.index:
        row = report.loc[name]
        out[str(name)] = {"read": int(row["read"]), "accepted": int(row["accepted"]), "rejected": int(row["rejected"]),
                          "duplicates": int(row["duplicates"]), "events": int(row["events"]),
                          "rejected_by_reason": result.rejected_by_reason(name)}
    return out


def _task_figures(run) -> dict:
    trained = run.trained
    metrics = trained.metrics
    auc = metrics[metrics["metric"] == "roc_auc"]
    return {
        "split": trained.plan.describe() if trained.plan is not None else None,
        "plan": vars(trained.plan) if trained.plan is not None else None,
        "kept_model_split": trained.split.describe(),
        "rows": trained.rows,
        "roc_auc": {r.model: [round(r.estimate, 4), round(r.low, 4), round(r.high, 4)] for r in auc.itertuples()},
        "lightgbm_minus": {r.baseline: [round(r.estimate, 4), round(r.low, 4), round(r.high, 4)]
                           for r in trained.versus.itertuples()},
        "points_defined": int((trained.points["status"] == "defined").sum()),
        "top_points": trained.points.sort_values("own_points", ascending=False, na_position="last")
                      .head(5)[["touchpoint", "own_points"]].round(2).values.tolist(),
        "seconds": trained.seconds,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2490)
    parser.add_argument("--months", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder (kept) instead of a temporary one")
    args = parser.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="own_crm_"))
    try:
        started = time.perf_counter()
        crm = generate(work / "data" / "saas", n_accounts=args.accounts, months=args.months, seed=args.seed)
        (work / "configs").mkdir(parents=True, exist_ok=True)
        shutil.copy(CONFIG, work / "configs" / CONFIG.name)  # sources are relative to the config file
        settings = load_settings(work / "configs" / CONFIG.name, args.overrides)
        settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={
            name: work / path for name, path in settings.paths.model_dump().items()})})
        figures: dict = {"accounts": args.accounts, "history": f"{crm.start}..{crm.end}", "seed": args.seed,
                         "overrides": args.overrides,
                         "truth": {"churned": int(crm.truth["churn"].notna().sum()),
                                   "converted": int(crm.truth["convert"].notna().sum()),
                                   "customers_at_start": int(crm.truth["customer_at_start"].sum())}}
        tick = time.perf_counter()
        result = run_ingest(settings)
        figures["ingest"] = _ingest_figures(result)
        figures["ingest_seconds"] = round(time.perf_counter() - tick, 1)
        for task in ("churn", "purchase"):
            try:
                run = run_train(settings, task=task, auto_split=True,
                                progress=lambda m: print(f"  {m}", file=sys.stderr))
            except SignalsError as exc:  # the data cannot support the task: say so in the figures
                figures[task] = {"error": str(exc)}
                continue
            figures[task] = _task_figures(run)
        figures["seconds"] = round(time.perf_counter() - started, 1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(figures, indent=2, ensure_ascii=False, default=str)
    print(text)
    if args.json is not None:
        args.json.write_text(text, encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
