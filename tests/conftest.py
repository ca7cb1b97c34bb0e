"""Test-wide settings: no telemetry, single-threaded OpenMP (tests run in parallel processes)."""

from __future__ import annotations

import os

# Parallel test workers each running a 2-thread OpenMP LightGBM on a 2-core machine spin-wait
# against each other; one thread per worker is faster and deterministic.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
