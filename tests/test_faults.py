"""Runs killed mid-write leave whole outputs or none (issue 12, finding 7).

A real ``signals ingest`` runs in a subprocess; the test watches the output folder and sends
SIGINT or SIGKILL the moment a temporary output file appears, i.e. while the outputs are being
written. Afterwards every output is either exactly the previous run's file or a whole new one, the
three outputs (events, rejects, duplicates) are of one run, and Ctrl-C exits 130 with one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

OUTPUTS = ("events.parquet", "rejects.csv", "duplicates.csv")
ROWS = 80_000


def write_source(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    secs = rng.integers(0, 2 * 365 * 86_400, ROWS)
    stamps = pd.Series(pd.to_datetime(np.datetime64("2023-01-01T00:00:00", "s") + secs.astype("m8[s]")))
    frame = pd.DataFrame({
        "AccountId": np.char.zfill(rng.integers(0, 5000, ROWS).astype(str), 5),
        "ActivityDate": stamps.dt.strftime("%Y-%m-%d %H:%M:%S"),
        "ActivityType": np.where(rng.random(ROWS) < 0.01, "Trade show", "Visit"),  # ~1% rejects
    })
    frame = pd.concat([frame, frame.iloc[: ROWS // 100]])  # ~1% duplicates
    frame.to_csv(path, index=False)


@pytest.fixture
def workdir(tmp_path):
    write_source(tmp_path / "sfa.csv", seed=1)
    config = {
        "ingest": {"as_of": "2026-01-01T00:00:00Z", "sources": [{
            "name": "sfa", "kind": "csv", "path": "sfa.csv",
            "columns": {"customer_id": "AccountId", "ts": "ActivityDate", "touchpoint": "ActivityType"},
            "touchpoints": {"Visit": "sales_visit"}}]},
        "paths": {"events": "out/events.parquet", "rejects": "out/rejects.csv", "duplicates": "out/duplicates.csv"},
    }
    (tmp_path / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


def start(folder: Path) -> subprocess.Popen:
    signals_cli = Path(sys.executable).with_name("signals")
    return subprocess.Popen([str(signals_cli), "ingest", "-c", "config.yaml"], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_while_writing(process: subprocess.Popen, out: Path, sig: int) -> bool:
    """Send ``sig`` as soon as a temporary output exists; False if the run finished first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and any(".tmp-" in name for name in os.listdir(out)):
            process.send_signal(sig)
            return True
        time.sleep(0.0005)
    return False


def snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS if (out / name).exists()}


def run_of(out: Path) -> tuple[int, int, int]:
    """(events, rejects, duplicates) rows of the outputs on disk; each file must read whole."""
    return (len(pd.read_parquet(out / "events.parquet")), len(pd.read_csv(out / "rejects.csv")),
            len(pd.read_csv(out / "duplicates.csv")))


def test_sigkill_of_a_first_run_leaves_whole_outputs_or_none(workdir):
    out = workdir / "out"
    process = start(workdir)
    hit = kill_while_writing(process, out, signal.SIGKILL)
    process.wait(timeout=60)
    assert hit, "the run ended before an output was being written"
    present = [name for name in OUTPUTS if (out / name).exists()]
    assert present in ([], list(OUTPUTS))  # none, or all three of one run
    if present:
        run_of(out)


def test_ctrl_c_mid_write_exits_130_and_keeps_one_whole_run(workdir):
    out = workdir / "out"
    first = start(workdir)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    old, old_rows = snapshot(out), run_of(out)
    write_source(workdir / "sfa.csv", seed=2)  # the next run writes different outputs
    process = start(workdir)
    hit = kill_while_writing(process, out, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert hit, "the run ended before an output was being written"
    assert process.returncode == 130, stderr
    message = stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("interrupted (Ctrl-C) during `signals ingest`"), stderr
    assert "Traceback" not in stderr
    now = snapshot(out)
    assert set(now) == set(OUTPUTS)
    if now == old:
        assert "no output was changed" in message[0]
    else:  # the interrupt came after the last rename: all three new, and the line lists them
        assert all(now[name] != old[name] for name in OUTPUTS) and run_of(out) != old_rows
        assert "kept 3 finished output(s)" in message[0]
    assert not [name for name in os.listdir(out) if ".tmp-" in name]  # Ctrl-C cleans up after itself


def test_sigkill_mid_write_keeps_the_old_run_and_the_next_run_cleans_up(workdir):
    out = workdir / "out"
    first = start(workdir)
    assert first.wait(timeout=120) == 0
    old = snapshot(out)
    write_source(workdir / "sfa.csv", seed=3)
    process = start(workdir)
    hit = kill_while_writing(process, out, signal.SIGKILL)
    process.wait(timeout=60)
    assert hit, "the run ended before an output was being written"
    now = snapshot(out)
    assert now == old or all(now[name] != old[name] for name in OUTPUTS)  # never a mix
    run_of(out)
    again = start(workdir)  # a killed run holds no lock (the kernel released it) and leaves no debris behind
    assert again.wait(timeout=120) == 0, again.stderr.read()
    assert not [name for name in os.listdir(out) if ".tmp-" in name]
