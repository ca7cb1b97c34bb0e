"""`signals report` / `signals timeline` end to end on a small simulated CRM, and the page in a real browser."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from signals.cli import app
from signals.features.spec import FeatureSpec
from signals.io.tables import write_table
from signals.jobs.report import run_report
from signals.jobs.simulate import run_simulate
from signals.settings import load_settings
from tests.views.chromium import chromium_binary, open_page

pytestmark = pytest.mark.slow
SMALL = ["simulate.n_customers=1500", "simulate.seed=3"]
AS_OF = "2025-12-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A simulated CRM on disk, a trained-looking purchase bundle and a scores file."""
    folder = tmp_path_factory.mktemp("world")
    settings = load_settings(overrides=[*SMALL, f"paths.events={folder}/data/events.parquet",
                                        f"paths.customers={folder}/data/customers.parquet",
                                        f"paths.truth={folder}/data/truth.json", f"paths.reports_dir={folder}/reports",
                                        f"paths.models_dir={folder}/models", f"sink.url=sqlite:///{folder}/crm.db"])
    run_simulate(settings, messy=False)
    points = {name: float(i + 1) for i, name in enumerate(settings.catalog)}
    bundle = folder / "models" / "purchase"
    bundle.mkdir(parents=True)
    spec = FeatureSpec.from_settings(settings).with_learned_points(points, 21.0)
    (bundle / "spec.json").write_text(spec.to_json(), encoding="utf-8")
    write_table(pd.DataFrame({"touchpoint": list(points), "prior_points": [tp.prior_points for tp in settings.catalog.values()],
                              "learned_points": list(points.values()), "low": [p - 0.5 for p in points.values()],
                              "high": [p + 0.5 for p in points.values()]}), bundle / "points.csv")
    events = pd.read_parquet(folder / "data" / "events.parquet")
    ids = sorted(events["customer_id"].astype(str).unique())[:4]
    scores = pd.DataFrame({"customer_id": ids + ids[:1], "task": "purchase",
                           "as_of": pd.to_datetime(["2025-11-01"] * 4 + ["2025-10-01"], utc=True),
                           "score": [0.2, 0.9, 0.5, 0.7, 0.99], "alarm": ["kizashi", None, "kizashi", "cooling", "kizashi"]})
    write_table(scores, folder / "scores.parquet")
    return folder, settings, ids


@pytest.fixture(scope="module")
def full_run(world):
    folder, settings, _ = world
    logged = []
    two = settings.model_copy(update={"views": settings.views.model_copy(update={
        "report": settings.views.report.model_copy(update={"timeline_customers": 2})})})
    run = run_report(two, as_of=AS_OF, scores=folder / "scores.parquet", log_artifact=logged.append)
    return run, logged


def test_report_is_one_self_contained_page(world, full_run):
    folder, _, ids = world
    run, logged = full_run
    assert run.path == folder / "reports" / "report_2025-12-01.html" and logged == [run.path]  # the MLflow hook
    assert [p.name for p in run.path.parent.iterdir() if not p.name.endswith(".lock")] == ["report_2025-12-01.html"]
    page = run.path.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and not re.search(r"(src|href)=\"(?!data:|#)", page)
    assert "url(" not in page and "http://" not in page and "https://" not in page
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(run.report.figures) == 10   # 7 views + 2 timelines + the purchase points
    for title in ("Contact-frequency segments", "Contact rate and dose-response", "Retention and stickiness",
                  "Temperature timelines", "Customer journey stages", "Learned points", "Top alarms"):
        assert title in page
    assert "learned (purchase)" in page and "no learned points" in page     # purchase bundle given, churn missing
    # top alarms: the latest scoring date only, alarms only, highest score first
    top = run.report.tables["top_alarms"]
    assert top["customer_id"].tolist() == [ids[3], ids[2], ids[0]] and set(top["alarm"]) == {"kizashi", "cooling"}
    evidence = run.report.tables["segment_evidence"]
    assert evidence["rows"].sum() == run.report.tables["dose_response"]["rows"].sum() > 0
    assert run.report.summary["segment_verdict"]["text"] in page


