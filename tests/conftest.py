"""Test-wide settings: no telemetry, single-threaded OpenMP (tests run in parallel processes), and a
temporary MLflow store per test (migrated once per session, then copied)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Parallel test workers each running a 2-thread OpenMP LightGBM on a 2-core machine spin-wait
# against each other; one thread per worker is faster and deterministic.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# a developer's own tracking server must never receive test runs
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_REGISTRY_URI", None)


def session_root(tmp_path_factory) -> Path:
    """A folder shared by every xdist worker of this test session (and only this session)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, build):
    """``build(folder)`` run once per test session, its (pickled) result shared by the xdist workers.

    The first worker to ask builds it under a lock; the others wait and load it. For fixtures
    that cost seconds (a fitted model, a migrated database), since workers do not share memory.
    """
    import fcntl
    import pickle

    root = session_root(tmp_path_factory)
    path = root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            folder = root / name
            folder.mkdir(exist_ok=True)
            value = build(folder)
            partial = root / f"{name}.pickle.partial"
            partial.write_bytes(pickle.dumps(value))
            os.replace(partial, path)
    return pickle.loads(path.read_bytes())


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory) -> Path:
    """An empty, fully migrated MLflow SQLite store, built once per test session.

    Creating one costs seconds of schema migrations; with pytest-xdist the workers share one
    file (the first builds it under a lock, the others wait and reuse it).
    """

    def build(folder: Path) -> Path:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
        return folder / "mlflow.db"

    return build_once(tmp_path_factory, "mlflow-template", build)


@pytest.fixture
def mlflow_store(tmp_path, mlflow_template_db) -> list[str]:
    """A fresh MLflow store for one test (a copy of the template): the ``--set`` overrides that use it."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(mlflow_template_db, db)
    return [f"mlflow.tracking_uri=sqlite:///{db}", f"mlflow.artifact_location={tmp_path / 'mlartifacts'}",
            "mlflow.tracking_uri_env=null"]
