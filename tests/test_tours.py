"""The Python tours of README.md and of the package docstring run as written (on a smaller world)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import signals

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# Smaller and faster than the demo, the tour's code unchanged: load_settings adds these overrides.
SMALL = ["simulate.n_customers=1500", "model.lightgbm.num_threads=1", "model.bootstrap_rounds=20",
         "model.points_reference_rows=300"]


def readme_tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "README.md has no ```python block"
    return blocks[0]


def docstring_tour() -> str:
    doc = signals.__doc__ or ""
    lines = doc.split("::\n", 1)[1].splitlines()
    body = []
    for line in lines[1:]:
        if line and not line.startswith("    "):
            break
        body.append(line[4:])
    return "\n".join(body)


@pytest.fixture
def small_settings(monkeypatch):
    load = signals.load_settings
    monkeypatch.setattr(signals, "load_settings", lambda path=None, overrides=(): load(path, [*SMALL, *overrides]))
    monkeypatch.chdir(ROOT)  # the tours name configs/demo.yaml relative to the repository


@pytest.mark.parametrize("tour", [readme_tour, docstring_tour], ids=["README", "docstring"])
def test_tour_runs_as_written(tour, small_settings):
    code = tour()
    assert "signals.build_features" in code and "fit_task" in code
    namespace: dict = {}
    exec(compile(code, f"<{tour.__name__}>", "exec"), namespace)  # noqa: S102 - our own documentation
    X, trained = namespace["X"], namespace["trained"]
    assert len(X) == len(namespace["cutoffs"]) and "static__segment__attr" in X.columns
    assert not trained.points.empty and trained.metric("lightgbm", "roc_auc") > 0.5