def test_report_opens_in_headless_chromium(full_run, tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: `make system-deps` installs it): the browser check is skipped")
    run, _ = full_run
    result = open_page(run.path, binary=binary, screenshots_at=(0.0,))
    assert result.console_errors == [] and result.exceptions == []
    assert result.title.startswith("signals report")
    assert all(url.startswith(("file:", "data:")) for url in result.requests), result.requests
    assert sorted(i["figure"] for i in result.images) == sorted(run.report.figures)
    import matplotlib.image

    for image in result.images:                       # every figure decoded at its full size and laid out
        png = matplotlib.image.imread(io.BytesIO(run.report.figures[image["figure"]]))
        assert image["decoded"] and image["complete"]
        assert (image["natural_width"], image["natural_height"]) == (png.shape[1], png.shape[0])
        assert image["shown_width"] > 100 and image["shown_height"] > 50
    shot = matplotlib.image.imread(io.BytesIO(result.screenshots[0]))
    (tmp_path / "screenshot.png").write_bytes(result.screenshots[0])
    assert shot.shape[1] == 1280 and shot[..., :3].std() > 0.05   # something is drawn, not a blank page


def cli_base(folder) -> list[str]:
    return [f"--set={s}" for s in SMALL] + [f"--set=paths.events={folder}/data/events.parquet",
                                            f"--set=paths.customers={folder}/data/customers.parquet",
                                            f"--set=paths.models_dir={folder}/models"]


def test_cli_report_without_models_or_scores_says_so(world, tmp_path):
    folder, _, _ = world
    runner = CliRunner()
    result = runner.invoke(app, ["report", *cli_base(folder), "--set=views.report.timeline_customers=1",
                                 "--models", str(tmp_path / "none"), "--as-of", AS_OF, "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "nurture customers bought at" in result.output and "r.html" in result.output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No trained model found" in page and "No scoring output found" in page
    assert page.count("<img ") == 8                    # 7 views + 1 timeline
    assert runner.invoke(app, ["report", "--help"]).exit_code == 0


def test_cli_timeline(world, tmp_path):
    folder, _, ids = world
    runner = CliRunner()
    base = cli_base(folder)
    result = runner.invoke(app, ["timeline", ids[0], ids[1], *base, "--as-of", AS_OF, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in tmp_path.glob("timeline_*.png"))
    assert pngs == [f"timeline_{ids[0]}_2025-12-01.png", f"timeline_{ids[1]}_2025-12-01.png"]
    assert "kizashi line" in result.output and "learned (purchase)" in result.output
    result = runner.invoke(app, ["timeline", "C999999", *base, "--as-of", AS_OF, "--out", str(tmp_path)])
    assert result.exit_code == 1 and "C999999" in result.output and "Traceback" not in result.output
    assert runner.invoke(app, ["timeline", "--help"]).exit_code == 0


def test_segments_separate_later_purchases_on_simulated_data():
    """Seed 003's claim on the simulator: nurture customers buy more than stop_spending ones."""
    from signals.simulate import simulate_crm
    from signals.views import History, evidence_split, segment_evidence

    settings = load_settings(overrides=["simulate.n_customers=3000"])
    world = simulate_crm(settings)
    history = History(world.events, "2026-01-01", settings, customers=world.customers)
    _, evidence_rows = evidence_split(history)
    table = segment_evidence(history, evidence_rows).set_index("segment")
    nurture, stop = table.loc["nurture"], table.loc["stop_spending"]
    assert min(nurture["purchase_rows"], stop["purchase_rows"]) > 300
    assert nurture["purchase_low"] > stop["purchase_high"], table[["purchase_rate", "purchase_low", "purchase_high"]]
    assert np.isfinite(table["churn_rate"]).all()


def test_the_page_is_logged_to_mlflow_as_an_artifact(full_run, mlflow_store):
    """Issue 18.6: with tracking on, the page is an artifact of a run 'report <date>' (role report)."""
    from mlflow import MlflowClient

    from signals.jobs.report import log_report_run

    run, _ = full_run
    settings = load_settings(overrides=mlflow_store)
    run_id = log_report_run(run, settings)
    client = MlflowClient(tracking_uri=settings.mlflow.tracking_uri)
    logged = client.get_run(run_id)
    assert logged.info.run_name == "report 2025-12-01" and logged.info.status == "FINISHED"
    assert logged.data.tags["role"] == "report" and "nurture" in logged.data.tags["segments_verdict"]
    assert logged.data.metrics["figures"] == len(run.report.summary["figures"])
    assert [a.path for a in client.list_artifacts(run_id, "report")] == [f"report/{run.path.name}"]
