"""The notebooks in notebooks/ run top to bottom on a small simulated world, in this venv's kernel.

Each notebook reads its size from ``SIGNALS_NOTEBOOK_CUSTOMERS`` (first cell) and writes only to
``SIGNALS_NOTEBOOK_WORK``; here both point small and into ``tmp_path``. A cell that raises fails
the test with the cell's source and traceback (nbclient's ``CellExecutionError``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["01_touchpoints_and_temperature", "02_train_and_compare", "03_retraining_and_drift",
            "04_scoring_alarms_and_views", "05_your_own_data"]
#: the CI size: the smallest demo world whose churn test periods hold `model.min_positives` (13 at 2,000)
SMALL_CUSTOMERS = "2000"


def test_the_five_notebooks_exist_and_the_readme_links_them():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README.md does not link {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_committed_without_outputs_and_says_what_and_how_long(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), \
        f"{path.name}: clear the outputs before committing"
    intro = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown" and intro.startswith("# ")
    assert "**What this shows.**" in intro and "**How long it takes.**" in intro
    assert "SIGNALS_NOTEBOOK_CUSTOMERS" in code[0].source, "the first code cell reads the size knob"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SIGNALS_NOTEBOOK_CUSTOMERS", SMALL_CUSTOMERS)
    monkeypatch.setenv("SIGNALS_NOTEBOOK_WORK", str(tmp_path))
    monkeypatch.delenv("SIGNALS_NOTEBOOK_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # 03 writes to its own store in tmp_path
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    # two notebooks run at once under `make test -n 2`: one OpenMP thread each on the 2 cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    assert printed == sys.executable, \
        f"the kernel ran {printed}, not this venv's python {sys.executable}"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 2, f"{path.name} drew {images} figure(s)"
