"""Integration: retrains through a real `mlflow server` on 127.0.0.1, checked with the MLflow client;
a server that dies mid-retrain gives a clear error and never a half-moved alias."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from signals.errors import TrackingError
from signals.io.tracking import CHALLENGER, CHAMPION
from signals.jobs.retrain import run_retrain
from signals.modeling.drift import points_of
from signals.settings import load_settings
from signals.simulate import simulate_crm
from tests.small_trained_world import SMALL_NO_REFITS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SMALL = SMALL_NO_REFITS


class Server:
    """An `mlflow server` child process (its own process group, so stopping it stops its workers)."""

    def __init__(self, folder: Path, template: Path) -> None:
        self.folder = folder
        self.db = folder / "server.db"
        shutil.copyfile(template, self.db)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
                   f"sqlite:///{self.db}", "--artifacts-destination", str(self.folder / "artifacts"),
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.folder / 'server.log').read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError("mlflow server did not answer within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def server(tmp_path, mlflow_template_db):
    handle = Server(tmp_path, mlflow_template_db)
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def world():
    settings = load_settings(ROOT / "configs" / "demo.yaml", overrides=SMALL)
    sim = simulate_crm(settings)
    return sim.events, sim.customers, sim.truth


def test_two_retrains_through_a_server_then_it_dies_mid_promotion(server, world, monkeypatch, tmp_path):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    overrides = [*SMALL, f"mlflow.tracking_uri={server.url}", "mlflow.tracking_uri_env=null"]
    settings = load_settings(ROOT / "configs" / "demo.yaml", overrides=overrides)
    first = run_retrain(settings, as_of="2025-09-01", tasks=["purchase"], inputs=world).tasks["purchase"]
    second = run_retrain(settings, as_of="2025-10-01", tasks=["purchase"], inputs=world).tasks["purchase"]

    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name("signals")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [r.info.run_name for r in runs] == ["purchase 2025-09-01", "purchase 2025-10-01"]
    assert [r.info.run_id for r in runs] == [first.run_id, second.run_id]
    for run, result in zip(runs, (first, second), strict=True):
        assert run.info.status == "FINISHED" and run.data.tags["task"] == "purchase"
        assert run.data.metrics["lightgbm.roc_auc"] == pytest.approx(result.trained.metric("lightgbm", "roc_auc"))
        assert "lightgbm.roc_auc_low" in run.data.metrics and "rfm.roc_auc_high" in run.data.metrics
        points = pd.read_csv(client.download_artifacts(run.info.run_id, "bundle/points.csv", str(tmp_path)))
        assert points_of(points) == pytest.approx(points_of(result.trained.points), nan_ok=True)
    assert "champion.roc_auc" in runs[1].data.metrics and "champion.roc_auc" not in runs[0].data.metrics
    versions = client.search_model_versions("name = 'signals-purchase'", order_by=["version_number ASC"])
    assert [str(v.version) for v in versions] == ["1", "2"]
    assert [v.run_id for v in versions] == [first.run_id, second.run_id]
    champion = str(client.get_model_version_by_alias("signals-purchase", CHAMPION).version)
    assert champion == ("2" if second.decision.promote else "1") == second.champion_after
    assert str(client.get_model_version_by_alias("signals-purchase", CHALLENGER).version) == "2"
    assert runs[1].data.tags["decision"] == second.decision.label

    # the server dies just as the champion alias is about to move: a clear error, champion unchanged
    always = load_settings(ROOT / "configs" / "demo.yaml",
                           overrides=[*overrides, "mlflow.promotion.auc_margin=1", "mlflow.promotion.max_ece=1"])

    def kill_when_promoting(message: str) -> None:
        if "moving champion" in message:
            server.stop()

    with pytest.raises(TrackingError) as err:
        run_retrain(always, as_of="2025-11-01", tasks=["purchase"], inputs=world, progress=kill_when_promoting)
    message = str(err.value)
    assert f"127.0.0.1:{server.port}" in message and "moving signals-purchase@champion" in message
    assert f"signals-purchase@champion still points at version {champion}; nothing was promoted" in message
    # what the server left in its backend store (read directly: restarting a server costs many seconds)
    backend = MlflowClient(f"sqlite:///{server.db}")
    assert str(backend.get_model_version_by_alias("signals-purchase", CHAMPION).version) == champion
    assert str(backend.get_model_version_by_alias("signals-purchase", CHALLENGER).version) == "3"

    # and with the server gone, a retrain stops before any training, naming the store
    started = time.monotonic()
    with pytest.raises(TrackingError, match="cannot be reached"):
        run_retrain(settings, as_of="2025-12-01", tasks=["purchase"], inputs=world)
    assert time.monotonic() - started < 30
